package sticky

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"sync/atomic"

	"github.com/affinitylb/affinity/internal/h2c"
)

// errReplayStopped is what a request gets, from a transport made by
// [DefaultTransport], when net/http's Transport would have sent it again
// on another connection to the same backend: the connection it was on
// failed before the backend answered, after the request may have reached
// it. The handler treats it as such a failure.
var errReplayStopped = errors.New("sticky: the connection to the backend failed before it answered")

// replayGuard is the context of a request the handler sends through a
// transport that could replay it: it counts the connections the
// transport asks for, and, if stops, fails the second. One request gets
// one.
type replayGuard struct {
	context.Context
	conns atomic.Int32
	stops bool
}

// resent reports whether the transport asked for more than one
// connection for the request g guards: it sent it again after a
// connection it was on failed, so the request may have reached the
// backend whatever error the last connection ended with.
func (g *replayGuard) resent() bool { return g != nil && g.conns.Load() > 1 }

type replayGuardKey struct{}

func (g *replayGuard) Value(key any) any {
	if key == (replayGuardKey{}) {
		return g
	}
	return g.Context.Value(key)
}

// guard returns req with a replay guard of its own if net/http's Transport
// could replay it, else req itself. The Transport replays a request
// without a body to send again (none, or GetBody) whose method is GET,
// HEAD, OPTIONS or TRACE, or that has an Idempotency-Key, when a reused
// connection fails under it: on another connection to the same backend,
// as often as its pool has idle ones. The guard stops that for the
// idempotent methods, which the handler replays itself, within its
// budget. A request of another method with an Idempotency-Key is left to
// the Transport: sent again to the same backend, which holds the key's
// record, it is harmless, and the handler never replays it on another
// (see replayable); its guard only counts the connections, so that a
// failure to connect again is not taken for a request that never reached
// the backend. Every other request the Transport sends again only
// if not a byte of it was written, which the handler's bounds allow.
// An h2c:// request gets none: DefaultTransport sends it through a copy
// of itself without the Proxy that reads the guard.
func guard(req *http.Request) (*http.Request, *replayGuard) {
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil || req.URL.Scheme == h2c.Scheme {
		return req, nil // not replayed; or, for h2c, sent by a transport that asks no Proxy
	}
	var g *replayGuard
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		g = &replayGuard{Context: req.Context(), stops: true}
	default:
		if !hasIdempotencyKey(req.Header) {
			return req, nil
		}
		g = &replayGuard{Context: req.Context()}
	}
	return req.WithContext(g), g
}

// hasIdempotencyKey reports whether h has a header that lets net/http's
// Transport send a request of any method again.
func hasIdempotencyKey(h http.Header) bool {
	_, key := h["Idempotency-Key"]
	_, xkey := h["X-Idempotency-Key"]
	return key || xkey
}

// stopReplays is the Proxy of the transports [DefaultTransport] makes. It
// names no HTTP proxy, and fails a guarded request's second connection:
// net/http's Transport asks its Proxy once per connection it sends a
// request on, before it is sent, so the request is not sent again.
func stopReplays(req *http.Request) (*url.URL, error) {
	if g, ok := req.Context().Value(replayGuardKey{}).(*replayGuard); ok && g.conns.Add(1) > 1 && g.stops {
		return nil, errReplayStopped
	}
	return nil, nil
}

// replayBudget bounds how many requests that failed at a backend after
// reaching it are sent to another, as Finagle's retry budget does: each
// request adds a fifth of a replay to it, each replay takes a whole one,
// and it holds at least enough for replayFloor replays when it starts and
// at most replayCap, so a wave of failures adds at most a fifth to the
// load the backends see, plus what was saved before it. Its zero value is
// empty; use newReplayBudget.
type replayBudget struct{ fifths atomic.Int64 }

const (
	replayFloor = 3
	replayCap   = 100
)

func newReplayBudget() *replayBudget {
	b := &replayBudget{}
	b.fifths.Store(replayFloor * 5)
	return b
}

// deposit adds one request's share.
func (b *replayBudget) deposit() {
	if b.fifths.Load() < replayCap*5 {
		b.fifths.Add(1)
	}
}

// withdraw takes one replay, if the budget holds one.
func (b *replayBudget) withdraw() bool {
	for {
		n := b.fifths.Load()
		if n < 5 {
			return false
		}
		if b.fifths.CompareAndSwap(n, n-5) {
			return true
		}
	}
}
