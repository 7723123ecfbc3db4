package sticky

import (
	"net/http"
	"sync"
	"time"

	"github.com/affinitylb/affinity/backend"
)

const (
	// firstPickWindow is how long the first pick made for an HTTP/2
	// connection's unbound requests is shared with the connection's other
	// unbound requests: long enough for the client to receive the binding
	// the first response carries.
	firstPickWindow = 5 * time.Second
	// maxFirstPicks bounds the table, and so its memory, under any load.
	maxFirstPicks = 16384
)

// firstPicks gives the unbound requests that arrive together on one HTTP/2
// connection one backend between them, the one picked for the first: a
// browser that opens a page sends its first requests in parallel, before
// any response has brought it a binding, and without this each would be
// bound to a backend of its own, the last Set-Cookie winning
// (envoyproxy/envoy#1766).
//
// Requests are grouped by their connection's remote address, which is
// unique among open connections. Entries expire after firstPickWindow; the
// table holds at most maxFirstPicks of them, and when it is full the
// requests of further connections are picked for one by one, as without it.
type firstPicks struct {
	mu      sync.Mutex
	entries map[string]firstPick
	swept   time.Time // last sweep of expired entries
}

type firstPick struct {
	id      string
	expires time.Time
}

// applies reports whether r is the kind of request firstPicks groups.
func (*firstPicks) applies(r *http.Request) bool { return r.ProtoMajor == 2 && r.RemoteAddr != "" }

// choose returns the backend of the first pick made for r's connection if
// one is recent and that backend still serves its clients; otherwise it
// calls pick and records its choice for the connection. The returned
// backend is already counted in flight.
func (f *firstPicks) choose(r *http.Request, snap *backend.Snapshot, pick func() (*backend.Backend, error)) (*backend.Backend, error) {
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	if e, ok := f.entries[r.RemoteAddr]; ok && now.Before(e.expires) {
		if b := snap.Lookup(e.id); b != nil && snap.Serves(b) && b.Acquire() {
			return b, nil
		}
	}
	b, err := pick()
	if err != nil {
		return nil, err
	}
	f.record(r.RemoteAddr, firstPick{id: b.ID(), expires: now.Add(firstPickWindow)}, now)
	return b, nil
}

// record stores e for addr. When the table is full it makes room by
// dropping expired entries, at most once a window so that a flood of new
// connections costs no more than one sweep per window. The caller holds
// f.mu.
func (f *firstPicks) record(addr string, e firstPick, now time.Time) {
	if f.entries == nil {
		f.entries = make(map[string]firstPick)
	}
	if _, ok := f.entries[addr]; !ok && len(f.entries) >= maxFirstPicks {
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
	f.entries[addr] = e
}
