package backend

import (
	"maps"
	"math"
	"sync/atomic"
	"time"
)

// Snapshot is an immutable view of a [Set]'s membership at one moment. It is
// safe for concurrent use; the slices it returns are shared and must not be
// modified.
//
// Membership and the Routable list are fixed when the snapshot is published;
// each backend's State and InFlight are live. A request holding an older
// snapshot may therefore see a backend in Routable that has just become
// unhealthy: callers that must not use it check [Backend.Routable] or
// [Backend.Serving] themselves.
type Snapshot struct {
	version  uint64
	all      []*Backend
	routable []*Backend
	byID     map[string]int // index in all; shared by snapshots with the same members
	routes   []uint64       // bit i is set if all[i] is in routable
	trials   []*Backend     // half-open members a new client may try; nil if none
	weight   int64          // total weight of the routable members
	failOpen bool
	total    *atomic.Int64 // the set's in-flight count

	// rampEnd is when the last ramp of a routable member that was running
	// at publication ends, in Unix nanoseconds: 0 once it has ended or if
	// there was none; math.MaxInt64 if a member's ramp may start while s
	// is in use, because s fails open or has been superseded. See Ramping.
	rampEnd atomic.Int64
}

// newSnapshot returns the snapshot of members all, numbered version. The
// caller holds s.mu, or publishes the zero set's empty snapshot.
func (s *Set) newSnapshot(version uint64, all []*Backend) *Snapshot {
	snap := &Snapshot{
		version:  version,
		all:      all,
		routable: make([]*Backend, 0, len(all)),
		byID:     s.index(all),
		routes:   make([]uint64, (len(all)+63)/64),
		total:    &s.inflight,
	}
	for i, b := range all {
		if b.Routable() {
			snap.route(i)
		}
		if b.health.offersTrial() {
			snap.trials = append(snap.trials, b)
		}
	}
	if len(snap.routable) == 0 && !s.failClosed {
		for i, b := range all {
			if b.State() == Unhealthy {
				snap.route(i)
			}
		}
		snap.failOpen = len(snap.routable) > 0
	}
	var rampEnd int64
	for _, b := range snap.routable {
		snap.weight += b.weight
		rampEnd = max(rampEnd, b.ramp.endNs.Load())
	}
	if snap.failOpen && s.slowStart > 0 {
		// An unhealthy member that recovers starts its ramp before the
		// snapshot that says so is published.
		rampEnd = math.MaxInt64
	}
	snap.rampEnd.Store(rampEnd)
	if old := s.cur.Load(); old != nil && version > 0 {
		// A member old routes to may go down and come back, ramping, once
		// snap is published: old no longer knows. (Version 0 is the zero
		// s'snap empty snapshot, which supersedes nothing.)
		old.rampEnd.Store(math.MaxInt64)
	}
	return snap
}

// route adds s.all[i] to the routable members.
func (s *Snapshot) route(i int) {
	s.routable = append(s.routable, s.all[i])
	s.routes[i/64] |= 1 << (i % 64)
}

// index returns the map from the IDs of all to their indices in all. It
// shares the current snapshot's map when the members are the same (a state
// change), and clones it when all adds one member at the end or removes
// one: cheaper than building one from scratch, which it does otherwise.
func (s *Set) index(all []*Backend) map[string]int {
	if old := s.cur.Load(); old != nil {
		prev := old.all
		switch len(all) - len(prev) {
		case 0:
			if same(all, prev) {
				return old.byID
			}
		case 1:
			if n := len(prev); same(all[:n], prev) {
				m := maps.Clone(old.byID)
				m[all[n].id] = n
				return m
			}
		case -1:
			i := 0
			for i < len(all) && all[i] == prev[i] {
				i++
			}
			if same(all[i:], prev[i+1:]) {
				m := maps.Clone(old.byID)
				delete(m, prev[i].id)
				for j := i; j < len(all); j++ {
					m[all[j].id] = j
				}
				return m
			}
		}
	}
	m := make(map[string]int, len(all))
	for i, b := range all {
		m[b.id] = i
	}
	return m
}

// same reports whether a and b hold the same backends in the same order.
func same(a, b []*Backend) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Version increases with every change to the set. Two snapshots of one set
// with the same version are the same snapshot.
func (s *Snapshot) Version() uint64 { return s.version }

