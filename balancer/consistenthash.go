package balancer

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"sync"
	"sync/atomic"

	"github.com/affinitylb/affinity/backend"
)

// DefaultLoadFactor is the load factor of a [ConsistentHash] built without
// [WithLoadFactor], and of its zero value.
const DefaultLoadFactor = 1.25

// The load factor is held in fixed point, scaled by loadScale, so that Pick
// compares integers. maxLoadFactor keeps the products in bound.admits
// within 128 bits.
const (
	loadScale     = 1 << 16
	maxLoadFactor = 1 << 20
)

// ConsistentHash is a [Picker] that sends the requests carrying the same
// affinity key ([Info.Key]) to the same backend, by consistent hashing with
// bounded loads. Requests that carry none ([Info.Keyed] is false) go to a
// fallback picker, [LeastConnections] unless [WithFallback] says otherwise,
// so ConsistentHash can place keyed and unkeyed traffic alike.
//
// Keys are mapped by Maglev hashing (Eisenbud et al., NSDI 2016): a key goes
// to the backend holding slot Key mod M of a lookup table of M slots, built
// from the snapshot's routable backends. Each backend holds a share of the
// slots proportional to its weight, within one slot. The table depends only
// on the backends' IDs and weights, not on the order they were added, so
// processes with the same membership map every key alike. When a backend
// joins or leaves the routable set, its share of the keys moves and few
// others do: measured over 10,000 keys, removing one backend of 10 or of 100
// moves its keys and 0.3% or 0.6% of all keys besides. Unhealthy and
// draining backends hold no slots, and get their keys back when healthy
// again. M is 65537 for up to 6,553 routable backends and grows, to the next
// of a few fixed primes, only past that; a change of M moves nearly every
// key.
//
// Loads are bounded (Mirrokni, Thorup and Zadimoghaddam, "Consistent Hashing
// with Bounded Loads", SODA 2018): a backend takes the request only if its
// in-flight count, counting the request, stays within c times its weighted
// share of the set's. With T the set's in-flight count
// ([backend.Snapshot.InFlight]) and W the total weight of the routable
// backends, backend b may take the request if
//
//	b.InFlight()+1 <= ceil(c × (T+1) × b.Weight() / W)
//
// computed in integers. If the key's backend may not, the slots after the
// key's are tried in turn and the first backend that may takes the request,
// so the keys of a busy backend spill over to others and return when its
// load falls. Some backend always may; should none, because counts changed
// during the pick, the least loaded relative to weight takes the request.
// The load factor c is [DefaultLoadFactor] unless [WithLoadFactor] says
// otherwise: the closer to 1, the more even the load and the more often keys
// spill over.
//
// A table takes 1 to 3 ms to build for up to 6,553 backends and 5 to 8 ms
// for 10,000 (on a 2-core AMD EPYC VM), and no pick waits for one but the
// very first keyed pick, which builds the first table, and those that come
// while it does. After that, the first keyed pick from a snapshot whose
// table is not built starts a goroutine that builds it, one build at a
// time, and until it is built, keyed picks from that snapshot are answered
// from the last table built: keys stay on their backend while the snapshot
// routes to it, those of a backend gone or out of rotation go on to the
// next backends in that table, as a busy backend's do, and a backend that
// joined gets keys once the new table is in use. Processes agree on the
// mapping of a membership once its table is built; [ConsistentHash.Prepare]
// waits for that. Tables are cached for the two snapshots last built for; a
// snapshot with the same routable backends as the last shares its table.
// Picks take no lock and do not allocate, but for the one that starts a
// build: a keyed pick reads the key's slot and, while its backend is over
// its bound, the next few.
//
// The zero value is ready to use, with the defaults. ConsistentHash is safe
// for concurrent use and must not be copied after first use.
type ConsistentHash struct {
	factor   uint64 // load factor × loadScale; 0 means DefaultLoadFactor
	fallback Picker // picks unkeyed requests; nil means lc
	lc       LeastConnections

	mu          sync.Mutex // serializes table builds
	tables      atomic.Pointer[tables]
	building    atomic.Bool // a goroutine is building a table in the background
	beforeBuild func()      // test hook: run by that goroutine, holding mu, before it builds
}

// HashOption configures a [ConsistentHash] built by [NewConsistentHash].
type HashOption func(*ConsistentHash) error

// WithLoadFactor sets the load factor c, from 1 to 2^20: a backend takes a
// keyed request only while its load stays within c times its weighted share
// of the set's. At 1 loads are as even as they can be; the larger c, the
// more load a backend takes before its keys spill over to others.
func WithLoadFactor(c float64) HashOption {
	return func(h *ConsistentHash) error {
		if !(c >= 1 && c <= maxLoadFactor) { // NaN too
			return fmt.Errorf("balancer: load factor %v out of range 1..%d", c, maxLoadFactor)
		}
		h.factor = uint64(math.Round(c * loadScale))
		return nil
	}
}

// WithFallback sets the picker for requests that carry no affinity key.
func WithFallback(p Picker) HashOption {
	return func(h *ConsistentHash) error {
		if p == nil {
			return errors.New("balancer: nil fallback picker")
		}
		h.fallback = p
		return nil
	}
}

