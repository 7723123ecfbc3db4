package backend

import (
	"maps"
	"math"
	"slices"
	"sync/atomic"
	"time"
)

// Snapshot is an immutable view of a [Set]'s membership at one moment. It is
// safe for concurrent use; the slices it returns are shared and must not be
// modified.
//
// Membership and the Routable list are fixed when the snapshot is published;
// each backend's State and in-flight count are live. A request holding an
// older snapshot may therefore see a backend in Routable that has just become
// unhealthy. The two questions a caller asks of a backend answer for both
// the snapshot and the live state, failing open or not:
// [Snapshot.TakesNew] (may a new client be placed on it?) and
// [Snapshot.KeepsBound] (may the clients bound to it keep using it?). A
// picker weighs load with [Snapshot.Load].
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

	part   bool        // s is the snapshot of a group that some members are not in
	groups []Group     // sorted by name; see Groups
	subs   []*Snapshot // subs[i] is the snapshot of groups[i]; s itself for a group of all members
	empty  *Snapshot   // the snapshot of a group s does not know

	// rampEnd is when the last ramp of a routable member that was running
	// at publication ends, in Unix nanoseconds: 0 once it has ended or if
	// there was none; math.MaxInt64 if a member's ramp may start while s
	// is in use, because s fails open or has been superseded. See Ramping.
	rampEnd atomic.Int64
}

// newSnapshot returns the snapshot of members all, numbered version, with
// the snapshots of its groups. The caller holds s.mu, or publishes the zero
// set's empty snapshot.
func (s *Set) newSnapshot(version uint64, all []*Backend) *Snapshot {
	snap := s.build(version, all, s.index(all))
	s.group(snap)
	if old := s.cur.Load(); old != nil && version > 0 {
		// A member old routes to may go down and come back, ramping, once
		// snap is published: old no longer knows. (Version 0 is the zero
		// set's empty snapshot, which supersedes nothing.)
		old.rampEnd.Store(math.MaxInt64)
		for _, sub := range old.subs {
			sub.rampEnd.Store(math.MaxInt64)
		}
	}
	return snap
}

