package metrics

import (
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/event"
)

// Defaults of the options.
const (
	// DefaultMaxBackends is how many distinct backend IDs a Recorder keeps
	// counters for unless [WithMaxBackends] says otherwise.
	DefaultMaxBackends = 10_000
	// DefaultForgetAfter is how long a Recorder keeps the counters of a
	// backend that is no longer a member of its set, unless
	// [WithForgetAfter] says otherwise.
	DefaultForgetAfter = 10 * time.Minute
)

// Lengths of the per-second windows.
const (
	rpsWindow  = 300 // requests per second, for the status page's chart
	bindWindow = 60  // bindings made in the last minute
)

// Recorder is an [event.Observer] that counts events per backend and
// serves them as Prometheus metrics ([Recorder.Metrics]), an expvar
// ([Recorder.Expvar]) and a status page ([Recorder.Status]). Gauges
// (state, weight, in-flight) and the request totals are read from its
// set's snapshot when they are served.
//
// Make one with [New]. A Recorder is safe for concurrent use. Observe
// takes no lock and, once a backend has been seen, allocates nothing.
type Recorder struct {
	set *backend.Set

	// byID maps a backend ID to its counters. It is copied on write, under
	// mu, when an ID is first seen or counters are forgotten; Observe only
	// loads it.
	byID      atomic.Pointer[map[string]*counters]
	mu        sync.Mutex
	lastPrune int64 // Unix second of the last prune made to make room; guarded by mu

	rejected  [len(rejectReasons)]atomic.Int64
	drainEnds [len(drainReasons)]atomic.Int64
	panics    atomic.Int64
	untracked atomic.Int64 // events about backends beyond the cap

	maxBackends int
	forgetAfter time.Duration
	epoch       time.Time        // when the Recorder was made, with a monotonic reading
	now         func() time.Time // replaces the clock in tests
}

// Reasons, as labelled: the known ones, then "other" for anything else, so
// that a label never takes more values than these. The last, zero, entry
// stands for "other".
var (
	rejectReasons = [...]event.Reason{event.Malformed, event.Forged, event.Expired, event.Unknown, 0}
	drainReasons  = [...]event.Reason{event.DrainIdle, event.DrainTimeout, event.DrainUndone, event.DrainRemoved, 0}
)

// reasonLabel is the label of an entry of rejectReasons or drainReasons.
func reasonLabel(r event.Reason) string {
	if r == 0 {
		return "other"
	}
	return r.String()
}

// states are the backend states, indexed by their value.
var states = [...]backend.State{backend.Healthy, backend.Unhealthy, backend.Draining}

// counters are one backend's event counts.
type counters struct {
	picks, boundHits, binds          atomic.Int64
	redispatchesTo, redispatchesFrom atomic.Int64
	retriesTo, retriesFrom           atomic.Int64
	drains                           atomic.Int64
	failures                         atomic.Int64
	stateChanges                     [len(states)]atomic.Int64
	seen                             atomic.Int64 // Unix second of the last event
	requests                         series       // requests placed, per second
	bindings                         series       // bindings made, per second
	latency                          *latency     // durations and statuses of Done requests
}

// options is a Recorder's configuration, as its [Option]s record it.
type options struct {
	maxBackends int
	forgetAfter time.Duration
}

// Option configures a [Recorder]. An option only records its value; [New]
// validates them all, and reports every invalid one.
type Option func(*options)

// WithMaxBackends caps how many distinct backend IDs the Recorder keeps
// counters for; the default is [DefaultMaxBackends], and n must be at
// least 1. Each costs about 10 KB (mostly the five-minute request window
// and the last minute's request durations).
// When the cap is reached, counters of departed backends are forgotten
// early to make room; if there is still none, events about new IDs are
// only counted in affinity_untracked_events_total.
func WithMaxBackends(n int) Option {
	return func(o *options) { o.maxBackends = n }
}

// WithForgetAfter sets how long the counters of a backend are kept once it
// is no longer a member of the set (or, for an ID that never was, once its
// last event is that old); the default is [DefaultForgetAfter], and d must
// be positive. Its series then disappear from the metrics, and start again
// from zero should the ID come back.
func WithForgetAfter(d time.Duration) Option {
	return func(o *options) { o.forgetAfter = d }
}

