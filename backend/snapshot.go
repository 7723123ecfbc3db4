package backend

import "sync/atomic"

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
	byID     map[string]*Backend
	weight   int64 // total weight of the routable members
	failOpen bool
	total    *atomic.Int64 // the set's in-flight count
}

// newSnapshot returns the snapshot of members all, numbered version.
func (set *Set) newSnapshot(version uint64, all []*Backend) *Snapshot {
	s := &Snapshot{
		version: version,
		all:     all,
		byID:    make(map[string]*Backend, len(all)),
		total:   &set.inflight,
	}
	for _, b := range all {
		s.byID[b.id] = b
		if b.Routable() {
			s.routable = append(s.routable, b)
		}
	}
	if len(s.routable) == 0 && !set.failClosed {
		for _, b := range all {
			if b.State() == Unhealthy {
				s.routable = append(s.routable, b)
			}
		}
		s.failOpen = len(s.routable) > 0
	}
	for _, b := range s.routable {
		s.weight += b.weight
	}
	return s
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

// Serves reports whether b serves the clients bound to it, as seen from s:
// it is healthy or draining, or the snapshot fails open and b is unhealthy.
func (s *Snapshot) Serves(b *Backend) bool {
	return b.Serving() || s.failOpen && b.State() == Unhealthy
}

// Lookup returns the member with the given ID, or nil.
func (s *Snapshot) Lookup(id string) *Backend { return s.byID[id] }

// Len returns the number of members.
func (s *Snapshot) Len() int { return len(s.all) }

// InFlight returns the number of requests in flight on the whole set, now:
// like [Backend.InFlight], it is live, not fixed with the snapshot. It
// includes requests still finishing on backends removed from the set.
func (s *Snapshot) InFlight() int64 { return s.total.Load() }