// build returns the snapshot of members all, numbered version, indexed by
// byID, without groups.
func (s *Set) build(version uint64, all []*Backend, byID map[string]int) *Snapshot {
	snap := &Snapshot{
		version:  version,
		all:      all,
		routable: make([]*Backend, 0, len(all)),
		byID:     byID,
		routes:   make([]uint64, (len(all)+63)/64),
		total:    &s.inflight,
	}
	for i, b := range all {
		if b.State() == Healthy {
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
	return snap
}

// group gives snap its groups: those of its members and those with a
// weight set, each with the snapshot of its members. A group of every
// member has snap as its snapshot. The caller holds s.mu.
func (s *Set) group(snap *Snapshot) {
	members := make(map[string][]*Backend)
	for _, b := range snap.all {
		members[b.group] = append(members[b.group], b)
	}
	names := make([]string, 0, len(members)+len(s.weights))
	for g := range members {
		names = append(names, g)
	}
	for g := range s.weights {
		if _, ok := members[g]; !ok {
			names = append(names, g)
		}
	}
	slices.Sort(names)
	snap.groups = make([]Group, len(names))
	snap.subs = make([]*Snapshot, len(names))
	if len(snap.all) == 0 {
		snap.empty = snap
	} else {
		snap.empty = s.build(snap.version, nil, nil)
		snap.empty.empty = snap.empty
	}
	for i, g := range names {
		w, ok := s.weights[g]
		if !ok {
			w = DefaultGroupWeight
		}
		bs := members[g]
		snap.groups[i] = Group{Name: g, Weight: w, Backends: bs}
		switch len(bs) {
		case len(snap.all):
			snap.subs[i] = snap
		case 0:
			snap.subs[i] = snap.empty
		default:
			byID := make(map[string]int, len(bs))
			for j, b := range bs {
				byID[b.id] = j
			}
			sub := s.build(snap.version, bs, byID)
			sub.part = true
			sub.groups = snap.groups[i : i+1 : i+1]
			sub.subs = []*Snapshot{sub}
			sub.empty = snap.empty
			snap.subs[i] = sub
		}
	}
}

// Group is one group of a snapshot's backends ([Config.Group]) and its
// weight ([WithGroupWeights]).
type Group struct {
	// Name is the group's name; "" is the default group.
	Name string
	// Weight is the group's weight, 0 to [MaxGroupWeight]:
	// [DefaultGroupWeight] unless one was set.
	Weight int
	// Backends are the group's members, in the order they were added; it
	// is shared and must not be modified.
	Backends []*Backend
}

// Groups returns the groups of s, sorted by name: those that have members
// and those that were given a weight. A snapshot of a set without groups
// has one, "", of every member (none if it has no member). The slice is
// shared and must not be modified. A group's own snapshot ([Snapshot.Group])
// lists that group alone.
func (s *Snapshot) Groups() []Group { return s.groups }

// Group returns the snapshot of the members of the named group, built
// when s was published: same version, its Routable list and fail-open
// rule applied within the group, so that a picker chooses within the group
// by running on it unchanged. A group of every member of s is s itself. For
// a group s does not know, it returns an empty snapshot; on a nil s, nil.
// It does not allocate.
func (s *Snapshot) Group(name string) *Snapshot {
	if s == nil {
		return nil
	}
	for i := range s.groups {
		if s.groups[i].Name == name {
			return s.subs[i]
		}
	}
	return s.empty
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

// TakesNew reports whether a new client may be placed on b, as seen from
// s: b is one of [Snapshot.Routable] and its state, now, is still one that
// got it there (healthy, or unhealthy in a snapshot that fails open). A
// stale snapshot thus answers false for a member that has since become
// unhealthy or draining, and false for one it did not list; whether s fails
// open is fixed with s, like its list. It is constant-time and allocates
// nothing.
func (s *Snapshot) TakesNew(b *Backend) bool {
	i, ok := s.byID[b.id]
	if !ok || s.all[i] != b || s.routes[i/64]&(1<<(i%64)) == 0 {
		return false
	}
	st := b.State()
	return st == Healthy || s.failOpen && st == Unhealthy
}

// Weight returns the total weight of the routable members.
func (s *Snapshot) Weight() int64 { return s.weight }

// FailOpen reports whether no member was healthy and the snapshot routes to
// unhealthy ones instead.
func (s *Snapshot) FailOpen() bool { return s.failOpen }

// Load returns b's load as a picker weighs it, the one load figure a
// picker reads: the requests in flight on b now, plus, while b is in slow
// start (see [WithSlowStart]), the part of b's fair share of the set's load
// ([Snapshot.InFlight] in proportion to weight) that the ramp has yet to
// cover, from all of it when b joins to none when the ramp is over. Least
// connections then gives a newcomer a growing fraction of its share rather
// than every new client while its own count is zero. At no load there is
// nothing to add, and the newcomer takes its turn at once. It is live, not
// fixed with the snapshot, and allocates nothing; only backends in slow
// start cost a clock read.
func (s *Snapshot) Load(b *Backend) int64 {
	if b.ramp.endNs.Load() == 0 {
		return b.inflight.Load() // not ramping: no clock read
	}
	return s.rampLoad(b)
}

// rampLoad is Load for b, which may be in slow start.
func (s *Snapshot) rampLoad(b *Backend) int64 {
	n := b.inflight.Load()
	left := b.ramp.remaining()
	if left == 0 || s.weight == 0 {
		return n
	}
	total := max(s.total.Load(), 0)
	return n + (left*total*b.weight+999*s.weight)/(1000*s.weight)
}

// Ramping reports whether a member of [Snapshot.Routable] may be in slow
// start now: when it reports false, [Snapshot.Load] of every routable
// member adds no slow-start allowance. It errs only the other way: it
// reports true until the ramps that were running when s was published have
// ended, and for a snapshot that has been superseded or fails open, since a
// member it routes to may then start ramping without s showing it. It costs an atomic load,
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

// KeepsBound reports whether the clients already bound to b may keep
// using it, as seen from s: b is healthy or draining now, or it is
// unhealthy and s fails open (see [WithFailOpen]). A half-open backend is
// unhealthy: its bound clients reach it only as its trial, which the
// request path admits. On the snapshot of a group ([Snapshot.Group]) it
// also reports false for a backend that is not a member of the group. It
// allocates nothing.
func (s *Snapshot) KeepsBound(b *Backend) bool {
	if s.part && !s.has(b) {
		return false
	}
	st := b.State()
	return st == Healthy || st == Draining || s.failOpen && st == Unhealthy
}

// has reports whether b is a member of s.
func (s *Snapshot) has(b *Backend) bool {
	i, ok := s.byID[b.id]
	return ok && s.all[i] == b
}

// tryTrial returns a half-open member of s (see [Ejection]) that takes
// new clients once re-admitted, and admits the caller's request as its
// trial; nil if there is none, or its trial is out. The request path
// reaches it through package accounting, which documents the contract.
func (s *Snapshot) tryTrial() *Backend {
	for _, b := range s.trials {
		if b.tryTrial() {
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

// InFlight returns the number of requests in flight on the whole set, now:
// like each backend's count, it is live, not fixed with the snapshot. It
// includes requests still finishing on backends removed from the set.
func (s *Snapshot) InFlight() int64 { return s.total.Load() }
