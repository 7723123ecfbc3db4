package balancer

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/internal/accounting"
)

// The load factor is held in fixed point, scaled by loadScale, so that Pick
// compares integers. maxLoadFactor keeps the products in bound.admits
// within 128 bits.
const (
	loadScale     = 1 << 16
	maxLoadFactor = 1 << 20
)

// ConsistentHash is a [Picker] that sends the requests carrying the same
// affinity key ([Info.KeyHash]) to the same backend, by consistent hashing
// (Maglev; see the package doc). Requests that carry none ([Info.Keyed] is
// false) go to a fallback picker, [LeastConnections] unless [WithFallback]
// says otherwise.
//
// A key goes to its backend whenever that backend keeps its bound clients
// ([backend.Snapshot.KeepsBound]): healthy, or draining, which keeps its
// keys and takes no others. The keys of an unhealthy backend go where
// they would if it left the set, so they move once, and come back if it
// recovers; no other key moves. A backend that joins or leaves moves its
// share of the keys and few others. Processes with the same membership
// map every key alike, once its table is built ([ConsistentHash.Prepare]
// waits for that). Loads are not bounded unless [WithLoadFactor] says so.
//
// Picks take no lock and allocate nothing, but for the few that build a
// table. The zero value is ready to use, with the defaults. ConsistentHash
// is safe for concurrent use and must not be copied after first use.
type ConsistentHash struct {
	factor   uint64 // load factor × loadScale; 0: loads are not bounded
	fallback Picker // picks unkeyed requests; nil means lc
	lc       LeastConnections

	mu          sync.Mutex // serializes table builds
	tables      atomic.Pointer[tables]
	ups         atomic.Pointer[upTables] // tables of the members that serve
	building    atomic.Bool              // a goroutine is building a table in the background
	beforeBuild func()                   // test hook: run by that goroutine, holding mu, before it builds
}

// HashOption configures a [ConsistentHash] built by [NewConsistentHash],
// which validates it.
type HashOption func(*hashOptions)

// hashOptions records the values of a NewConsistentHash's options.
type hashOptions struct {
	factor      float64
	factorSet   bool
	fallback    Picker
	fallbackSet bool
}

// WithLoadFactor bounds loads with the load factor c, from 1 to 2^20: a
// backend takes a keyed request only while its load stays within c times
// its weighted share of the set's, and a key whose backend is over its
// bound goes to the next backend in the table that is not. At 1 loads are
// as even as they can be and keys move most; the larger c, the more load a
// backend takes before its keys spill over to others. 1.25 is a common
// choice. Without WithLoadFactor, keys never spill.
func WithLoadFactor(c float64) HashOption {
	return func(o *hashOptions) { o.factor, o.factorSet = c, true }
}

// WithFallback sets the picker for requests that carry no affinity key;
// it must be neither nil nor a nil pointer.
func WithFallback(p Picker) HashOption {
	return func(o *hashOptions) { o.fallback, o.fallbackSet = p, true }
}

