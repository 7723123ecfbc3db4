package backend

import (
	"time"

	"github.com/affinitylb/affinity/event"
)

// health is what decides a backend's State. Four things can hold a backend
// out of rotation, each owned by one mechanism: down (active health checks,
// or an operator), ejected (passive health: failures seen on live traffic),
// draining (an operator) and retiring (its config: a source saying it is
// shutting down). The state is Unhealthy if it is down or ejected, else
// Draining if draining or retiring, else Healthy. All fields are guarded by
// the set's mutex.
//
// An ejection has two phases: ejected for its back-off, then half-open
// until a request reports: b.trial says, lock-free, whether a trial request
// may be sent, and since when one is out.
type health struct {
	down     bool
	draining bool
	retiring bool   // Config.Draining, as the last list given to Update said
	drainGen uint64 // ends a drain's watcher when the drain is undone

	ejected    bool
	halfOpen   bool          // ejected, its back-off over: waiting for a trial to report
	backoff    time.Duration // the current ejection's back-off; also bounds a trial
	ejections  int           // consecutive ejections, for the back-off
	ejectGen   uint64        // tells a stale timer from the current one
	ejectTimer *time.Timer   // ends the back-off, then expires trials
	readmitted time.Time     // when the last ejection ended
	listed     bool          // the published snapshot offers b's trial to new clients

	// What Backend.Health reports; see HealthInfo.
	downWhy       string    // why down
	ejectWhy      string    // why ejected
	retry         time.Time // when the current ejection's back-off ends
	drainWhy      string    // why draining
	drainDeadline time.Time // the current Drain's timeout
}

func (h *health) state() State {
	switch {
	case h.down || h.ejected:
		return Unhealthy
	case h.draining || h.retiring:
		return Draining
	}
	return Healthy
}

// offersTrial reports whether a snapshot should list b among the half-open
// members whose trial a new client may take: a draining backend takes no
// new clients, trial or not, and one that is down belongs to the active
// health checks.
func (h *health) offersTrial() bool {
	return h.halfOpen && !h.down && !h.draining && !h.retiring
}

// refresh derives b's state from its health and, if it changed and b is a
// member, publishes a new snapshot; it publishes one too when b's trial is
// offered to new clients and the current snapshot does not say so, or the
// other way round. The caller holds s.mu.
func (s *Set) refresh(b *Backend) {
	if s.derive(b) {
		old := s.Snapshot()
		s.publish(old, old.all)
	}
}

// derive derives b's state from its health, logs and reports a change, and
// reports whether a snapshot must be published for it, as refresh does.
// The caller holds s.mu.
func (s *Set) derive(b *Backend) (publish bool) {
	h := &b.health
	st := h.state()
	prev := State(b.state.Swap(int32(st)))
	b.record(prev, st)
	offers := h.offersTrial()
	relist := offers != h.listed
	h.listed = offers
	if prev == st && !relist || b.Removed() {
		return false
	}
	if prev != st {
		if prev == Unhealthy && st == Healthy {
			b.ramp.start(s.slowStart)
		}
		s.log("backend state changed", "id", b.id, "from", prev.String(), "to", st.String())
		s.emit(event.Event{Kind: event.StateChange, Backend: b.id, From: prev, To: st})
	}
	return true
}

// setHealthy records an active health check's verdict on b: down or not,
// and if down, why (a probe's error). A healthy verdict also ends an
// ejection, since the backend has just shown it answers.
func (s *Set) setHealthy(b *Backend, healthy bool, why error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b.Removed() {
		return
	}
	b.health.down = !healthy
	if !healthy {
		b.health.downWhy = "health check: " + shortError(why)
	}
	if healthy {
		s.endEjection(b)
	}
	s.syncTrial(b)
	s.refresh(b)
}
