package metrics

import (
	"strconv"
	"sync/atomic"
	"time"
)

// durationBounds are the upper bounds, inclusive, of the request duration
// histogram's buckets, Prometheus's default buckets; a last bucket, +Inf,
// holds the longer requests.
var durationBounds = [...]time.Duration{
	5 * time.Millisecond, 10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
	time.Second, 2500 * time.Millisecond, 5 * time.Second, 10 * time.Second,
}

// numBuckets counts the histogram's buckets, +Inf included.
const numBuckets = len(durationBounds) + 1

// latencyWindow is how many seconds the status page's quantiles and 5xx
// rate look back.
const latencyWindow = 60

// bucketLabels are the le labels of the buckets, in seconds.
var bucketLabels = func() [numBuckets]string {
	var l [numBuckets]string
	for i, d := range durationBounds {
		l[i] = strconv.FormatFloat(d.Seconds(), 'g', -1, 64)
	}
	l[numBuckets-1] = "+Inf"
	return l
}()

// statusClasses are the labels of the response status classes; a status
// outside 100 to 599, such as the 0 of a request whose client left before
// a response was sent, is in none.
var statusClasses = [...]string{"1xx", "2xx", "3xx", "4xx", "5xx"}

// bucketIndex returns the index of the bucket that counts d.
func bucketIndex(d time.Duration) int {
	for i, b := range durationBounds {
		if d <= b {
			return i
		}
	}
	return numBuckets - 1
}

// latency is one backend's request durations and response statuses, from
// Done events: all-time counts for the exposition, and per-second ones of
// the last minute for the status page.
type latency struct {
	buckets    [numBuckets]atomic.Int64 // requests per bucket, not cumulative
	sumNanos   atomic.Int64
	classes    [len(statusClasses)]atomic.Int64
	recent     [numBuckets]series // per bucket, per second, over latencyWindow
	recent5xx  series             // 5xx responses per second, over latencyWindow
	recentResp series             // responses with a status class, per second, over latencyWindow
}

func newLatency() *latency {
	l := &latency{recent5xx: newSeries(latencyWindow), recentResp: newSeries(latencyWindow)}
	for i := range l.recent {
		l.recent[i] = newSeries(latencyWindow)
	}
	return l
}

// observe counts a request that took d and was answered with status, in
// second sec.
func (l *latency) observe(d time.Duration, status int, sec int64) {
	d = max(d, 0)
	i := bucketIndex(d)
	l.buckets[i].Add(1)
	l.sumNanos.Add(int64(d))
	l.recent[i].add(sec)
	if status < 100 || status > 599 {
		return
	}
	class := status/100 - 1
	l.classes[class].Add(1)
	l.recentResp.add(sec)
	if class == 4 { // 5xx
		l.recent5xx.add(sec)
	}
}

// latencyView is a snapshot of a latency.
type latencyView struct {
	buckets  [numBuckets]int64 // not cumulative
	sumNanos int64
	classes  [len(statusClasses)]int64

	recent                [numBuckets]int64 // the last minute's, per bucket
	recentResp, recent5xx int64
}

// load reads l over the minute that ends with second sec.
func (l *latency) load(sec int64) latencyView {
	var v latencyView
	for i := range v.buckets {
		v.buckets[i] = l.buckets[i].Load()
		v.recent[i] = l.recent[i].sum(sec-latencyWindow+1, sec)
	}
	v.sumNanos = l.sumNanos.Load()
	for i := range v.classes {
		v.classes[i] = l.classes[i].Load()
	}
	v.recentResp = l.recentResp.sum(sec-latencyWindow+1, sec)
	v.recent5xx = l.recent5xx.sum(sec-latencyWindow+1, sec)
	return v
}

// add adds o's counts to v.
func (v *latencyView) add(o *latencyView) {
	for i := range v.buckets {
		v.buckets[i] += o.buckets[i]
		v.recent[i] += o.recent[i]
	}
	v.sumNanos += o.sumNanos
	for i := range v.classes {
		v.classes[i] += o.classes[i]
	}
	v.recentResp += o.recentResp
	v.recent5xx += o.recent5xx
}

// quantile estimates the q-quantile (0 < q < 1) of the last minute's
// durations from its bucket counts, as Prometheus's histogram_quantile
// does: it finds the bucket that holds the rank q×count and interpolates
// linearly between the bucket's bounds (0 for the first bucket's lower
// bound), so the estimate is only as fine as the buckets; a rank in the
// +Inf bucket is given the largest finite bound. ok is false if the
// minute holds no request.
func (v *latencyView) quantile(q float64) (d time.Duration, ok bool) {
	var total int64
	for _, c := range v.recent {
		total += c
	}
	if total == 0 {
		return 0, false
	}
	rank := q * float64(total)
	var below int64
	for i, c := range v.recent {
		if c == 0 || float64(below+c) < rank {
			below += c
			continue
		}
		if i == numBuckets-1 {
			return durationBounds[len(durationBounds)-1], true
		}
		var lower time.Duration
		if i > 0 {
			lower = durationBounds[i-1]
		}
		frac := (rank - float64(below)) / float64(c)
		return lower + time.Duration(frac*float64(durationBounds[i]-lower)), true
	}
	return durationBounds[len(durationBounds)-1], true
}
