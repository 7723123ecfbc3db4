package backend

import (
	"fmt"
	"sync"
	"time"
)

// DefaultStallTimeout is the stall window a [Set] uses unless
// [WithStallTimeout] says otherwise.
//
// The window opens when a client gives up on a backend that has not
// answered it, so a hung backend is ejected about a client's patience plus
// the window after it hung: with clients that give up within 10 seconds,
// as people reloading a page and API clients with a timeout do, within 15
// seconds. Patient clients are covered by the transport's response header
// timeout instead, whose failures count towards [Ejection.After].
const DefaultStallTimeout = 5 * time.Second

// stallAfter is how many abandoned requests a stall needs: one or two
// impatient clients do not eject a backend.
const stallAfter = 3

// WithStallTimeout sets the stall window w of passive health checking; 0
// turns stall detection off. A backend is stalled when, for w, it has
// answered none of its requests (no [Backend.ReportSuccess]) while clients
// gave up on at least 3 of them ([Backend.ReportAbandoned]), each within w
// of the one before and each after waiting at least w/4 for it: it takes
// requests and answers none, as a deadlocked server does. A stalled
// backend is ejected as by [Ejection.After] consecutive failures, with the
// same back-off and half-open trials; with passive ejection off
// (Ejection{}), stalls are not detected either.
//
// A backend that answers anything within w is never stalled, however many
// clients give up on its slow requests, nor is one streaming long
// responses: a response whose header has arrived is answered. A client
// cannot stall a backend that answers it within w/4. An application whose
// every request may wait longer than w for its response header (long
// polling that holds the header, with few users) needs a longer w. The
// default is [DefaultStallTimeout].
func WithStallTimeout(w time.Duration) Option {
	return func(s *Set) error {
		if w < 0 {
			return fmt.Errorf("backend: stall timeout %v is negative", w)
		}
		s.stallTimeout = w
		return nil
	}
}

// stall is a backend's current run of abandoned requests with no answer in
// between; ReportSuccess ends it by zeroing Backend.abandoned, lock-free.
type stall struct {
	mu    sync.Mutex // orders the abandonments of a run
	first time.Time  // the run's first abandonment
	last  time.Time  // its latest
}

// ReportAbandoned records that a request to b ended before b answered it,
// after waiting for b as long as waited, because its client stopped
// waiting (it went away, or timed out). It is not a failure: the client
// may be impatient. But a backend that answers none of its requests while
// their clients give up on them is stalled (see [WithStallTimeout]) and
// is ejected; and the trial of a half-open backend, abandoned after
// waiting the stall window, has failed. It is safe for concurrent use, and
// is not on the path of an answered request.
func (b *Backend) ReportAbandoned(waited time.Duration) {
	s := b.set
	w := s.stallTimeout
	if w <= 0 || s.ejection.After <= 0 || waited < w/4 {
		return
	}
	now := time.Now()
	if t := b.trial.Load(); t > trialOpen {
		// Half-open, a trial out: it fails if it hung for the window.
		// One abandoned sooner expires as usual (see Ejection), so a
		// client cannot fail trials by hanging up.
		if waited >= w && now.Sub(time.Unix(0, t)) >= w {
			s.trialFailed(b)
		}
		return
	}
	st := &b.stall
	st.mu.Lock()
	n := b.abandoned.Add(1)
	if n == 1 || now.Sub(st.last) > w {
		// A new run: after an answer, or after a quiet spell.
		n = 1
		b.abandoned.Store(1)
		st.first = now
	}
	st.last = now
	span := now.Sub(st.first)
	stalled := n >= stallAfter && span >= w
	if stalled {
		b.abandoned.Store(0) // the next run starts afresh
	}
	st.mu.Unlock()
	if stalled {
		s.stalled(b, n, span)
	}
}

// stalled ejects b, which answered none of its last n requests for span
// while their clients gave up, unless something else already holds it out
// of rotation.
func (s *Set) stalled(b *Backend, n int64, span time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h := &b.health; h.ejected || h.down || b.Removed() {
		return
	}
	s.ejectLocked(b, "backend stalled: requests unanswered; ejected", "unanswered", n, "during", span.Round(time.Millisecond))
}
