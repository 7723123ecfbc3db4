package main

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/balancer"
)

// staleAfter is how long a backend's latency is believed without a new
// sample: then the backend is scored as unmeasured, and takes a new client
// again, which measures it anew. Without it a backend that was slow once
// would never be given the chance to show it has recovered.
const staleAfter = 10 * time.Second

// zonePicker is a [balancer.DonePicker] that places new clients in its
// zone (a backend's metadata "zone"), on the backend with the best
// latency for its load, and learns latencies from the outcomes the handler
// reports. It uses nothing but the library's exported API.
//
// Among the backends that take new clients ([backend.Snapshot.TakesNew])
// and that the request has not already failed on ([balancer.Info.Tried]),
// it prefers those of its zone, and crosses to another zone only when its
// own has none. Among those it picks the lowest score: the backend's
// latency (a moving average of [balancer.DoneInfo.Latency]) times its load
// plus one ([backend.Snapshot.Load]), over its weight. A backend not
// measured yet, or not lately, scores 0: it takes the next new client,
// which measures it. A failed attempt counts as a slow one.
//
// It is safe for concurrent use; Pick and Done take no lock and, once
// every backend has been measured, allocate nothing.
type zonePicker struct {
	zone string
	now  func() time.Time // time.Now, but in tests
	// stats maps a *backend.Backend to its *latency. It keeps the backends
	// a set has dropped; a picker for a set that changes all day would
	// prune it.
	stats sync.Map
}

// latency is one backend's moving average of latencies.
type latency struct {
	ewma atomic.Int64 // nanoseconds; 0: no sample yet
	at   atomic.Int64 // when the last sample came, Unix nanoseconds
}

// failedLatency is the sample a failed attempt counts as.
const failedLatency = 5 * time.Second

func newZonePicker(zone string) *zonePicker {
	return &zonePicker{zone: zone, now: time.Now}
}

// Pick returns the backend for a new client, or [balancer.ErrNoBackend]
// when no backend may take it.
func (p *zonePicker) Pick(info balancer.Info) (*backend.Backend, error) {
	s, now := info.Snapshot, p.now().UnixNano()
	var best *backend.Backend
	var bestLocal bool
	var bestScore float64
	var bestLoad int64
	for _, b := range s.Routable() {
		if !s.TakesNew(b) || tried(info.Tried, b) {
			continue
		}
		local, load := b.Metadata("zone") == p.zone, s.Load(b)
		score := float64(p.latency(b, now)) * float64(load+1) / float64(b.Weight())
		switch {
		case best == nil, local && !bestLocal:
		case local != bestLocal, score > bestScore, score == bestScore && load >= bestLoad:
			continue // ties, unmeasured backends among them, go to the least loaded
		}
		best, bestLocal, bestScore, bestLoad = b, local, score, load
	}
	if best == nil {
		return nil, balancer.ErrNoBackend // the handler answers 503
	}
	return best, nil // the handler, not the picker, counts the request in flight
}

// Done records how long the attempt it placed on d.Backend took to answer.
func (p *zonePicker) Done(d balancer.DoneInfo) {
	sample := int64(d.Latency)
	if d.Err != nil {
		sample = int64(failedLatency)
	}
	sample = max(sample, 1) // 0 means no sample
	l, ok := p.stats.Load(d.Backend)
	if !ok {
		l, _ = p.stats.LoadOrStore(d.Backend, new(latency)) // once per backend
	}
	st := l.(*latency)
	for {
		old := st.ewma.Load()
		next := sample // the first sample, or after a stale one
		if old != 0 && p.now().UnixNano()-st.at.Load() < int64(staleAfter) {
			next = old + (sample-old)/8 // weight 1/8 to the new sample
		}
		if st.ewma.CompareAndSwap(old, next) {
			break
		}
	}
	st.at.Store(p.now().UnixNano())
}

// latency returns b's average latency in nanoseconds, 0 if it has not
// been measured within staleAfter of now.
func (p *zonePicker) latency(b *backend.Backend, now int64) int64 {
	l, ok := p.stats.Load(b)
	if !ok {
		return 0
	}
	st := l.(*latency)
	if now-st.at.Load() >= int64(staleAfter) {
		return 0
	}
	return st.ewma.Load()
}

// tried reports whether b is one of tried.
func tried(tried []*backend.Backend, b *backend.Backend) bool {
	for _, t := range tried {
		if t == b {
			return true
		}
	}
	return false
}
