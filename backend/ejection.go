package backend

import (
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/affinitylb/affinity/internal/backendhooks"
)

// Ejection configures passive health checking, as a circuit breaker: a
// backend whose run of consecutive failures (ended by any success) holds
// After failures is ejected (Unhealthy) for Base, if one of them did not
// reach it (no connection could be made, or its TLS handshake failed) or
// they came from at least two clients; else it is ejected when the run
// first meets both conditions, once per run. So a dead backend, which
// refuses connections, is ejected after After failures whoever sends
// them; one that fails every client's requests is ejected as soon as a
// second client's failure joins the run; and the requests of one client
// that the backend fails (a reset, a counted status), while it serves
// others, never eject it. Then it is half-open: still Unhealthy (in its State, so in an
// admin API and in metrics), taking no traffic but a single trial
// request, the first that arrives, from a client bound to it or a new one
// (the handler admits it). If the trial succeeds the backend is re-admitted, healthy, and takes
// new clients again; if it fails the backend is
// ejected again, for twice as long. Each ejection that follows a failed
// trial, or comes within Max of the last re-admission, doubles the time
// out, up to Max. A trial that has reported neither way after the back-off
// that preceded it (a request that hangs, or whose client left) expires:
// the next request is admitted as a trial in its place, so a backend is
// never left half-open with no trial out. A successful active health check
// re-admits an ejected or half-open backend at once.
//
// What counts as a failure is the handler's to report, with its client and
// whether it reached the backend; the sticky handler reports transport
// errors, and optionally 5xx answers, each with a hash of its client's
// address (as its trusted proxies report it). Behind a proxy the handler
// does not trust, every client has the proxy's address: only failures
// that did not reach a backend eject it then, so name the proxy as
// trusted, or use active health checks ([Set.CheckHealth]). A backend
// that answers nothing while the requests of at least two clients wait,
// or their clients give up, is ejected the same way, as stalled (see
// [WithStallTimeout]).
type Ejection struct {
	// After is how many consecutive failures eject a backend, at most
	// math.MaxInt32, under the conditions above; 0 disables passive
	// ejection.
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

// validate reports every out-of-range field of an Ejection given to
// [WithEjection]. With After 0, ejection is off and the others are not
// looked at.
func (e Ejection) validate() error {
	if e.After == 0 {
		return nil
	}
	var errs []error
	switch {
	case e.After < 0:
		errs = append(errs, fmt.Errorf("backend: WithEjection: Ejection.After %d is negative", e.After))
	case e.After > math.MaxInt32:
		errs = append(errs, fmt.Errorf("backend: WithEjection: Ejection.After %d is over %d", e.After, math.MaxInt32))
	}
	if e.Base <= 0 {
		errs = append(errs, fmt.Errorf("backend: WithEjection: Ejection.Base %v must be positive", e.Base))
	} else if e.Max < e.Base {
		errs = append(errs, fmt.Errorf("backend: WithEjection: Ejection.Max %v is less than Base %v", e.Max, e.Base))
	}
	return errors.Join(errs...)
}

// The values of Backend.trial other than these are the Unix nanoseconds at
// which the trial out now was admitted.
const (
	trialNone int64 = 0 // not half-open, or down: no trial
	trialOpen int64 = 1 // half-open: the next request may be the trial
)

// reportFailure records that a request to b failed, as f says. A run of
// consecutive failures ejects b when it first holds the set's
// [Ejection] threshold of them and either one did not reach b or they came
// from at least two clients (see failRun); when b is half-open, the
// failure fails its trial and ejects it again. It is safe for concurrent
// use and cheap: it allocates nothing but the cause's copy, and takes a
// lock only when it changes b's health.
func (b *Backend) reportFailure(f backendhooks.Failure) {
	if f.Cause != "" {
		cause := f.Cause
		b.lastFailure.Store(&cause)
	}
	if b.trial.Load() != trialNone && b.set.trialFailed(b) {
		return
	}
	if after := b.set.ejection.After; after > 0 && b.fails.add(f.Client, !f.Reached, uint32(after)) {
		b.set.eject(b)
	}
}

// failRun is a backend's current run of consecutive failures, in one word
// that reportFailure updates and reportSuccess zeroes, lock-free: the
// failures' count (saturating at math.MaxInt32), whether the run is
// mixed (one of its failures did not reach the backend, or came from a
// client other than its first failure's), and a 32-bit tag of that first
// client. Two clients whose tags are equal count as one: the run is
// then mixed later, never sooner.
type failRun struct{ w atomic.Uint64 }

const (
	runCount = 1<<31 - 1 // the count's bits, and its cap
	runMixed = 1 << 31
)

// add counts a failure of client, unreached or not, in r, and reports
// whether the run now first meets the ejection rule: at least after
// failures, and mixed. It returns true once per run: the run only grows
// until it is zeroed.
func (r *failRun) add(client uint64, unreached bool, after uint32) bool {
	tag := uint64(uint32(client ^ client>>32))
	for {
		old := r.w.Load()
		n := old & runCount
		w := old
		switch {
		case n == 0:
			w = tag << 32
		case old>>32 != tag:
			w |= runMixed
		}
		if unreached {
			w |= runMixed
		}
		if n < runCount {
			w++
		}
		if w == old || r.w.CompareAndSwap(old, w) {
			return !meets(old, after) && meets(w, after)
		}
	}
}

// meets reports whether the run in w meets the ejection rule for after.
func meets(w uint64, after uint32) bool { return w&runMixed != 0 && uint32(w&runCount) >= after }

// count returns how many failures r holds.
func (r *failRun) count() int32 { return int32(r.w.Load() & runCount) }

// reportSuccess records that a request to b succeeded, ending any run of
// failures or of abandoned requests (see reportAbandoned); when
// b is half-open, it re-admits b. It is safe for concurrent use and cheap:
// while nothing failed, it only loads two counters.
func (b *Backend) reportSuccess() {
	if b.trial.Load() != trialNone {
		b.set.trialPassed(b)
	}
	if b.fails.w.Load() != 0 {
		b.fails.w.Store(0)
	}
	if b.abandoned.Load() != 0 {
		b.abandoned.Store(0) // an answer: not stalled
	}
	if b.quiet.Load() != 0 {
		b.quiet.Store(0)
	}
}

// tryTrial reports whether the caller may send b one request as the trial
// of its half-open state (see [Ejection]), and if so admits it: it returns
// true to exactly one caller per trial, and false whenever b is not
// half-open, is down, or has a trial out. A caller that gets true must
// send b the request (counted with acquire) and report how it
// went, with reportSuccess or reportFailure. It is
// lock-free and allocates nothing. It is meant for the handler routing
// requests, like acquire; Snapshot.tryTrial finds a half-open member for
// a new client.
func (b *Backend) tryTrial() bool {
	if b.trial.Load() != trialOpen {
		return false
	}
	return b.trial.CompareAndSwap(trialOpen, max(time.Now().UnixNano(), trialOpen+1))
}

// eject takes b out of rotation for its back-off period, or, if b is
// half-open, for twice the last one.
func (s *Set) eject(b *Backend) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := b.fails.count()
	why := fmt.Sprintf("ejected: %d failures in a row", n)
	if last := b.lastFailure.Load(); last != nil {
		why += ", the last: " + *last
	}
	s.ejectLocked(b, why, "backend ejected", "failures", n)
}

