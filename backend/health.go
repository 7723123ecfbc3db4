package backend

import (
	"fmt"
	"sync/atomic"
	"time"
)

// health is what decides a backend's State. Three things can hold a backend
// out of rotation, each owned by one mechanism: down (active health checks,
// or an operator), ejected (passive health: failures seen on live traffic)
// and draining (an operator). The state is Unhealthy if it is down or
// ejected, else Draining if draining, else Healthy. All fields are guarded
// by the set's mutex.
type health struct {
	down     bool
	draining bool
	drainGen uint64 // ends a drain's watcher when the drain is undone

	ejected    bool
	ejections  int         // consecutive ejections, for the back-off
	ejectGen   uint64      // tells a stale re-admission timer from the current one
	ejectTimer *time.Timer // re-admits after the back-off
	readmitted time.Time   // when the last ejection ended
}

func (h *health) state() State {
	switch {
	case h.down || h.ejected:
		return Unhealthy
	case h.draining:
		return Draining
	}
	return Healthy
}

// Ejection configures passive health checking: a backend that fails After
// requests in a row is ejected (Unhealthy) for Base, then re-admitted. Each
// ejection that follows within Max of the last re-admission doubles the
// time out, up to Max. A successful active health check re-admits an
// ejected backend at once.
//
// What counts as a failure is the caller's to report, with
// [Backend.ReportFailure] and [Backend.ReportSuccess]; the sticky handler
// reports transport errors, and optionally 5xx answers.
type Ejection struct {
	// After is how many consecutive failures eject a backend; 0 disables
	// passive ejection.
	After int
	// Base is the first ejection's length.
	Base time.Duration
	// Max caps the doubling.
	Max time.Duration
}

// DefaultEjection is the passive health checking a [Set] does unless
// [WithEjection] says otherwise: 5 consecutive failures eject a backend for
// 10 seconds, doubling up to 5 minutes.
var DefaultEjection = Ejection{After: 5, Base: 10 * time.Second, Max: 5 * time.Minute}

func (e Ejection) validate() error {
	switch {
	case e.After < 0:
		return fmt.Errorf("backend: Ejection.After %d is negative", e.After)
	case e.After == 0:
		return nil
	case e.Base <= 0:
		return fmt.Errorf("backend: Ejection.Base %v must be positive", e.Base)
	case e.Max < e.Base:
		return fmt.Errorf("backend: Ejection.Max %v is less than Base %v", e.Max, e.Base)
	}
	return nil
}

// ReportFailure records that a request to b failed. When the set's
// [Ejection] threshold of consecutive failures is reached, b is ejected.
// It is safe for concurrent use and cheap.
func (b *Backend) ReportFailure() {
	n := b.fails.Add(1)
	if after := b.set.ejection.After; after > 0 && n == int32(after) {
		b.set.eject(b)
	}
}

// ReportSuccess records that a request to b succeeded, ending any run of
// failures.
func (b *Backend) ReportSuccess() {
	if b.fails.Load() != 0 {
		b.fails.Store(0)
	}
}

// eject takes b out of rotation for its back-off period.
func (s *Set) eject(b *Backend) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := &b.health
	if b.Removed() || h.ejected {
		return
	}
	now := time.Now()
	if !h.readmitted.IsZero() && now.Sub(h.readmitted) > s.ejection.Max {
		h.ejections = 0 // it behaved for long enough: start over
	}
	h.ejections++
	d := s.ejection.Base
	for i := 1; i < h.ejections && d < s.ejection.Max; i++ {
		d *= 2
	}
	d = min(d, s.ejection.Max)
	h.ejected = true
	h.ejectGen++
	gen := h.ejectGen
	h.ejectTimer = time.AfterFunc(d, func() { s.readmit(b, gen) })
	s.logWarn("backend ejected", "id", b.id, "failures", b.fails.Load(), "for", d, "ejections", h.ejections)
	s.refresh(b)
}

// readmit ends the ejection numbered gen, if it is still the current one.
func (s *Set) readmit(b *Backend, gen uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b.health.ejectGen != gen {
		return
	}
	s.endEjection(b)
	s.log("backend re-admitted", "id", b.id)
	s.refresh(b)
}

// endEjection clears b's ejection; the caller holds s.mu and refreshes b.
func (s *Set) endEjection(b *Backend) {
	h := &b.health
	if !h.ejected {
		return
	}
	if h.ejectTimer != nil {
		h.ejectTimer.Stop()
	}
	h.ejected = false
	h.ejectGen++
	h.readmitted = time.Now()
	b.fails.Store(0)
}

// refresh derives b's state from its health and, if it changed and b is a
// member, publishes a new snapshot. The caller holds s.mu.
func (s *Set) refresh(b *Backend) {
	st := b.health.state()
	prev := State(b.state.Swap(int32(st)))
	if prev == st || b.Removed() {
		return
	}
	if prev == Unhealthy && st == Healthy {
		b.ramp.start(s.slowStart)
	}
	s.log("backend state changed", "id", b.id, "from", prev.String(), "to", st.String())
	s.emit(Event{Kind: EventStateChange, Backend: b, From: prev, To: st})
	old := s.Snapshot()
	s.publish(old, old.all)
}

// ramp is a backend's slow start, from start to end in Unix nanoseconds;
// end is 0 when the backend is not ramping, so that only ramping backends
// cost a clock read.
type ramp struct {
	startNs atomic.Int64
	endNs   atomic.Int64
}

func (r *ramp) start(window time.Duration) {
	if window <= 0 {
		return
	}
	now := time.Now().UnixNano()
	r.endNs.Store(0)
	r.startNs.Store(now)
	r.endNs.Store(now + int64(window))
}

// remaining returns how much of the ramp is left, in thousandths: 1000 at
// its start, 0 once it is over or when there is none.
func (r *ramp) remaining() int64 {
	end := r.endNs.Load()
	if end == 0 {
		return 0
	}
	now, start := time.Now().UnixNano(), r.startNs.Load()
	if now >= end || start >= end {
		r.endNs.CompareAndSwap(end, 0)
		return 0
	}
	return 1000 * (end - max(now, start)) / (end - start)
}

// setHealthy records an active health check's verdict on b: down or not.
// A healthy verdict also ends an ejection, since the backend has just shown
// it answers.
func (s *Set) setHealthy(b *Backend, healthy bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b.Removed() {
		return
	}
	b.health.down = !healthy
	if healthy {
		s.endEjection(b)
	}
	s.refresh(b)
}
