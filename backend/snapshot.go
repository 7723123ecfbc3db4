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
	total    *atomic.Int64 // the set's in-flight count
}

func newSnapshot(version uint64, all []*Backend, total *atomic.Int64) *Snapshot {
	s := &Snapshot{
		version: version,
		all:     all,
		byID:    make(map[string]*Backend, len(all)),
		total:   total,
	}
	for _, b := range all {
		s.byID[b.id] = b
		if b.Routable() {
			s.routable = append(s.routable, b)
		}
	}
	return s
}

// Version increases with every change to the set. Two snapshots of one set
// with the same version are the same snapshot.
func (s *Snapshot) Version() uint64 { return s.version }

// Backends returns every member, in the order they were added.
func (s *Snapshot) Backends() []*Backend { return s.all }

// Routable returns the members that take new clients (healthy), in the order
// they were added. A picker chooses among these.
func (s *Snapshot) Routable() []*Backend { return s.routable }

// Lookup returns the member with the given ID, or nil.
func (s *Snapshot) Lookup(id string) *Backend { return s.byID[id] }

// Len returns the number of members.
func (s *Snapshot) Len() int { return len(s.all) }

// InFlight returns the number of requests in flight on the whole set, now:
// like [Backend.InFlight], it is live, not fixed with the snapshot. It
// includes requests still finishing on backends removed from the set.
func (s *Snapshot) InFlight() int64 { return s.total.Load() }
