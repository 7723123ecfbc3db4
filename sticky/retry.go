package sticky

import (
	"errors"
	"io"
	"net/http"
	"net/http/httputil"
	"syscall"
	"time"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/balancer"
	"github.com/affinitylb/affinity/event"
	"github.com/affinitylb/affinity/internal/accounting"
	"github.com/affinitylb/affinity/policy"
)

// RoundTrip makes x the transport of its proxy: it forwards req to x's
// backend and, when that fails, to others, within the handler's bounds: a
// request that never reached its backend (no connection could be made) is
// tried on up to the handler's retries others; one that may have reached
// it is sent to one other at most, if repeating it is harmless and the
// handler's replay budget allows. It also reports each backend's
// transport failures for passive health checking; a failure the client
// caused (it left, or its body could not be read) is reported for no
// backend and not retried. A client bound to a backend that failed its
// request only on a connection the transport reused (see errReplayStopped)
// stays bound to it, whoever answers the retry; with strict bindings, or
// no retries, such a request that could be replayed is sent again to its
// backend, once, as net/http's Transport would have sent it.
func (x *exchange) RoundTrip(req *http.Request) (*http.Response, error) {
	h := x.h
	h.replays.deposit()
	resp, err := x.send(req)
	if err == nil {
		return resp, nil
	}
	var deadline time.Time
	replayed, resent := false, false
	for attempt := 1; err != nil; attempt++ {
		if req.Context().Err() != nil {
			return nil, err // the client left: not the backend's fault
		}
		if x.body.failed() != nil {
			return nil, err // the client's body: not the backend's fault either
		}
		if errors.Is(err, errReplayStopped) && x.bound.Status == policy.Valid && x.bound.ID == x.backend.ID() {
			// A connection the transport reused failed under the request,
			// as one the backend closed while idle does: no reason to move
			// its client, whoever answers the retry. The failure counts:
			// a backend that fails so again and again, with no success
			// between, is ejected, and its clients move then.
			x.keep = true
		}
		accounting.ReportFailureOf(x.backend, accounting.Failure{Cause: err.Error(), Client: x.client, Reached: !unreached(err)})
		h.observe(event.Event{Kind: event.Failure, Request: x.in, Backend: x.backend.ID(), Reason: event.TransportFailure})
		if x.done != nil {
			x.doneWith(err) // before any retry is placed
		}
		if deadline.IsZero() {
			deadline = h.clock().Add(h.retryWithin)
		}
		if (h.strict || h.retries == 0) && !resent && errors.Is(err, errReplayStopped) && replayable(req, x.body, err, x.resent) == replay {
			// No other backend may have the request, but the Transport
			// would have sent it again to this one on a new connection,
			// as the guard stopped it from doing: send it so, once.
			resent = true
			if req, err = retarget(req, x); err != nil {
				return nil, err
			}
			resp, err = x.send(req)
			continue
		}
		if attempt > h.retries || h.strict || h.clock().After(deadline) {
			return nil, err
		}
		switch replayable(req, x.body, err, x.resent) {
		case never:
			return nil, err
		case replay:
			if replayed || !h.replays.withdraw() {
				return nil, err
			}
			replayed = true
		}
		x.tried = append(x.tried, x.backend)
		b, done := h.repick(x)
		if b == nil {
			return nil, err
		}
		h.logger.Debug("retrying on another backend", "from", x.backend.ID(), "to", b.ID(), "err", err)
		h.observe(event.Event{Kind: event.Retry, Request: x.in, Backend: b.ID(), Prev: x.backend.ID()})
		accounting.Release(x.backend)
		x.backend = b
		x.retries++
		if x.dec != nil {
			x.dec.Backend, x.dec.Retries = b.ID(), x.retries
		}
		if done != nil {
			x.done, x.since = done, time.Now()
		}
		if req, err = retarget(req, x); err != nil {
			return nil, err
		}
		resp, err = x.send(req)
	}
	return resp, nil
}

// clock returns the time that bounds the handler's retries: h.now's if
// set, else [time.Now]'s.
func (h *Handler) clock() time.Time {
	if h.now != nil {
		return h.now()
	}
	return time.Now()
}

// send sends req to x's backend, counting it as waiting there until its
// response header arrives or it fails, but while the transport waits for
// the client's body (a slow upload is the client's time): a backend with
// requests that wait and answers none is stalled (see
// [backend.WithStallTimeout]).
func (x *exchange) send(req *http.Request) (*http.Response, error) {
	if x.body != nil {
		x.body.sendTo(x.backend)
		defer x.body.sent()
	} else {
		accounting.WaitStarted(x.backend, x.client)
		defer accounting.WaitEnded(x.backend, x.client)
	}
	out, g := guard(req)
	resp, err := x.h.transport.RoundTrip(out)
	x.resent = g.resent()
	return resp, err
}

// A retry is how a failed request may be sent to another backend.
type retry int