// Backends returns every member, in the order they were added.
func (s *Snapshot) Backends() []*Backend { return s.all }

// Routable returns the members that take new clients, in the order they
// were added: the healthy ones, or, when there are none and the set fails
// open (see [WithFailOpen]), the unhealthy ones. A picker chooses among
// these.
func (s *Snapshot) Routable() []*Backend { return s.routable }

// Routes reports whether b is one of [Snapshot.Routable], in constant time
// and without allocating. Like Routable, it is fixed when the snapshot is
// published.
func (s *Snapshot) Routes(b *Backend) bool {
	i, ok := s.byID[b.id]
	return ok && s.all[i] == b && s.routes[i/64]&(1<<(i%64)) != 0
}

// Weight returns the total weight of the routable members.
func (s *Snapshot) Weight() int64 { return s.weight }

// FailOpen reports whether no member was healthy and the snapshot routes to
// unhealthy ones instead.
func (s *Snapshot) FailOpen() bool { return s.failOpen }

// EffectiveInFlight returns b's in-flight count as a load-aware picker
// should weigh it. It is [Backend.InFlight], except while b is in slow
// start (see [WithSlowStart]): then it adds the part of b's fair share of
// the set's load ([Snapshot.InFlight] in proportion to weight) that the ramp
// has yet to cover, from all of it when b joins to none when the ramp is
// over. Least connections then gives a newcomer a growing fraction of its
// share rather than every new client while its own count is zero. At no
// load there is nothing to add, and the newcomer takes its turn at once.
// Only backends in slow start cost a clock read.
func (s *Snapshot) EffectiveInFlight(b *Backend) int64 {
	n := b.inflight.Load()
	left := b.ramp.remaining()
	if left == 0 || s.weight == 0 {
		return n
	}
	total := max(s.total.Load(), 0)
	return n + (left*total*b.weight+999*s.weight)/(1000*s.weight)
}

// Ramping reports whether a member of [Snapshot.Routable] may be in slow
// start now. When it reports false, [Snapshot.EffectiveInFlight] of every
// routable member is its [Backend.InFlight], so a load-aware picker may
// read InFlight alone. It errs only the other way: it reports true until
// the ramps that were running when s was published have ended, and for a
// snapshot that has been superseded or fails open, since a member it routes
// to may then start ramping without s showing it. It costs an atomic load,
// and a clock read while those ramps have not been seen to end.
func (s *Snapshot) Ramping() bool {
	return s.rampEnd.Load() != 0 && s.ramps()
}

// ramps reports whether the ramps that were running when s was published
// may still be, and notes when they have ended.
func (s *Snapshot) ramps() bool {
	end := s.rampEnd.Load()
	if end == math.MaxInt64 || end != 0 && time.Now().UnixNano() < end {
		return true
	}
	s.rampEnd.CompareAndSwap(end, 0) // ramps that ended stay ended
	return false
}

// Serves reports whether b serves the clients bound to it, as seen from s:
// it is healthy or draining, or the snapshot fails open and b is unhealthy.
func (s *Snapshot) Serves(b *Backend) bool {
	return b.Serving() || s.failOpen && b.State() == Unhealthy
}

// TryTrial returns a half-open member of s (see [Ejection]) that takes new
// clients once re-admitted, and admits the caller's request as its trial,
// as [Backend.TryTrial] does; nil if there is none, or its trial is out.
// A caller placing a new client asks TryTrial first, so that a half-open
// backend gets its trial from new clients as well as from its own; one
// that gets a backend must send it the request and report how it went. It
// is lock-free and allocates nothing, and costs a length check while no
// member is half-open.
func (s *Snapshot) TryTrial() *Backend {
	for _, b := range s.trials {
		if b.TryTrial() {
			return b
		}
	}
	return nil
}

// Lookup returns the member with the given ID, or nil.
func (s *Snapshot) Lookup(id string) *Backend {
	if i, ok := s.byID[id]; ok {
		return s.all[i]
	}
	return nil
}

// Len returns the number of members.
func (s *Snapshot) Len() int { return len(s.all) }

// InFlight returns the number of requests in flight on the whole set, now:
// like [Backend.InFlight], it is live, not fixed with the snapshot. It
// includes requests still finishing on backends removed from the set.
func (s *Snapshot) InFlight() int64 { return s.total.Load() }
