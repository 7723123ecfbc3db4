package backend

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/affinitylb/affinity/event"
)

// ErrNotFound is returned for an ID that is not in the set.
var ErrNotFound = errors.New("backend: no such id")

// ErrDuplicate is returned when a backend's ID is already in the set.
var ErrDuplicate = errors.New("backend: duplicate id")

// Set is the membership of a pool of backends and their health. Its methods
// are safe for concurrent use. Readers call [Set.Snapshot], which takes no
// lock; writers (membership and state changes, health checks, passive
// ejection, drains) serialize on a mutex, build a new snapshot and publish
// it atomically, so a reader never sees a half-made change.
//
// The zero Set is empty and ready to use, with the defaults of [NewSet]
// except passive ejection, which it does not do.
type Set struct {
	mu       sync.Mutex // serializes writers
	cur      atomic.Pointer[Snapshot]
	inflight atomic.Int64 // requests in flight on all members, and on removed ones until they finish

	options                                    // fixed by NewSet
	weights   map[string]int                   // group weights set; guarded by mu
	observers atomic.Pointer[[]event.Observer] // never changed once stored; see AddObserver

	// drainTicks, if set (by tests), gives drain watchers their ticks in
	// place of a time.Ticker; see newDrainTicker.
	drainTicks func(d time.Duration) (ticks <-chan time.Time, stop func())
	// checkTicks, if set (by tests), wakes the health checks' scheduler in
	// place of its timer: each time received is its now; see checker.run.
	checkTicks <-chan time.Time
}

// options is a set's configuration, as its [Option]s record it.
type options struct {
	logger       *slog.Logger
	ejection     Ejection
	stallTimeout time.Duration
	slowStart    time.Duration
	failClosed   bool
	drainIdle    time.Duration
	groupWeights map[string]int
}

// Option configures a [Set]. An option only records its value; [NewSet]
// validates them all, and reports every invalid one.
type Option func(*options)

// WithLogger sets the logger that receives membership and state changes, at
// Info (ejections at Warn). By default, and with a nil l, nothing is
// logged.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.logger = l }
}

// WithEjection configures passive health checking; the default is
// [DefaultEjection], and Ejection{} turns it off. NewSet rejects an
// Ejection whose fields are out of range (see [Ejection]).
func WithEjection(e Ejection) Option {
	return func(o *options) { o.ejection = e }
}

// WithSlowStart makes a backend that joins the set, or becomes healthy
// again, count as busier than it is for window
// ([Snapshot.Load]): at first as if it carried its whole fair
// share of the load, then less and less, so that least-connections picking
// does not flood it with every new client while its own count is zero. 0,
// the default, turns slow start off; a negative window is an error.
func WithSlowStart(window time.Duration) Option {
	return func(o *options) { o.slowStart = window }
}

// WithFailOpen sets what happens when no member is healthy. Failing open,
// the default, routes to every member that is not draining, unhealthy or
// not, rather than to none (ELB's fail-open, Envoy's panic mode): a health
// check that wrongly fails everywhere does not take the service down.
// Failing closed answers such requests with "no backend".
func WithFailOpen(open bool) Option {
	return func(o *options) { o.failClosed = !open }
}

// WithDrainIdle sets how long a draining backend must have served no
// request before it leaves the set; see [Set.Drain]. It must be positive;
// the default is [DefaultDrainIdle].
func WithDrainIdle(d time.Duration) Option {
	return func(o *options) { o.drainIdle = d }
}

// DefaultGroupWeight is the weight of a group that was given none.
const DefaultGroupWeight = 1

// MaxGroupWeight is the largest weight a group may have.
const MaxGroupWeight = 1000

// WithGroupWeights sets the weights of groups ([Config.Group]), 0 to
// [MaxGroupWeight] each: a new client chooses a group in proportion to
// them, and a group at weight 0 takes no new clients but keeps those bound
// to it. A group given no weight weighs [DefaultGroupWeight]. A weight may
// name a group that has no member yet. The map is copied; later options
// add to the weights of earlier ones.
func WithGroupWeights(w map[string]int) Option {
	return func(o *options) {
		if o.groupWeights == nil {
			o.groupWeights = make(map[string]int, len(w))
		}
		maps.Copy(o.groupWeights, w)
	}
}

