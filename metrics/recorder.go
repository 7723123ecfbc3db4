package metrics

import (
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/affinitylb/affinity/backend"
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

// Recorder is a [backend.Observer] that counts events per backend and
// serves them as Prometheus metrics ([Recorder.Metrics]), an expvar
// ([Recorder.Expvar]) and a status page ([Recorder.Status]). Gauges
// (state, weight, in-flight) and the request totals are read from the
// watched set's snapshot when they are served.
//
// Make one with [New]. A Recorder is safe for concurrent use. Observe
// takes no lock and, once a backend has been seen, allocates nothing.
type Recorder struct {
	set atomic.Pointer[backend.Set]

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
// that a label never takes more values than these.
var (
	rejectReasons = [...]string{"malformed", "forged", "expired", "unknown", "other"}
	drainReasons  = [...]string{"idle", "timeout", "undone", "removed", "other"}
)

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
}

// Option configures a [Recorder].
type Option func(*Recorder)

// WithMaxBackends caps how many distinct backend IDs the Recorder keeps
// counters for; the default is [DefaultMaxBackends]. Each costs about
// 3 KB (mostly the five-minute request window). When the cap is reached,
// counters of departed backends are forgotten early to make room; if
// there is still none, events about new IDs are only counted in
// affinity_untracked_events_total. n < 1 keeps the default.
func WithMaxBackends(n int) Option {
	return func(r *Recorder) {
		if n >= 1 {
			r.maxBackends = n
		}
	}
}

// WithForgetAfter sets how long the counters of a backend are kept once it
// is no longer a member of the watched set (or, with no set watched, once
// its last event is that old); the default is [DefaultForgetAfter]. Its
// series then disappear from the metrics, and start again from zero should
// the ID come back. d ≤ 0 keeps the default.
func WithForgetAfter(d time.Duration) Option {
	return func(r *Recorder) {
		if d > 0 {
			r.forgetAfter = d
		}
	}
}

// New returns a Recorder reporting on set, which may be nil and set later
// with [Recorder.Watch]. The Recorder counts only the events it is given:
// pass it to [sticky.WithObserver] for request events (picks, bound hits,
// bindings, redispatches, retries, rejected bindings, panics) and to
// [backend.WithObserver] for the set's (state changes, drains).
//
// [sticky.WithObserver]: https://pkg.go.dev/github.com/affinitylb/affinity/sticky#WithObserver
func New(set *backend.Set, opts ...Option) *Recorder {
	r := &Recorder{maxBackends: DefaultMaxBackends, forgetAfter: DefaultForgetAfter, epoch: time.Now()}
	for _, o := range opts {
		o(r)
	}
	r.byID.Store(&map[string]*counters{})
	r.set.Store(set)
	return r
}

// Watch makes r report on set: its members, their state, weight, in-flight
// and request counts, and whether it fails open. It replaces any set given
// before. Use it when the set is built after the Recorder, as it is when
// the Recorder is also the set's observer.
func (r *Recorder) Watch(set *backend.Set) { r.set.Store(set) }

// Observe counts e. It is safe for concurrent use, takes no lock and does
// not allocate, except the first time it sees a backend ID.
func (r *Recorder) Observe(e backend.Event) {
	switch e.Kind {
	case backend.EventRejected:
		r.rejected[reasonIndex(rejectReasons[:], e.Reason)].Add(1)
		return
	case backend.EventPanic:
		r.panics.Add(1)
		return
	case backend.EventDrainEnd:
		r.drainEnds[reasonIndex(drainReasons[:], e.Reason)].Add(1)
		return
	}
	if e.Backend == nil {
		return
	}
	now := r.clock().Unix()
	c := r.counters(e.Backend.ID(), now)
	if c == nil {
		return
	}
	switch e.Kind {
	case backend.EventPick:
		c.picks.Add(1)
		c.requests.add(now)
	case backend.EventBoundHit:
		c.boundHits.Add(1)
		c.requests.add(now)
	case backend.EventBind:
		c.binds.Add(1)
		c.bindings.add(now)
	case backend.EventRedispatch:
		c.redispatchesTo.Add(1)
		c.requests.add(now)
		if p := r.prev(e, now); p != nil {
			p.redispatchesFrom.Add(1)
		}
	case backend.EventRetry:
		c.retriesTo.Add(1)
		c.requests.add(now)
		if p := r.prev(e, now); p != nil {
			p.retriesFrom.Add(1)
		}
	case backend.EventStateChange:
		if int(e.To) >= 0 && int(e.To) < len(c.stateChanges) {
			c.stateChanges[e.To].Add(1)
		}
	case backend.EventDrainStart:
		c.drains.Add(1)
	case backend.EventFailure:
		c.failures.Add(1)
	}
}

// clock returns the time now. It reads only the monotonic clock, which
// costs half what time.Now does where the clock is slow to read (some
// virtual machines), and counts from the wall time when r was made: a step
// of the wall clock is not seen.
func (r *Recorder) clock() time.Time {
	if r.now != nil {
		return r.now()
	}
	return r.epoch.Add(time.Since(r.epoch))
}

// prev returns the counters of e's Prev, if it has one and it is tracked.
func (r *Recorder) prev(e backend.Event, now int64) *counters {
	if e.Prev == nil {
		return nil
	}
	return r.counters(e.Prev.ID(), now)
}

// reasonIndex returns the index of reason in reasons, or of the last,
// "other", if it is not there.
func reasonIndex(reasons []string, reason string) int {
	for i, s := range reasons[:len(reasons)-1] {
		if s == reason {
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
	c := &counters{requests: newSeries(rpsWindow), bindings: newSeries(bindWindow)}
	c.seen.Store(now)
	m = maps.Clone(m)
	m[id] = c
	r.byID.Store(&m)
	return c
}

// prune forgets the counters of backends that have not been members of
// the watched set, nor seen in an event, for longer than forgetAfter.
func (r *Recorder) prune(now int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pruneLocked(now)
}

func (r *Recorder) pruneLocked(now int64) {
	var snap *backend.Snapshot
	if set := r.set.Load(); set != nil {
		snap = set.Snapshot()
	}
	old := *r.byID.Load()
	stale := func(id string, c *counters) bool {
		if snap != nil && snap.Lookup(id) != nil {
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
