package backend

import (
	"errors"
	"net/url"
	"time"
)

// HealthInfo says why a backend is in its state and since when, for
// status pages and admin APIs. A Healthy backend's info holds only State
// and Since.
type HealthInfo struct {
	// State is the backend's state when the info was recorded; it is the
	// one [Backend.State] returned then.
	State State
	// Since is when the backend entered State; zero for a backend that
	// has been Healthy since it joined the set.
	Since time.Time
	// Reason says, briefly and without the backend's URL, what holds the
	// backend out of rotation: "health check: <error>" (active health
	// checks failed), "ejected: <n> failures in a row, the last: <cause>"
	// (the last failed request's transport error or "status <code>", as
	// the sticky handler reports them; without ", the last: ..." when no
	// failure reported its cause), "stalled: requests
	// unanswered", "trial request failed", "operator" (by [Set.SetState]),
	// "drain" (by [Set.Drain]) or "config: shutting down"
	// ([Config.Draining]). A backend both down and ejected gives the
	// health checks' reason. It is "" when State is Healthy.
	Reason string
	// Retry is, for an ejected backend, when its back-off ends and it is
	// next tried with a trial request (see [Ejection]); in the past once it
	// is half-open, waiting for its trial. It is zero when the backend is
	// not ejected, or is down (the health checks decide when it returns).
	Retry time.Time
	// DrainDeadline is, for a backend drained by [Set.Drain], when the
	// drain's timeout removes it; zero for a drain with no timeout (by
	// [Set.SetState] or [Config.Draining]) and when it is not draining.
	DrainDeadline time.Time
}

// Health returns why b is in its state and since when. It takes no lock
// and does not allocate: the info is rebuilt, under the set's lock, only
// when b's health changes.
func (b *Backend) Health() HealthInfo {
	if p := b.info.Load(); p != nil {
		return *p
	}
	return HealthInfo{State: b.State()}
}

// record rebuilds b's HealthInfo from its health; prev is b's state
// before the change. The caller holds s.mu.
func (b *Backend) record(prev, st State) {
	h := &b.health
	old := b.info.Load()
	in := HealthInfo{State: st}
	switch {
	case old != nil && prev == st:
		in.Since = old.Since
	case old != nil || prev != st:
		in.Since = time.Now()
	}
	switch st {
	case Unhealthy:
		in.Reason = h.ejectWhy
		if h.down {
			in.Reason = h.downWhy
		} else {
			in.Retry = h.retry
		}
	case Draining:
		in.Reason = "config: shutting down"
		if h.draining {
			in.Reason = h.drainWhy
			in.DrainDeadline = h.drainDeadline
		}
	}
	if old != nil && *old == in {
		return
	}
	b.info.Store(&in)
}

// shortError is err without the URL that [url.Error] adds, for
// [HealthInfo.Reason].
func shortError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}
