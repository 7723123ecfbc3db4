package sticky

import (
	"encoding/binary"
	"math"
	"net/http"
	"net/netip"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/internal/clientip"
	"github.com/affinitylb/affinity/policy"
)

// rehomeKey returns the key by which the request r, bound by bound to a
// backend that does not serve it, is placed anew (see rehome): a hash of
// the binding (its backend, group and Seed) and the client's address (as
// policy.ClientIPKey reads it, believing trusted proxies).
func rehomeKey(r *http.Request, trusted []netip.Prefix, bound policy.Binding) uint64 {
	k := policy.HashKey(bound.ID) ^ mix(policy.HashKey(bound.Group)) ^ mix(mix(mix(bound.Seed)))
	if a, ok := clientip.Of(r, trusted); ok {
		k ^= addrHash(a)
	}
	return k
}

// rehome returns the member of snap that takes new clients and that skip,
// if not nil, does not report, on which a request whose rehomeKey is k is
// placed anew; nil if there is none. It chooses by weighted rendezvous
// hashing of k, not by load: the requests a client sends together (a
// page's, over several connections, or to several replicas of the
// handler) carry the same binding and go to one backend, which binds the
// client once, instead of each to the backend the picker would choose,
// the last Set-Cookie winning. Clients bound to one backend are spread
// over the others by their seeds and addresses, in proportion to weight:
// those behind one address (a NAT, or a front proxy not trusted) by their
// seeds.
func rehome(k uint64, snap *backend.Snapshot, skip func(*backend.Backend) bool) *backend.Backend {
	var best *backend.Backend
	top := math.Inf(-1)
	for _, b := range snap.Routable() {
		if skip != nil && skip(b) || !snap.TakesNew(b) {
			continue
		}
		u := (float64(mix(k^policy.HashKey(b.ID()))>>11) + 0.5) / (1 << 53)
		if s := -float64(b.Weight()) / math.Log(u); s > top {
			best, top = b, s
		}
	}
	return best
}

// addrHash hashes a client address a, unmapped.
func addrHash(a netip.Addr) uint64 {
	b16 := a.Unmap().As16()
	return mix(binary.BigEndian.Uint64(b16[:8])) ^ mix(mix(binary.BigEndian.Uint64(b16[8:])))
}

// clientID identifies r's client for passive health checking (see
// [backend.Ejection]): a hash of its address as [clientip.Of] reads it,
// believing trusted proxies, so that requests from one address share it.
// Requests whose address cannot be read share one identity. Behind a
// proxy that is not trusted, every client has the proxy's.
func clientID(r *http.Request, trusted []netip.Prefix) uint64 {
	if a, ok := clientip.Of(r, trusted); ok {
		return addrHash(a)
	}
	return 0
}