// New returns a Recorder reporting on set: its members, their state,
// weight, in-flight and request counts, and whether it fails open. It adds
// the Recorder to the set's observers ([backend.Set.AddObserver]), so
// that it counts the set's events (state changes, drains); give it to the
// handler too, with [sticky.WithObserver], for request events (picks,
// bound hits, bindings, redispatches, retries, rejected bindings,
// failures, panics, and the Done event that ends each request, whose
// duration and status feed the histograms). New fails on a nil set and on invalid options,
// reporting them all.
//
// [sticky.WithObserver]: https://pkg.go.dev/github.com/affinitylb/affinity/sticky#WithObserver
func New(set *backend.Set, opts ...Option) (*Recorder, error) {
	o := options{maxBackends: DefaultMaxBackends, forgetAfter: DefaultForgetAfter}
	for _, opt := range opts {
		opt(&o)
	}
	var errs []error
	if set == nil {
		errs = append(errs, errors.New("metrics: nil backend set"))
	}
	if o.maxBackends < 1 {
		errs = append(errs, fmt.Errorf("metrics: WithMaxBackends(%d): must be at least 1", o.maxBackends))
	}
	if o.forgetAfter <= 0 {
		errs = append(errs, fmt.Errorf("metrics: WithForgetAfter(%v): must be positive", o.forgetAfter))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	r := &Recorder{set: set, maxBackends: o.maxBackends, forgetAfter: o.forgetAfter, epoch: time.Now()}
	r.byID.Store(&map[string]*counters{})
	set.AddObserver(r)
	return r, nil
}

// Observe counts e. It is safe for concurrent use, takes no lock and does
// not allocate, except the first time it sees a backend ID.
func (r *Recorder) Observe(e event.Event) {
	switch e.Kind {
	case event.Rejected:
		r.rejected[reasonIndex(rejectReasons[:], e.Reason)].Add(1)
		return
	case event.Panic:
		r.panics.Add(1)
		return
	case event.DrainEnd:
		r.drainEnds[reasonIndex(drainReasons[:], e.Reason)].Add(1)
		return
	}
	if e.Backend == "" {
		return
	}
	now := r.clock().Unix()
	c := r.counters(e.Backend, now)
	if c == nil {
		return
	}
	switch e.Kind {
	case event.Pick:
		c.picks.Add(1)
		c.requests.add(now)
	case event.BoundHit:
		c.boundHits.Add(1)
		c.requests.add(now)
	case event.Bind:
		c.binds.Add(1)
		c.bindings.add(now)
	case event.Redispatch:
		c.redispatchesTo.Add(1)
		c.requests.add(now)
		if p := r.prev(e, now); p != nil {
			p.redispatchesFrom.Add(1)
		}
	case event.Retry:
		c.retriesTo.Add(1)
		c.requests.add(now)
		if p := r.prev(e, now); p != nil {
			p.retriesFrom.Add(1)
		}
	case event.StateChange:
		if int(e.To) >= 0 && int(e.To) < len(c.stateChanges) {
			c.stateChanges[e.To].Add(1)
		}
	case event.DrainStart:
		c.drains.Add(1)
	case event.Failure:
		c.failures.Add(1)
	case event.Done:
		c.latency.observe(e.Elapsed, e.Status, now)
	}
}

// clock returns the time now. It reads only the monotonic clock, which is
// cheaper than time.Now's two readings where the clock is slow to read
// (some virtual machines), and counts from the wall time when r was made:
// a step of the wall clock is not seen.
func (r *Recorder) clock() time.Time {
	if r.now != nil {
		return r.now()
	}
	return r.epoch.Add(time.Since(r.epoch))
}

// prev returns the counters of e's Prev, if it has one and it is tracked.
func (r *Recorder) prev(e event.Event, now int64) *counters {
	if e.Prev == "" {
		return nil
	}
	return r.counters(e.Prev, now)
}

// reasonIndex returns the index of reason in reasons, or of the last,
// "other", if it is not there.
func reasonIndex(reasons []event.Reason, reason event.Reason) int {
	for i, r := range reasons[:len(reasons)-1] {
		if r == reason {
			return i
		}
	}
	return len(reasons) - 1
}

// counters returns the counters of the backend id, marked seen at now,
// creating them on first sight; nil, with the event counted as untracked,
// if the cap leaves no room.
func (r *Recorder) counters(id string, now int64) *counters {
	c := (*r.byID.Load())[id]
	if c == nil {
		if c = r.track(id, now); c == nil {
			r.untracked.Add(1)
			return nil
		}
	}
	if c.seen.Load() < now {
		c.seen.Store(now)
	}
	return c
}

// track adds counters for id.
func (r *Recorder) track(id string, now int64) *counters {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c := (*r.byID.Load())[id]; c != nil {
		return c
	}
	if len(*r.byID.Load()) >= r.maxBackends && r.lastPrune != now {
		// Make room, at most once a second: a flood of new IDs at the
		// cap must not make every event scan them all.
		r.lastPrune = now
		r.pruneLocked(now)
	}
	m := *r.byID.Load()
	if len(m) >= r.maxBackends {
		return nil
	}
	c := &counters{requests: newSeries(rpsWindow), bindings: newSeries(bindWindow), latency: newLatency()}
	c.seen.Store(now)
	m = maps.Clone(m)
	m[id] = c
	r.byID.Store(&m)
	return c
}

// prune forgets the counters of backends that have not been members of
// the set, nor seen in an event, for longer than forgetAfter.
func (r *Recorder) prune(now int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pruneLocked(now)
}

func (r *Recorder) pruneLocked(now int64) {
	snap := r.set.Snapshot()
	old := *r.byID.Load()
	stale := func(id string, c *counters) bool {
		if snap.Lookup(id) != nil {
			c.seen.Store(now) // a member: its absence starts counting when it leaves
			return false
		}
		return time.Duration(now-c.seen.Load())*time.Second > r.forgetAfter
	}
	var m map[string]*counters
	for id, c := range old {
		if !stale(id, c) {
			continue
		}
		if m == nil {
			m = maps.Clone(old)
		}
		delete(m, id)
	}
	if m != nil {
		r.byID.Store(&m)
	}
}
