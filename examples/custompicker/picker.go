package main

import (
	"math/rand/v2"
	"strings"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/balancer"
)

// zonePicker returns a picker that chooses, among the backends that take
// new clients, one of zone's if there is any, else any other; and among
// those, one with the least load ([backend.Snapshot.Load]), at random if
// several tie.
// It ignores weights, for brevity.
func zonePicker(zone string) balancer.Picker {
	// rank orders backends: zone's first, then by load (requests in
	// flight, plus the slow-start allowance of a newcomer).
	rank := func(s *backend.Snapshot, b *backend.Backend) int64 {
		if strings.HasPrefix(b.ID(), zone+"-") {
			return s.Load(b)
		}
		return 1<<32 + s.Load(b)
	}
	return balancer.PickerFunc(func(info balancer.Info) (*backend.Backend, error) {
		var best *backend.Backend
		var bestRank, ties int64
		for _, b := range info.Snapshot.Routable() { // only these may take new clients
			switch r := rank(info.Snapshot, b); {
			case best == nil || r < bestRank:
				best, bestRank, ties = b, r, 1
			case r == bestRank: // reservoir sampling: each tie is as likely to win
				if ties++; rand.Int64N(ties) == 0 {
					best = b
				}
			}
		}
		if best == nil {
			return nil, balancer.ErrNoBackend // none routable: the handler answers 503
		}
		return best, nil // the handler, not the picker, counts the request in flight
	})
}
