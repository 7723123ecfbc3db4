package sticky

import (
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/internal/accounting"
	"github.com/affinitylb/affinity/internal/clientip"
)

const (
	// firstPickWindow is how long a first pick is shared with the other
	// unbound requests of its group: long enough for the client to receive
	// the binding the first response carries.
	firstPickWindow = 5 * time.Second
	// maxFirstPickShare is how many unbound requests of a group share its
	// first pick within the window, the first included: a browser's page
	// load. Later ones are picked for one by one.
	maxFirstPickShare = 16
	// maxFirstPicks bounds the table, and so its memory, under any load.
	maxFirstPicks = 16384
)

// firstPicks gives the unbound HTTP/2 requests that plausibly come from one
// client and arrive together one backend between them, the one picked for
// the first: a browser that opens a page sends its first requests in
// parallel, before any response has brought it a binding, and without this
// each would be bound to a backend of its own, the last Set-Cookie winning
// (envoyproxy/envoy#1766).
//
// One HTTP/2 connection need not be one client: a CDN or an L7 balancer in
// front multiplexes many users over each of its connections. So requests
// are grouped by client, as well as it can be told:
//
//   - A request from a trusted proxy that reports a client address beyond
//     the trusted proxies (X-Forwarded-For, else Forwarded, read as
//     policy.ClientIPKey reads them) is grouped with the other requests
//     reported for that address, whatever connection they arrive on: a
//     front may spread one browser's requests over several of its
//     connections to us. Users behind one NAT share an address and may
//     share a group; the share limit below bounds what that costs.
//   - Any other request is grouped with those of its connection, named by
//     its remote address, which is unique among open connections.
//
// In either case at most maxFirstPickShare requests of a group share its
// pick within firstPickWindow; later ones are picked for one by one, so a
// busy multiplexed connection, or a busy NAT, pins no more than a page
// load's worth of requests to one backend. Entries expire after
// firstPickWindow; the table holds at most maxFirstPicks of them, and when
// it is full the requests of further groups are picked for one by one, as
// without it.
type firstPicks struct {
	mu      sync.Mutex
	entries map[firstPickKey]firstPick
	swept   time.Time // last sweep of expired entries
}

// firstPickKey names a group: its client address when a trusted proxy
// reported one, else its connection. Exactly one field is set.
type firstPickKey struct {
	conn   string     // the connection's remote address
	client netip.Addr // the client address a trusted proxy reported
}

type firstPick struct {
	id      string
	expires time.Time
	shared  int // requests that were given id, the first included
}

// applies reports whether r is the kind of request firstPicks groups.
func (*firstPicks) applies(r *http.Request) bool { return r.ProtoMajor == 2 && r.RemoteAddr != "" }

// choose returns the backend of the first pick made for r's group, trusted
// naming the proxies whose forwarding headers are believed, if that pick
// is recent, has not been shared by maxFirstPickShare requests yet and its
// backend still serves its clients; otherwise it calls pick, and records
// its choice for the group unless the group has had its share. The
// returned backend is already counted in flight.
func (f *firstPicks) choose(r *http.Request, trusted []netip.Prefix, snap *backend.Snapshot, pick func() (*backend.Backend, error)) (*backend.Backend, error) {
	k := firstPickKey{conn: r.RemoteAddr}
	if len(trusted) > 0 {
		if a, ok := clientip.Forwarded(r, trusted); ok {
			k = firstPickKey{client: a}
		}
	}
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.entries[k]
	if ok && now.Before(e.expires) {
		if e.shared >= maxFirstPickShare {
			return pick()
		}
		if b := snap.Lookup(e.id); b != nil && snap.KeepsBound(b) && accounting.Acquire(b) {
			e.shared++
			f.entries[k] = e
			return b, nil
		}
	} else {
		e = firstPick{expires: now.Add(firstPickWindow)}
	}
	b, err := pick()
	if err != nil {
		return nil, err
	}
	e.id = b.ID()
	e.shared++
	f.record(k, e, now)
	return b, nil
}

// record stores e for k. When the table is full it makes room by dropping
// expired entries, at most once a window so that a flood of new groups
// costs no more than one sweep per window. The caller holds f.mu.
func (f *firstPicks) record(k firstPickKey, e firstPick, now time.Time) {
	if f.entries == nil {
		f.entries = make(map[firstPickKey]firstPick)
	}
	if _, ok := f.entries[k]; !ok && len(f.entries) >= maxFirstPicks {
		if now.Sub(f.swept) < firstPickWindow {
			return
		}
		f.swept = now
		for a, old := range f.entries {
			if !now.Before(old.expires) {
				delete(f.entries, a)
			}
		}
		if len(f.entries) >= maxFirstPicks {
			return
		}
	}
	f.entries[k] = e
}
