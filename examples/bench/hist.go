package main

import (
	"math"
	"math/bits"
	"slices"
	"time"
)

// The histogram is log-linear, as HdrHistogram is: each power of two is cut
// into subCount buckets, so a bucket is at most 1/subCount of its values
// wide (1.6%), and a percentile read from its middle is off by at most
// half that. Values from 2^maxExp ns (about 69 s) up fall in the last
// bucket.
const (
	subBits    = 6
	subCount   = 1 << subBits
	maxExp     = 36
	numBuckets = (maxExp - subBits + 1) << subBits
)

// histogram counts latencies, in nanoseconds, in fixed buckets: recording
// one costs a few instructions and allocates nothing. The zero histogram is
// empty and ready to use. It is not safe for concurrent use; the load
// generator gives each connection its own and merges them at the end.
type histogram struct {
	counts [numBuckets]uint64
	n      uint64
	max    time.Duration
}

// bucketOf returns the index of the bucket that counts v nanoseconds.
func bucketOf(v int64) int {
	if v < subCount {
		return int(max(v, 0))
	}
	v = min(v, 1<<maxExp-1)
	shift := bits.Len64(uint64(v)) - subBits - 1
	return (shift+1)<<subBits + int(v>>shift) - subCount
}

// bucketLow returns the smallest value bucket i counts.
func bucketLow(i int) int64 {
	if i < subCount {
		return int64(i)
	}
	shift := i>>subBits - 1
	return int64(i&(subCount-1)+subCount) << shift
}

// bucketMid returns the value that stands for bucket i's values: the middle
// of its range.
func bucketMid(i int) int64 {
	lo := bucketLow(i)
	hi := bucketLow(i+1) - 1
	return lo + (hi-lo)/2
}

// record counts one latency.
func (h *histogram) record(d time.Duration) {
	h.counts[bucketOf(int64(d))]++
	h.n++
	h.max = max(h.max, d)
}

// merge adds o's counts to h's.
func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// percentile returns the latency below or at which p percent of the
// recorded ones lie (the nearest-rank definition: the value of rank
// ⌈p/100·n⌉), to within half a bucket, and never more than the largest
// recorded. It returns 0 for an empty histogram.
func (h *histogram) percentile(p float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(p / 100 * float64(h.n)))
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(time.Duration(bucketMid(i)), h.max)
		}
	}
	return h.max
}

// median returns the middle of xs, the mean of the two middle values when
// there is an even number of them, and 0 for none. It does not modify xs.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(xs))
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}

// medianInterval returns a confidence interval for the median of the
// distribution xs were drawn from: the narrowest pair of order statistics
// of xs that holds the median with probability at least conf, and that
// probability exactly (the sign test's interval, which assumes only that
// the values are independent draws). ok is false when xs are too few for
// any pair to reach conf: fewer than 6 for 95%. It does not modify xs.
func medianInterval(xs []float64, conf float64) (lo, hi, coverage float64, ok bool) {
	n := len(xs)
	// With k values left out on each side, the interval misses the median
	// when k or fewer values fall below it, or k or fewer above:
	// 2·P(B ≤ k) for B ~ Binomial(n, 1/2).
	k, tail := -1, 0.0 // tail: P(B ≤ k)
	term := math.Pow(0.5, float64(n))
	for i := 0; i < n/2; i++ {
		next := tail + term
		if 1-2*next < conf {
			break
		}
		k, tail = i, next
		term *= float64(n-i) / float64(i+1) // C(n, i+1) / 2^n
	}
	if k < 0 {
		return 0, 0, 0, false
	}
	s := slices.Sorted(slices.Values(xs))
	return s[k], s[n-1-k], 1 - 2*tail, true
}