// checkGroupWeight validates the weight w of group g, as option names it.
func checkGroupWeight(option, g string, w int) error {
	if err := validateGroup(g); err != nil {
		return fmt.Errorf("backend: %s: %w", option, err)
	}
	if w < 0 || w > MaxGroupWeight {
		return fmt.Errorf("backend: %s: weight %d out of range 0..%d", option, w, MaxGroupWeight)
	}
	return nil
}

// validate reports every invalid value o holds, each naming its option.
func (o *options) validate() error {
	var errs []error
	if err := o.ejection.validate(); err != nil {
		errs = append(errs, err)
	}
	if o.slowStart < 0 {
		errs = append(errs, fmt.Errorf("backend: WithSlowStart(%v): must not be negative", o.slowStart))
	}
	if o.drainIdle <= 0 {
		errs = append(errs, fmt.Errorf("backend: WithDrainIdle(%v): must be positive", o.drainIdle))
	}
	if o.stallTimeout < 0 {
		errs = append(errs, fmt.Errorf("backend: WithStallTimeout(%v): must not be negative", o.stallTimeout))
	}
	for _, g := range slices.Sorted(maps.Keys(o.groupWeights)) {
		w := o.groupWeights[g]
		if err := checkGroupWeight(fmt.Sprintf("WithGroupWeights(%q=%d)", g, w), g, w); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// NewSet returns a set holding the given backends, configured by opts:
// healthy or, those whose config says so, draining ([Config.Draining]).
// It fails if an option or a config is invalid or two configs share an
// ID; invalid options are reported together, each naming the option and
// its value.
func NewSet(backends []Config, opts ...Option) (*Set, error) {
	o := options{ejection: DefaultEjection, stallTimeout: DefaultStallTimeout, drainIdle: DefaultDrainIdle}
	for _, opt := range opts {
		opt(&o)
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	s := &Set{options: o, weights: o.groupWeights}
	bs := make([]*Backend, 0, len(backends))
	seen := make(map[string]bool, len(backends))
	for _, c := range backends {
		b, err := newBackend(c, s)
		if err != nil {
			return nil, err
		}
		if seen[b.id] {
			return nil, fmt.Errorf("%w %q", ErrDuplicate, b.id)
		}
		seen[b.id] = true
		bs = append(bs, b)
	}
	s.cur.Store(s.newSnapshot(1, bs))
	return s, nil
}

// Snapshot returns the current membership. It takes no lock and does not
// allocate. The snapshot never changes; later changes publish a new one.
func (s *Set) Snapshot() *Snapshot {
	if p := s.cur.Load(); p != nil {
		return p
	}
	// The zero Set: publish an empty snapshot, once.
	s.cur.CompareAndSwap(nil, s.newSnapshot(0, nil))
	return s.cur.Load()
}

// Add adds a backend built from c and returns it: healthy, or draining if
// c says so ([Config.Draining]). With slow start on, it starts ramping up.
func (s *Set) Add(c Config) (*Backend, error) {
	b, err := newBackend(c, s)
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
	b.ramp.start(s.slowStart)
	s.publish(old, append(bs, b))
	s.log("backend added", "id", b.id, "url", b.url.String(), "weight", b.weight)
	return b, nil
}

// Remove takes the backend with the given ID out of the set at once and
// returns it. From the moment Remove returns, the backend admits no new
// requests; requests it was already serving
// finish normally, and [Backend.InFlight] reports how many remain.
func (s *Set) Remove(id string) (*Backend, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.Snapshot().Lookup(id)
	if b == nil {
		return nil, fmt.Errorf("%w %q", ErrNotFound, id)
	}
	s.remove(b)
	s.log("backend removed", "id", id, "inflight", b.InFlight())
	return b, nil
}

// remove takes the member b out of the set; the caller holds s.mu.
func (s *Set) remove(b *Backend) {
	old := s.Snapshot()
	bs := make([]*Backend, 0, len(old.all)-1)
	for _, x := range old.all {
		if x != b {
			bs = append(bs, x)
		}
	}
	s.publish(old, bs)
	s.retire(b)
}

// retire marks b, no longer a member, removed: it admits no more requests,
// and its ejection timer and drain end. The caller holds s.mu.
func (s *Set) retire(b *Backend) {
	b.removed.Store(true)
	s.endEjection(b)
	b.health.drainGen++
}

// SetState sets the state of the backend with the given ID, as an
// operator would: Healthy clears whatever held it out of rotation (a failed
// health check, an ejection, a drain, its config's Draining until a list
// given to [Set.Update] says it again); Unhealthy marks it down until a
// health check or SetState says otherwise; Draining drains it without
// removing it (see [Set.Drain] for a drain that ends in removal). Setting
// the state a backend already has is a no-op.
func (s *Set) SetState(id string, st State) error {
	if st != Healthy && st != Unhealthy && st != Draining {
		return fmt.Errorf("backend: %s: invalid state %d", id, int32(st))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.Snapshot().Lookup(id)
	if b == nil {
		return fmt.Errorf("%w %q", ErrNotFound, id)
	}
	h := &b.health
	switch st {
	case Healthy:
		h.down, h.draining, h.retiring = false, false, false
		h.drainGen++
		h.drainDeadline = time.Time{}
		s.endEjection(b)
	case Unhealthy:
		h.down, h.downWhy = true, "operator"
	case Draining:
		if !h.draining {
			h.draining, h.drainWhy, h.drainDeadline = true, "operator", time.Time{}
		}
	}
	s.syncTrial(b)
	s.refresh(b)
	return nil
}

// SetGroupWeight sets the weight of group, 0 to [MaxGroupWeight], and
// publishes a new snapshot that carries it (see [WithGroupWeights]); the
// group need not have a member yet. Setting the weight a group already has
// is a no-op.
func (s *Set) SetGroupWeight(group string, w int) error {
	if err := checkGroupWeight(fmt.Sprintf("SetGroupWeight(%q, %d)", group, w), group, w); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := s.weights[group]; ok && cur == w {
		return nil
	}
	if s.weights == nil {
		s.weights = make(map[string]int)
	}
	s.weights[group] = w
	old := s.Snapshot()
	s.publish(old, old.all)
	s.log("group weight set", "group", group, "weight", w)
	return nil
}

// publish replaces the current snapshot; the caller holds s.mu.
func (s *Set) publish(old *Snapshot, bs []*Backend) {
	s.cur.Store(s.newSnapshot(old.version+1, bs))
}

func (s *Set) log(msg string, args ...any) {
	if s.logger != nil {
		s.logger.Info(msg, args...)
	}
}

func (s *Set) logWarn(msg string, args ...any) {
	if s.logger != nil {
		s.logger.Warn(msg, args...)
	}
}

// Update makes the set's membership exactly cfgs, as a [Source] delivers
// it, in one change: one new snapshot. Backends whose ID, URL, weight and group
// are unchanged stay as they are, with their state and requests in flight,
// and take their config's metadata and [Config.Draining] if they changed;
// new IDs are added, healthy or, if their config says so, draining;
// missing ones are removed as by [Set.Remove]; an ID whose URL, weight or
// group changed is replaced by a new backend. If any config is invalid or two
// share an ID, Update returns an error and changes nothing.
func (s *Set) Update(cfgs []Config) error {
	want := make([]*Backend, 0, len(cfgs))
	seen := make(map[string]bool, len(cfgs))
	for _, c := range cfgs {
		b, err := newBackend(c, s)
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
	var added, replaced, removed, relabeled, redrained []string
	for i, b := range want {
		cur := old.Lookup(b.id)
		switch {
		case cur == nil:
			added = append(added, b.id)
			b.ramp.start(s.slowStart)
		case cur.url.String() == b.url.String() && cur.weight == b.weight && cur.group == b.group:
			if !cur.sameMetadata(b) {
				cur.meta.Store(b.meta.Load())
				relabeled = append(relabeled, b.id)
			}
			if cur.health.retiring != b.health.retiring {
				cur.health.retiring = b.health.retiring
				if s.derive(cur) {
					redrained = append(redrained, b.id)
				}
			}
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
	if len(added)+len(replaced)+len(removed)+len(relabeled)+len(redrained) == 0 {
		return nil
	}
	s.publish(old, want)
	for _, b := range gone {
		s.retire(b)
	}
	s.log("backends updated", "added", added, "replaced", replaced, "removed", removed, "metadata", relabeled, "draining", redrained, "total", len(want))
	return nil
}