// NewConsistentHash returns a ConsistentHash configured by opts. It fails,
// naming every invalid option and its value, if any is invalid.
func NewConsistentHash(opts ...HashOption) (*ConsistentHash, error) {
	var o hashOptions
	for _, opt := range opts {
		opt(&o)
	}
	var errs []error
	if o.factorSet && !(o.factor >= 1 && o.factor <= maxLoadFactor) { // NaN too
		errs = append(errs, fmt.Errorf("balancer: WithLoadFactor(%v): out of range 1..%d", o.factor, maxLoadFactor))
	}
	if o.fallbackSet && o.fallback == nil {
		errs = append(errs, errors.New("balancer: WithFallback(nil): nil picker"))
	} else if v := reflect.ValueOf(o.fallback); o.fallback != nil && v.Kind() == reflect.Pointer && v.IsNil() {
		errs = append(errs, fmt.Errorf("balancer: WithFallback((%T)(nil)): nil picker", o.fallback))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	h := &ConsistentHash{fallback: o.fallback}
	if o.factorSet {
		h.factor = uint64(math.Round(o.factor * loadScale))
	}
	return h, nil
}

// Pick returns, if info.Keyed, the backend for info.KeyHash among the members
// of info.Snapshot that serve it, as it reads their states: one that takes
// new clients, or the key's own backend if it is draining. It returns
// [ErrNoBackend] when no member does. Otherwise it returns what the
// fallback picker does.
func (h *ConsistentHash) Pick(info Info) (*backend.Backend, error) {
	if !info.Keyed {
		if h.fallback != nil {
			return h.fallback.Pick(info)
		}
		return h.lc.Pick(info)
	}
	s := info.Snapshot
	if len(s.Backends()) == 0 {
		return nil, ErrNoBackend
	}
	ts := h.tables.Load()
	t := ts.find(s)
	switch {
	case t != nil:
	case ts == nil:
		t = h.build(s) // the first table: there is none to answer from meanwhile
	case !ts.cur().keeps(info.KeyHash, s):
		// The key must move: where the new membership's table says,
		// so that it moves once.
		t = h.build(s)
	default:
		h.buildLater(s)
		t = ts.cur()
	}
	var bd *bound
	if h.factor != 0 {
		b := newBound(h.factor, s.InFlight(), uint64(s.Weight()))
		bd = &b
	}
	if b := h.pick(t, info.KeyHash, s, bd); b != nil {
		return b, nil
	}
	// No backend of t takes it: states changed during the pick. Take one
	// of s's routable backends that still takes new clients.
	rs := s.Routable()
	for i := range rs {
		if b := rs[(info.KeyHash+uint64(i))%uint64(len(rs))]; takesNew(s, b) && !b.Removed() {
			return b, nil
		}
	}
	return nil, ErrNoBackend
}

// Prepare builds the lookup table of s's membership, unless it is built
// already, and returns when keyed picks from s use it. Most picks never
// wait for a table: after a change of membership they are answered from
// the last table built while one goroutine builds the new table. Prepare is for a caller that
// wants the new mapping in force as soon as it returns, such as a test; it
// takes as long as a build, up to a few milliseconds.
func (h *ConsistentHash) Prepare(s *backend.Snapshot) {
	if len(s.Backends()) > 0 {
		h.build(s)
	}
}

// build builds the table of s unless another goroutine did while this one
// waited, caches it and returns it. Up to maxTables tables are kept:
// requests routed just before a membership change pick after requests
// routed just after it, and the snapshots of a set's groups of backends
// ([backend.Snapshot.Group]) have a membership each; with one table, each
// would rebuild the other's.
func (h *ConsistentHash) build(s *backend.Snapshot) *table {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.buildLocked(s)
}

// buildLocked is build for a caller that holds h.mu.
func (h *ConsistentHash) buildLocked(s *backend.Snapshot) *table {
	ts := h.tables.Load()
	if t := ts.find(s); t != nil {
		return t
	}
	var last *table
	if ts != nil {
		last = ts.cur()
	}
	t := newTable(s, last)
	next := &tables{list: []*table{t}}
	if ts != nil {
		next.list = append(next.list, ts.list[:min(len(ts.list), maxTables-1)]...)
	}
	h.tables.Store(next)
	return t
}

// buildLater starts a goroutine that builds the table of s, unless one is
// building a table already: picks from snapshots whose table is not built
// keep asking, so the next one after that build starts the next.
func (h *ConsistentHash) buildLater(s *backend.Snapshot) {
	if h.building.Load() || !h.building.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer h.building.Store(false)
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.beforeBuild != nil {
			h.beforeBuild()
		}
		h.buildLocked(s)
	}()
}

// maxTables bounds the memberships whose tables a ConsistentHash keeps,
// and those of the serving members it keeps besides.
const maxTables = 8

// tables holds the tables of the memberships most recently built for,
// the latest first; at most maxTables.
type tables struct{ list []*table }

// cur returns the table built last.
func (ts *tables) cur() *table { return ts.list[0] }

// find returns the table of s's membership, or nil. ts may be nil.
func (ts *tables) find(s *backend.Snapshot) *table {
	if ts == nil {
		return nil
	}
	for _, t := range ts.list {
		if t.of(s) {
			return t
		}
	}
	return nil
}

// pick returns the backend for key, as seen from s, from t, the table of
// s's membership or of an older one: that of key's slot, its owner, if it
// serves and, when bd is not nil and it takes new clients, bd admits one
// more request on it, or if it is half-open and admits the request as its
// trial (see [backend.Ejection]). If the owner is over its bound, the key
// spills along t (see walk). If it does not serve, the key goes where the
// table of the members that do would put it, so that it does not move
// again when its owner leaves the set, which gives the same table; or, if
// that backend takes no new clients (it drains: the key is not its own),
// on along that table. nil if no backend takes the key.
func (h *ConsistentHash) pick(t *table, key uint64, s *backend.Snapshot, bd *bound) *backend.Backend {
	slot := key % uint64(len(t.slots))
	own := t.backends[t.slots[slot]]
	serves := !own.Removed() && s.KeepsBound(own)
	switch {
	case serves && (bd == nil || !takesNew(s, own) || bd.admits(max(own.InFlight(), 0), own.Weight())):
		return own
	case !serves && !own.Removed() && accounting.TryTrial(own):
		return own // half-open: its own key is its trial
	case serves:
		if b := t.walk(slot, s, bd); b != nil {
			return b
		}
		return own
	}
	up := h.upTable(s)
	if up == nil {
		return nil
	}
	slot = key % uint64(len(up.slots))
	if b := up.backends[up.slots[slot]]; !b.Removed() && takesNew(s, b) && (bd == nil || bd.admits(max(b.InFlight(), 0), b.Weight())) {
		return b
	}
	return up.walk(slot, s, bd)
}