// NewConsistentHash returns a ConsistentHash configured by opts. It fails if
// an option is invalid.
func NewConsistentHash(opts ...HashOption) (*ConsistentHash, error) {
	h := &ConsistentHash{}
	for _, o := range opts {
		if err := o(h); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// Pick returns the backend for info.Key among info.Snapshot.Routable() if
// info.Keyed, or [ErrNoBackend] when there are none; otherwise it returns
// what the fallback picker does.
func (h *ConsistentHash) Pick(info Info) (*backend.Backend, error) {
	if !info.Keyed {
		if h.fallback != nil {
			return h.fallback.Pick(info)
		}
		return h.lc.Pick(info)
	}
	s := info.Snapshot
	if len(s.Routable()) == 0 {
		return nil, ErrNoBackend
	}
	factor := h.factor
	if factor == 0 {
		factor = DefaultLoadFactor * loadScale
	}
	ts := h.tables.Load()
	if t := ts.find(s); t != nil {
		return t.pick(info.Key, newBound(factor, s.InFlight(), t.weight)), nil
	}
	if ts == nil {
		// The first table: there is none to answer from meanwhile.
		t := h.build(s)
		return t.pick(info.Key, newBound(factor, s.InFlight(), t.weight)), nil
	}
	h.buildLater(s)
	bd := newBound(factor, s.InFlight(), uint64(s.Weight()))
	return ts.cur.pickStale(info.Key, bd, s), nil
}

// Prepare builds the lookup table of s, unless it is built already, and
// returns when keyed picks from s use it. Picks never wait for a table
// (but the very first): after a change of membership they are answered
// from the last table built, skipping backends that s does not route to,
// while one goroutine builds the new table. Prepare is for a caller that
// wants the new mapping in force as soon as it returns, such as a test; it
// takes as long as a build, up to a few milliseconds.
func (h *ConsistentHash) Prepare(s *backend.Snapshot) {
	if len(s.Routable()) > 0 {
		h.build(s)
	}
}

// build builds the table of s unless another goroutine did while this one
// waited, caches it and returns it. Two tables are kept because requests
// routed just before a membership change pick after requests routed just
// after it: with one, each would rebuild the other's table.
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
		last = ts.cur
	}
	t := newTable(s, last)
	h.tables.Store(&tables{cur: t, prev: last})
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

// tables holds the tables of the two snapshots most recently built for.
type tables struct{ cur, prev *table }

// find returns the table of s, or nil. ts may be nil.
func (ts *tables) find(s *backend.Snapshot) *table {
	switch {
	case ts == nil:
		return nil
	case ts.cur.snap == s:
		return ts.cur
	case ts.prev != nil && ts.prev.snap == s:
		return ts.prev
	}
	return nil
}

// pick returns the backend of key's slot if it may take the request, else
// that of the first slot after it whose backend may, else the least loaded
// backend relative to weight.
func (t *table) pick(key uint64, bd bound) *backend.Backend {
	if len(t.backends) == 1 {
		return t.backends[0]
	}
	m := uint64(len(t.slots))
	slot := key % m
	var best *backend.Backend
	var bestN, bestW int64
	last := ^uint32(0)
	for range m { // every slot once, so every backend
		if i := t.slots[slot]; i != last {
			last = i
			b := t.backends[i]
			n, w := max(b.InFlight(), 0), b.Weight()
			if bd.admits(n, w) {
				return b
			}
			if best == nil || n*bestW < bestN*w {
				best, bestN, bestW = b, n, w
			}
		}
		if slot++; slot == m {
			slot = 0
		}
	}
	return best
}

// maxStaleProbes bounds the backends pickStale looks at, so that a pick
// from a table most of whose backends are gone stays cheap.
const maxStaleProbes = 64

// pickStale is pick from t, the table of an older snapshot than s, while
// the table of s is built: it skips the backends that s does not route to
// (gone, or no longer healthy), and bounds loads by s's routable weight.
// Keys whose backend s still routes to, and which may take the request,
// stay on it; those of the others go to the next backend in the table that
// s routes to and may take it. Backends that joined since t was built get
// none of the keys until the new table is in use. If none of the first
// maxStaleProbes backends after the key's slot qualifies, the least loaded
// of those s routes to takes the request, or, if s routes to none of them,
// the backend of s.Routable() the key indexes.
func (t *table) pickStale(key uint64, bd bound, s *backend.Snapshot) *backend.Backend {
	m := uint64(len(t.slots))
	slot := key % m
	var best *backend.Backend
	var bestN, bestW int64
	last := ^uint32(0)
	for probes := 0; probes < maxStaleProbes && probes < len(t.backends); {
		if i := t.slots[slot]; i != last {
			last = i
			probes++
			if b := t.backends[i]; s.Routes(b) {
				n, w := max(b.InFlight(), 0), b.Weight()
				if bd.admits(n, w) {
					return b
				}
				if best == nil || n*bestW < bestN*w {
					best, bestN, bestW = b, n, w
				}
			}
		}
		if slot++; slot == m {
			slot = 0
		}
	}
	if best != nil {
		return best
	}
	rs := s.Routable()
	return rs[key%uint64(len(rs))]
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
func (bd bound) admits(n, w int64) bool {
	lh, ll := bits.Mul64(uint64(n), bd.den)
	rh, rl := bits.Mul64(bd.capLo, uint64(w))
	rh += bd.capHi * uint64(w)
	return lh < rh || lh == rh && ll < rl
}