// ejectLocked is eject with s.mu held; an ejection that is not a failed
// trial is reported as why (see HealthInfo.Reason) and logged as msg,
// with args, the back-off and the ejection count.
func (s *Set) ejectLocked(b *Backend, why, msg string, args ...any) {
	h := &b.health
	if b.Removed() || h.ejected && (!h.halfOpen || h.down) {
		return // ejected already, or down: the health checks' to decide
	}
	trial := h.halfOpen
	now := time.Now()
	if !trial && !h.readmitted.IsZero() && now.Sub(h.readmitted) > s.ejection.Max {
		h.ejections = 0 // it behaved for long enough: start over
	}
	h.ejections++
	d := s.ejection.Base
	for i := 1; i < h.ejections && d < s.ejection.Max; i++ {
		d *= 2
	}
	d = min(d, s.ejection.Max)
	if h.ejectTimer != nil {
		h.ejectTimer.Stop()
	}
	h.ejected, h.halfOpen, h.backoff = true, false, d
	h.retry = now.Add(d)
	h.ejectWhy = why
	if trial {
		h.ejectWhy = "trial request failed"
	}
	s.syncTrial(b)
	h.ejectGen++
	gen := h.ejectGen
	h.ejectTimer = time.AfterFunc(d, func() { s.openTrial(b, gen) })
	if trial {
		s.logWarn("trial request failed; backend ejected again", "id", b.id, "for", d, "ejections", h.ejections)
	} else {
		s.logWarn(msg, append(append([]any{"id", b.id}, args...), "for", d, "ejections", h.ejections)...)
	}
	s.refresh(b)
}