// walk returns the backend of the first slot of t after slot whose backend
// takes new clients and, when bd is not nil, may take one more request;
// else, with bd, the least loaded relative to weight of those that take
// new clients; else nil.
func (t *table) walk(slot uint64, s *backend.Snapshot, bd *bound) *backend.Backend {
	if len(t.backends) == 1 || len(s.Routable()) == 0 {
		return nil
	}
	m := uint64(len(t.slots))
	var best *backend.Backend
	var bestN, bestW int64
	last := t.slots[slot]
	for range m - 1 { // every other slot once, so every backend
		if slot++; slot == m {
			slot = 0
		}
		i := t.slots[slot]
		if i == last {
			continue
		}
		last = i
		b := t.backends[i]
		if b.Removed() || !takesNew(s, b) {
			continue
		}
		if bd == nil {
			return b
		}
		n, w := max(b.InFlight(), 0), b.Weight()
		if bd.admits(n, w) {
			return b
		}
		if best == nil || n*bestW < bestN*w {
			best, bestN, bestW = b, n, w
		}
	}
	return best
}

// upTable returns the table of the members of s that serve their clients,
// built the first time it is asked for s, or nil if none does. The tables
// of the two snapshots last asked for are kept; a snapshot whose serving
// members are those of one of them shares its slots.
func (h *ConsistentHash) upTable(s *backend.Snapshot) *table {
	if u := h.ups.Load().find(s); u != nil {
		return u.t
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	old := h.ups.Load()
	if u := old.find(s); u != nil {
		return u.t
	}
	var up []*backend.Backend
	for _, b := range s.Backends() {
		if !b.Removed() && s.KeepsBound(b) {
			up = append(up, b)
		}
	}
	u := &upTable{snap: s}
	if len(up) > 0 {
		u.t = old.same(up)
		if u.t == nil {
			u.t = newTableOf(up)
		}
	}
	next := &upTables{list: []*upTable{u}}
	if old != nil {
		next.list = append(next.list, old.list[:min(len(old.list), maxTables-1)]...)
	}
	h.ups.Store(next)
	return u.t
}

// upTables holds the tables of serving members of the snapshots most
// recently asked for, the latest first; at most maxTables.
type upTables struct{ list []*upTable }

// same returns the table of one of u's entries whose members are up, or
// nil. u may be nil.
func (u *upTables) same(up []*backend.Backend) *table {
	if u == nil {
		return nil
	}
	for _, e := range u.list {
		if e.t != nil && slices.Equal(e.t.members, up) {
			return e.t
		}
	}
	return nil
}

// upTable is the table of the members of snap that serve, nil if none
// does.
type upTable struct {
	snap *backend.Snapshot
	t    *table
}

// find returns the entry of s, or nil. u may be nil.
func (u *upTables) find(s *backend.Snapshot) *upTable {
	if u == nil {
		return nil
	}
	for _, e := range u.list {
		if e.snap == s {
			return e
		}
	}
	return nil
}

// keeps reports whether the backend that t maps key to is still a member
// that serves, as seen from s.
func (t *table) keeps(key uint64, s *backend.Snapshot) bool {
	own := t.backends[t.slots[key%uint64(len(t.slots))]]
	return !own.Removed() && s.KeepsBound(own)
}

// takesNew reports whether b, a member of s or one that was, takes new
// clients as seen from s: it is healthy, or s fails open and b is
// unhealthy. For a member s lists among its routable ones, it answers as
// [backend.Snapshot.TakesNew] does, without its lookup by ID, and it also
// answers for members of the older tables this picker keeps.
func takesNew(s *backend.Snapshot, b *backend.Backend) bool {
	switch b.State() {
	case backend.Healthy:
		return true
	case backend.Unhealthy:
		return s.FailOpen()
	}
	return false
}

// bound says which backends may take one more request. A backend of weight
// w with n requests in flight may if n+1 <= ceil(c·(T+1)·w/W), which is
// n·W < c·(T+1)·w, with T the set's in-flight count and W the total weight
// of the routable backends. With c scaled by loadScale that is
// n·W·loadScale < factor·(T+1)·w, compared as 128-bit products: factor <
// 2^37, T+1 <= 2^63 and w <= 2^16 leave no overflow.
type bound struct {
	capHi, capLo uint64 // factor·(T+1)
	den          uint64 // W·loadScale
}

// newBound returns the bound for a load factor of factor/loadScale, total
// requests in flight on the set, and routable backends of total weight
// weight.
func newBound(factor uint64, total int64, weight uint64) bound {
	hi, lo := bits.Mul64(factor, uint64(max(total, 0))+1)
	return bound{capHi: hi, capLo: lo, den: weight * loadScale}
}

// admits reports whether a backend of weight w with n >= 0 requests in
// flight may take one more.
func (bd *bound) admits(n, w int64) bool {
	lh, ll := bits.Mul64(uint64(n), bd.den)
	rh, rl := bits.Mul64(bd.capLo, uint64(w))
	rh += bd.capHi * uint64(w)
	return lh < rh || lh == rh && ll < rl
}
