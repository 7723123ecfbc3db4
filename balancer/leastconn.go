package balancer

import (
	"sync/atomic"

	"github.com/affinitylb/affinity/backend"
)

// LeastConnections is a [Picker] that chooses the routable backend with the
// fewest requests in flight relative to its weight: a backend of weight w
// serving n requests has load n/w. Loads are compared by cross-multiplying
// ([backend.Backend.InFlight] times the other's [backend.Backend.Weight]),
// without division or floating point. A backend with strictly less load is
// always chosen over busier ones. A backend in slow start counts as busier
// than it is, less so as its ramp goes on (see
// [backend.Snapshot.EffectiveInFlight]), so it is not flooded with every new
// client while its own count is still zero.
//
// Ties are spread by weight: a counter shared by all picks selects among the
// least-loaded backends in proportion to their weights. With equal weights
// and equal load, sequential picks rotate through the backends exactly
// (30 picks over 3 idle backends land 10 on each); idle backends of weights
// 1 and 3 get picks 1 to 3.
//
// Pick reads each routable backend's in-flight count at most twice, takes no
// lock and does not allocate. Counts that change during a pick are tolerated:
// the result is always one of the routable backends.
//
// The zero value is ready to use. LeastConnections is safe for concurrent
// use and must not be copied after first use.
type LeastConnections struct {
	next atomic.Uint64 // picks that ended in a tie
}

// Pick returns the least-loaded of info.Snapshot.Routable(), or
// [ErrNoBackend] when there are none.
func (lc *LeastConnections) Pick(info Info) (*backend.Backend, error) {
	bs := info.Snapshot.Routable()
	if len(bs) == 0 {
		return nil, ErrNoBackend
	}

	// First pass: the least load, and the total weight of the backends
	// that share it.
	best := bs[0]
	bestN, bestW := info.Snapshot.EffectiveInFlight(best), best.Weight()
	tied, tiedW := 1, bestW
	for _, b := range bs[1:] {
		n, w := info.Snapshot.EffectiveInFlight(b), b.Weight()
		switch l, r := n*bestW, bestN*w; {
		case l < r:
			best, bestN, bestW = b, n, w
			tied, tiedW = 1, w
		case l == r:
			tied++
			tiedW += w
		}
	}
	if tied == 1 {
		return best, nil
	}

	// Second pass: give each tied backend a range of the counter as wide
	// as its weight. A backend whose load dropped since the first pass
	// counts as tied; if loads rose so that the ranges no longer reach k,
	// fall back to best.
	k := int64((lc.next.Add(1) - 1) % uint64(tiedW))
	for _, b := range bs {
		n, w := info.Snapshot.EffectiveInFlight(b), b.Weight()
		if n*bestW > bestN*w {
			continue
		}
		if k < w {
			return b, nil
		}
		k -= w
	}
	return best, nil
}