const (
	never  retry = iota // it must not be
	resend              // it never reached its backend: as often as the handler's retries allow
	replay              // it may have reached it: once, within the replay budget
)

// replayable says how req, which failed with err, may be sent to another
// backend, resent saying whether the transport sent it on more than one
// connection. It may be only if its body can be sent again (it has none,
// GetBody, or body, its tracker, says no byte of it was read: the same
// body goes whole to the next attempt). Then, if it never reached the
// backend (the connection could not be made, or its TLS handshake failed:
// see handshakeFailed, and the transport had not sent it on another
// connection before), it may be resent; if it did, or may have, and
// failed before any response arrived (the connection was reset or
// closed), it may be replayed if repeating it is harmless: an idempotent
// method. An Idempotency-Key does not make a request replayable: it
// guards against executing the request twice only on a backend that
// keeps the key's record, and backends that need sticky sessions keep
// their state, and their records, each to itself. A body partly read may
// have been partly sent: such a request is never sent again.
func replayable(req *http.Request, body *trackedBody, err error, resent bool) retry {
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil && (body == nil || body.read()) {
		return never
	}
	if unreached(err) && !resent {
		return resend
	}
	if !idempotent(req) {
		return never
	}
	if errors.Is(err, errReplayStopped) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNABORTED) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return replay
	}
	return never
}

func idempotent(req *http.Request) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// repick chooses, for a request whose backend failed, another backend that
// takes new clients and that the request has not tried (x.tried, which
// holds the one that failed), counted in flight; nil if there is none. The
// picker for the request's kind (the key picker for a keyed request) is
// asked first, and its DonePicker returned with its choice; if it insists
// on a backend already tried, or chooses one the request may not be placed
// on (see placeable), the least loaded of the others is used, and no
// DonePicker. A request of a bound client is placed by rehome instead, as
// its client's other requests are, without a DonePicker. When the set has groups of backends, the group of the
// backend that failed is searched first, unless it has no member taking
// new clients (see serves), then the whole set.
func (h *Handler) repick(x *exchange) (*backend.Backend, balancer.DonePicker) {
	snap := h.set.Snapshot()
	if len(snap.Groups()) > 1 {
		if sub := snap.Group(x.backend.Group()); serves(snap, sub) {
			if b, done := h.repickIn(x, sub); b != nil {
				return b, done
			}
		}
	}
	return h.repickIn(x, snap)
}

// repickIn is repick within snap.
func (h *Handler) repickIn(x *exchange, snap *backend.Snapshot) (*backend.Backend, balancer.DonePicker) {
	tried := func(b *backend.Backend) bool {
		for _, t := range x.tried {
			if b == t {
				return true
			}
		}
		return false
	}
	p, info := h.picker, balancer.Info{Request: x.in, Snapshot: snap, Tried: x.tried}
	switch x.bound.Status {
	case policy.Keyed:
		p, info.KeyHash, info.Keyed = h.keys, x.bound.KeyHash, true
	case policy.Valid, policy.Unknown:
		var b *backend.Backend
		if h.rehomed(&b, rehomeKey(x.in, h.trusted, x.bound), snap, tried) {
			return b, nil
		}
	}
	if b, err := p.Pick(info); err == nil && b != nil && !tried(b) && placeable(info, b) && accounting.Acquire(b) {
		return b, p.done
	}
	if best := leastLoaded(snap, tried); best != nil && accounting.Acquire(best) {
		return best, nil
	}
	return nil, nil
}

// retarget returns a copy of the outgoing request out aimed at x's backend,
// rewritten from the client's request as the first attempt was: the
// handler's own rewrite, then the user's, given the header, Host and query
// the handler's was given or made. Its body is a new one from GetBody if out has GetBody,
// else out's own, which replayable allows only when nothing was read from
// it.
func retarget(out *http.Request, x *exchange) (*http.Request, error) {
	next := out.Clone(out.Context())
	u := *x.in.URL
	u.RawQuery = x.query // as the first attempt's was cleaned, not the client's own
	next.URL = &u
	if out.GetBody != nil {
		body, err := out.GetBody()
		if err != nil {
			return nil, err
		}
		next.Body = body // made by GetBody, not read from the client: not tracked
		x.body = nil
	}
	host := out.Host // what rewrite chose: the client's, or "" for the backend's
	if x.header != nil {
		// The user's Rewrite edited out: start again from the handler's.
		next.Header, host = x.header.Clone(), x.host
		if _, ok := next.Header["User-Agent"]; !ok {
			next.Header["User-Agent"] = []string{""} // as ReverseProxy does: not Go's own
		}
	}
	pr := &httputil.ProxyRequest{In: x.in, Out: next}
	pr.SetURL(x.backend.URL())
	next.Host = host
	if x.h.rewrite != nil {
		x.h.rewrite(pr)
		next = pr.Out
	}
	return next, nil
}
