package balancer

import (
	"math/rand/v2"

	"github.com/affinitylb/affinity/backend"
)

// exactMax is the largest number of routable backends among which
// [LeastConnections] finds the least loaded exactly; past it, it samples
// two. It is a power of two, so that masking an index with exactMax-1
// elides bounds checks, and at most 256, so that an index fits a byte.
//
// An exact pick costs a few nanoseconds a backend, a sampled one the same
// at any size (BenchmarkLeastConnectionsExactVsSampled and
// BenchmarkPickGrowth measure both). 32 bounds the exact pick's cost to
// that of a few sampled ones, and keeps it, with its guarantees, where
// they matter most: small pools, in which one backend is a large share of
// the capacity. In larger ones two choices balance nearly as well (see
// [LeastConnections]).
const exactMax = 32

// LeastConnections is a [Picker] that chooses a routable backend with the
// fewest requests in flight relative to its weight: a backend of weight w
// serving n requests has load n/w. Loads are compared by cross-multiplying
// ([backend.Snapshot.Load] times the other's [backend.Backend.Weight]),
// without division or floating point. A backend in slow start counts as
// busier than it is, less so as its ramp goes on (see
// [backend.Snapshot.Load]), so it is not flooded with every new
// client while its own count is still zero.
//
// Up to 32 routable backends, the pick is exact: it scans them all, and a
// backend with strictly less load is always chosen over busier ones. Ties
// are spread by weight: a counter selects among the least-loaded backends
// in proportion to their weights, one counter for each group
// ([backend.Config.Group]) picked within, so that picks within one group
// rotate whatever the picks within other groups in between. With equal weights
// and equal load, sequential picks rotate through the backends exactly
// (30 picks over 3 idle backends land 10 on each); idle backends of weights
// 1 and 3 get picks 1 to 3.
//
// Past 32, where the cost of a scan would grow on with the number of
// backends, Pick samples instead, as Envoy's least_request does for hosts of
// equal weight: it draws two distinct routable backends uniformly at random
// and takes the less loaded of the two, a tie going to either in
// proportion to weight (Envoy draws with replacement). These "two choices"
// cost the same at any size, balance nearly as well as a full scan (placing
// N requests on N backends, the busiest ends up O(log log N) over the mean,
// against O(log N / log log N) for one random choice: Mitzenmacher, "The
// Power of Two Choices in Randomized Load Balancing"), and do not herd: pickers running at once, which read the same counts
// before any of their requests is counted, spread over random pairs rather
// than all naming the one least-loaded backend. The busiest of the pair is
// never chosen, so a backend strictly busier than all others gets nothing,
// and one strictly less busy than all others gets only the picks that draw
// it, about 2/N of them. Weights act through the comparison: under load,
// in-flight counts settle in proportion to weight, but among idle backends
// picks follow weight only as far as ties do. Sequential picks over idle
// backends do not rotate exactly; each backend's share is exact only in
// expectation.
//
// Pick reads each backend it compares once, takes no lock and does not
// allocate. Counts that change during a pick are tolerated: the result is
// always one of the routable backends.
//
// The zero value is ready to use. LeastConnections is safe for concurrent
// use and must not be copied after first use.
type LeastConnections struct {
	next  rotation // exact picks that ended in a tie
	exact int      // pools up to this size are picked exactly; 0 means exactMax (tests lower it)
}

// Pick returns the least loaded of info.Snapshot.Routable(), or of two of
// them drawn at random when there are more than 32, or [ErrNoBackend] when
// there are none.
func (lc *LeastConnections) Pick(info Info) (*backend.Backend, error) {
	s := info.Snapshot
	bs := s.Routable()
	limit := exactMax
	if lc.exact > 0 {
		limit = min(lc.exact, exactMax)
	}
	switch {
	case len(bs) == 0:
		return nil, ErrNoBackend
	case len(bs) == 1:
		return bs[0], nil
	case len(bs) > limit:
		return sample(s, bs), nil
	}
	return lc.scan(s, bs), nil
}

// scan returns the least loaded of bs, the routable backends of s, of which
// there are 2 to exactMax.
func (lc *LeastConnections) scan(s *backend.Snapshot, bs []*backend.Backend) *backend.Backend {
	// One pass finds the least load and notes which backends share it.
	// Only a new least load, which is rare, branches: ties are noted
	// without, so that the processor need not guess which way they go.
	var tied [exactMax]uint8 // indices in bs; tied[0] is 0 to start with
	nt := 1
	bestN, bestW := s.Load(bs[0]), bs[0].Weight()
	for i := 1; i < len(bs); i++ {
		b := bs[i]
		n, w := s.Load(b), b.Weight()
		l, r := n*bestW, bestN*w
		if l < r {
			bestN, bestW = n, w
			tied[0], nt = uint8(i), 1
			continue
		}
		tied[nt&(exactMax-1)] = uint8(i) // kept only if a tie
		if l == r {
			nt++
		}
	}
	return lc.tieBreak(bs, tied[:nt])
}

// tieBreak returns one of the equally loaded backends bs[i] for i in tied.
// If there are several, a range of the tie counter as wide as its weight
// goes to each.
func (lc *LeastConnections) tieBreak(bs []*backend.Backend, tied []uint8) *backend.Backend {
	if len(tied) == 1 {
		return bs[tied[0]]
	}
	var total int64
	for _, i := range tied {
		total += bs[i].Weight()
	}
	k := int64(lc.next.next(bs) % uint64(total))
	for _, i := range tied {
		b := bs[i]
		if w := b.Weight(); k >= w {
			k -= w
			continue
		}
		return b
	}
	return bs[tied[0]] // not reached: the ranges cover 0 to total-1
}

// sample returns the less loaded of two distinct backends of bs, the
// routable backends of s, drawn uniformly at random; of two equally loaded
// ones, either, in proportion to weight. bs has at least two members and
// fewer than 2^32.
//
// The draws map 32 random bits each onto an index by multiplying and
// shifting, which favours some indices over others by at most N/2^32: two
// in a million at 10,000 backends.
func sample(s *backend.Snapshot, bs []*backend.Backend) *backend.Backend {
	n := uint64(len(bs))
	x := rand.Uint64()
	i := (x >> 32) * n >> 32
	j := (x & (1<<32 - 1)) * (n - 1) >> 32
	if j >= i {
		j++ // j is uniform over the others
	}
	a, b := bs[i], bs[j]
	na, nb := s.Load(a), s.Load(b)
	wa, wb := a.Weight(), b.Weight()
	switch l, r := na*wb, nb*wa; {
	case l < r:
		return a
	case l > r:
		return b
	case wa == wb:
		return a // a is either of the two with equal chance
	case rand.Int64N(wa+wb) < wa:
		return a
	}
	return b
}
