package metrics

import "sync/atomic"

// series counts events per wall-clock second over a sliding window: a ring
// of one-second buckets, each an atomic word holding the second it counts
// (high 32 bits, Unix time) and the count (low 32 bits). Writers advance a
// bucket lazily: the first event of a new second claims its bucket with a
// compare-and-swap, discarding what the bucket held a window ago. Readers
// only load, and ignore buckets left over from older seconds, so a quiet
// series needs no ticking.
type series struct {
	buckets []atomic.Uint64
}

const countMask = 1<<32 - 1

func newSeries(seconds int) series {
	return series{buckets: make([]atomic.Uint64, seconds)}
}

// add counts one event in second sec (Unix time).
func (s *series) add(sec int64) {
	b := &s.buckets[sec%int64(len(s.buckets))]
	tag := uint64(uint32(sec)) << 32
	for {
		old := b.Load()
		switch {
		case old&^countMask == tag:
			b.Add(1)
			return
		case old > tag:
			return // the bucket has moved on to a later second: too late to count
		case b.CompareAndSwap(old, tag|1):
			return
		}
	}
}

// at returns the count of second sec, 0 if it is outside the window.
func (s *series) at(sec int64) int64 {
	v := s.buckets[sec%int64(len(s.buckets))].Load()
	if v&^countMask != uint64(uint32(sec))<<32 {
		return 0
	}
	return int64(v & countMask)
}

// sum returns the total of the seconds from first to last, inclusive.
func (s *series) sum(first, last int64) int64 {
	var n int64
	for sec := max(first, last-int64(len(s.buckets))+1); sec <= last; sec++ {
		n += s.at(sec)
	}
	return n
}

// last returns the counts of the n seconds that end with second end,
// oldest first.
func (s *series) last(n int, end int64) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = s.at(end - int64(n-1-i))
	}
	return out
}
