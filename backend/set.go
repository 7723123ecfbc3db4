package backend

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
)

// ErrNotFound is returned for an ID that is not in the set.
var ErrNotFound = errors.New("backend: no such id")

// ErrDuplicate is returned when a backend's ID is already in the set.
var ErrDuplicate = errors.New("backend: duplicate id")

// Set is the membership of a pool of backends. Its methods are safe for
// concurrent use. Readers call [Set.Snapshot], which takes no lock; writers
// (Add, Remove, SetState) serialize on a mutex, build a new snapshot and
// publish it atomically, so a reader never sees a half-made change.
//
// The zero Set is empty and ready to use.
type Set struct {
	mu       sync.Mutex // serializes writers
	cur      atomic.Pointer[Snapshot]
	inflight atomic.Int64 // requests in flight on all members, and on removed ones until they finish
	logger   *slog.Logger
}

// Option configures a [Set].
type Option func(*Set)

// WithLogger sets the logger that receives membership and state changes, at
// Info. By default nothing is logged.
func WithLogger(l *slog.Logger) Option {
	return func(s *Set) { s.logger = l }
}

// NewSet returns a set holding the given backends, all healthy.
// It fails if any config is invalid or two share an ID.
func NewSet(backends []Config, opts ...Option) (*Set, error) {
	s := &Set{}
	for _, o := range opts {
		o(s)
	}
	bs := make([]*Backend, 0, len(backends))
	seen := make(map[string]bool, len(backends))
	for _, c := range backends {
		b, err := newBackend(c, &s.inflight)
		if err != nil {
			return nil, err
		}
		if seen[b.id] {
			return nil, fmt.Errorf("%w %q", ErrDuplicate, b.id)
		}
		seen[b.id] = true
		bs = append(bs, b)
	}
	s.cur.Store(newSnapshot(1, bs, &s.inflight))
	return s, nil
}

// Snapshot returns the current membership. It takes no lock and does not
// allocate. The snapshot never changes; later changes publish a new one.
func (s *Set) Snapshot() *Snapshot {
	if p := s.cur.Load(); p != nil {
		return p
	}
	// The zero Set: publish an empty snapshot, once.
	s.cur.CompareAndSwap(nil, newSnapshot(0, nil, &s.inflight))
	return s.cur.Load()
}

// Add adds a healthy backend built from c and returns it.
func (s *Set) Add(c Config) (*Backend, error) {
	b, err := newBackend(c, &s.inflight)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.Snapshot()
	if old.Lookup(b.id) != nil {
		return nil, fmt.Errorf("%w %q", ErrDuplicate, b.id)
	}
	bs := make([]*Backend, len(old.all), len(old.all)+1)
	copy(bs, old.all)
	s.publish(old, append(bs, b))
	s.log("backend added", "id", b.id, "url", b.url.String(), "weight", b.weight)
	return b, nil
}

// Remove takes the backend with the given ID out of the set at once and
// returns it. From the moment Remove returns, the backend admits no new
// requests ([Backend.Acquire] fails); requests it was already serving
// finish normally, and [Backend.InFlight] reports how many remain.
func (s *Set) Remove(id string) (*Backend, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.Snapshot()
	b := old.Lookup(id)
	if b == nil {
		return nil, fmt.Errorf("%w %q", ErrNotFound, id)
	}
	bs := make([]*Backend, 0, len(old.all)-1)
	for _, x := range old.all {
		if x != b {
			bs = append(bs, x)
		}
	}
	s.publish(old, bs)
	b.removed.Store(true)
	s.log("backend removed", "id", id, "inflight", b.InFlight())
	return b, nil
}

// SetState changes the state of the backend with the given ID. Setting the
// state a backend already has is a no-op.
func (s *Set) SetState(id string, st State) error {
	if st != Healthy && st != Unhealthy && st != Draining {
		return fmt.Errorf("backend: %s: invalid state %d", id, int32(st))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.Snapshot()
	b := old.Lookup(id)
	if b == nil {
		return fmt.Errorf("%w %q", ErrNotFound, id)
	}
	prev := State(b.state.Swap(int32(st)))
	if prev == st {
		return nil
	}
	s.publish(old, old.all)
	s.log("backend state changed", "id", id, "from", prev.String(), "to", st.String())
	return nil
}

// publish replaces the current snapshot; the caller holds s.mu.
func (s *Set) publish(old *Snapshot, bs []*Backend) {
	s.cur.Store(newSnapshot(old.version+1, bs, &s.inflight))
}

func (s *Set) log(msg string, args ...any) {
	if s.logger != nil {
		s.logger.Info(msg, args...)
	}
}

// Update makes the set's membership exactly cfgs, as a [Source] delivers
// it, in one change. Backends whose ID, URL and weight are unchanged stay
// as they are, with their state and requests in flight; new IDs are added,
// healthy; missing ones are removed as by [Set.Remove]; an ID whose URL or
// weight changed is replaced by a new backend. If any config is invalid or
// two share an ID, Update returns an error and changes nothing.
func (s *Set) Update(cfgs []Config) error {
	want := make([]*Backend, 0, len(cfgs))
	seen := make(map[string]bool, len(cfgs))
	for _, c := range cfgs {
		b, err := newBackend(c, &s.inflight)
		if err != nil {
			return err
		}
		if seen[b.id] {
			return fmt.Errorf("%w %q", ErrDuplicate, b.id)
		}
		seen[b.id] = true
		want = append(want, b)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.Snapshot()
	var added, replaced, removed []string
	for i, b := range want {
		cur := old.Lookup(b.id)
		switch {
		case cur == nil:
			added = append(added, b.id)
		case cur.url.String() == b.url.String() && cur.weight == b.weight:
			want[i] = cur
		default:
			replaced = append(replaced, b.id)
		}
	}
	kept := make(map[*Backend]bool, len(want))
	for _, b := range want {
		kept[b] = true
	}
	var gone []*Backend // removed and replaced
	for _, cur := range old.all {
		if !kept[cur] {
			gone = append(gone, cur)
			if !seen[cur.id] {
				removed = append(removed, cur.id)
			}
		}
	}
	if len(added)+len(replaced)+len(removed) == 0 {
		return nil
	}
	s.publish(old, want)
	for _, b := range gone {
		b.removed.Store(true)
	}
	s.log("backends updated", "added", added, "replaced", replaced, "removed", removed, "total", len(want))
	return nil
}