// openTrial ends the back-off of the ejection numbered gen, if it is still
// the current one: b becomes half-open, and its next request is a trial.
func (s *Set) openTrial(b *Backend, gen uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := &b.health
	if h.ejectGen != gen || b.Removed() {
		return
	}
	h.halfOpen = true
	s.syncTrial(b)
	h.ejectTimer = time.AfterFunc(h.backoff, func() { s.expireTrial(b, gen) })
	s.log("backend half-open: its next request is a trial", "id", b.id, "after", h.backoff)
	s.refresh(b)
}

// expireTrial runs every back-off period while b is half-open, for the
// ejection numbered gen: a trial out for that long without reporting
// expires, and the next request may be a trial.
func (s *Set) expireTrial(b *Backend, gen uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := &b.health
	if h.ejectGen != gen || !h.halfOpen || b.Removed() {
		return
	}
	wait := h.backoff
	if t := b.trial.Load(); t > trialOpen {
		if age := time.Duration(time.Now().UnixNano() - t); age < h.backoff {
			wait = h.backoff - age
		} else if b.trial.CompareAndSwap(t, trialOpen) {
			s.logWarn("trial request did not report; admitting another", "id", b.id, "after", age.Round(time.Millisecond))
		}
	}
	h.ejectTimer = time.AfterFunc(wait, func() { s.expireTrial(b, gen) })
}

// trialPassed re-admits b if it is half-open: a request to it succeeded.
func (s *Set) trialPassed(b *Backend) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !b.health.halfOpen || b.health.down || b.Removed() {
		return
	}
	s.endEjection(b)
	s.log("backend re-admitted after a successful request", "id", b.id)
	s.refresh(b)
}

// trialFailed ejects b again if it is half-open, and reports whether it
// was.
func (s *Set) trialFailed(b *Backend) bool {
	s.mu.Lock()
	half := b.health.halfOpen && !b.health.down
	s.mu.Unlock()
	if half {
		s.eject(b) // a half-open backend is ejected again whatever its failure count
	}
	return half
}

// syncTrial makes b.trial agree with b's health: open while b is half-open
// and not down, unless a trial is out; none otherwise. The caller holds
// s.mu.
func (s *Set) syncTrial(b *Backend) {
	h := &b.health
	if h.halfOpen && !h.down {
		b.trial.CompareAndSwap(trialNone, trialOpen)
		return
	}
	b.trial.Store(trialNone)
}

// endEjection clears b's ejection, half-open or not; the caller holds s.mu
// and refreshes b.
func (s *Set) endEjection(b *Backend) {
	h := &b.health
	if !h.ejected {
		return
	}
	if h.ejectTimer != nil {
		h.ejectTimer.Stop()
	}
	h.ejected, h.halfOpen = false, false
	s.syncTrial(b)
	h.ejectGen++
	h.readmitted = time.Now()
	b.fails.w.Store(0)
}
