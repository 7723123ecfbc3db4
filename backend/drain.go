package backend

import (
	"fmt"
	"time"

	"github.com/affinitylb/affinity/event"
)

// DefaultDrainIdle is how long a draining backend must have served no
// request before it leaves the set, unless [WithDrainIdle] says otherwise.
const DefaultDrainIdle = 10 * time.Second

// Drain drains the backend with the given ID, as HAProxy's drain state and
// an ELB's deregistration delay do: it keeps serving the clients bound to
// it and takes no new ones. It leaves the set, as by [Set.Remove], once it
// has been idle (no request in flight and none admitted) for the set's
// drain idle time ([WithDrainIdle]), or when timeout has passed, whichever
// comes first.
//
// The returned channel is closed when the drain is over: the backend has
// left the set, or the drain was undone by SetState(id, Healthy), or the
// backend was removed by other means. [Backend.Removed] tells which.
// Draining a backend that is draining starts its drain over with the new
// timeout.
func (s *Set) Drain(id string, timeout time.Duration) (<-chan struct{}, error) {
	if timeout <= 0 {
		return nil, fmt.Errorf("backend: drain %s: timeout %v must be positive", id, timeout)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.Snapshot().Lookup(id)
	if b == nil {
		return nil, fmt.Errorf("%w %q", ErrNotFound, id)
	}
	h := &b.health
	deadline := time.Now().Add(timeout)
	h.draining, h.drainWhy, h.drainDeadline = true, "drain", deadline
	h.drainGen++
	s.refresh(b)
	idle := s.drainIdle
	if idle == 0 {
		idle = DefaultDrainIdle
	}
	s.log("backend draining", "id", id, "timeout", timeout, "idle", idle)
	s.emit(event.Event{Kind: event.DrainStart, Backend: b.id})
	done := make(chan struct{})
	go s.watchDrain(b, h.drainGen, deadline, idle, done)
	return done, nil
}

// watchDrain removes the draining backend b when it has been idle for idle
// or at deadline, unless drain number gen ends first; then it closes done.
func (s *Set) watchDrain(b *Backend, gen uint64, deadline time.Time, idle time.Duration, done chan<- struct{}) {
	defer close(done)
	ticks, stop := s.newDrainTicker(min(max(idle/10, 5*time.Millisecond), 250*time.Millisecond))
	defer stop()
	var idleSince time.Time
	seen := b.Requests()
	for now := range ticks {
		// Idle: nothing in flight now and nothing admitted since the last
		// look, so that short requests between two looks count as activity.
		if n := b.Requests(); b.InFlight() == 0 && n == seen {
			if idleSince.IsZero() {
				idleSince = now
			}
		} else {
			idleSince, seen = time.Time{}, n
		}
		var why event.Reason
		switch {
		case !now.Before(deadline):
			why = event.DrainTimeout
		case !idleSince.IsZero() && now.Sub(idleSince) >= idle:
			why = event.DrainIdle
		}
		s.mu.Lock()
		switch {
		case b.Removed():
			why = event.DrainRemoved
		case b.health.drainGen != gen && b.health.draining:
			s.mu.Unlock()
			return // a new drain took over; its watcher reports the end
		case b.health.drainGen != gen:
			why = event.DrainUndone
		case why != 0:
			s.remove(b)
			s.log("backend drained", "id", b.id, "why", why.String(), "inflight", b.InFlight())
		}
		if why != 0 {
			s.emit(event.Event{Kind: event.DrainEnd, Backend: b.id, Reason: why})
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
	}
}

// newDrainTicker returns the ticks a drain's watcher looks at the backend
// on, every d, each the time it was sent, and the function that stops
// them: a [time.Ticker]'s, or those of s.drainTicks if set.
func (s *Set) newDrainTicker(d time.Duration) (<-chan time.Time, func()) {
	if s.drainTicks != nil {
		return s.drainTicks(d)
	}
	t := time.NewTicker(d)
	return t.C, t.Stop
}
