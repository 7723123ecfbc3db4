package sticky

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/balancer"
	"github.com/affinitylb/affinity/event"
	"github.com/affinitylb/affinity/internal/accounting"
	"github.com/affinitylb/affinity/policy"
)

// maxPicks bounds how often one request asks the picker again because the
// backend it was given was removed from the set in the meantime.
const maxPicks = 3

// Handler is an [http.Handler] that proxies each request to a backend of its
// set, keeping clients on the backend their binding names. It is safe for
// concurrent use; the set may change while it serves.
//
// For each request it:
//  1. loads the set's current snapshot (package backend);
//  2. asks the policy what the request is bound to (package policy);
//  3. uses that backend if it still serves its clients (healthy or
//     draining; see [backend.Snapshot.KeepsBound]); else, if the policy found
//     an affinity key, asks the key picker, which hashes it; else, if it
//     found a binding, places the client anew by the binding's hash (see
//     rehome.go); else asks the picker (package balancer), within one group
//     of backends when the set has several (see the package documentation);
//  4. counts the request in flight on the backend and forwards it with
//     [httputil.ReverseProxy], counting it out when it is over, whatever
//     happened;
//  5. lets the policy write the binding on the backend's response.
//
// Every request it forwards gets the handler's entry in its Via header; a
// request that already carries it has come back round a loop, and is
// answered 508 Loop Detected before step 1, reaching no backend (see
// [WithVia]). When no backend can take the request it answers 503 with
// Retry-After; when the backend could not be reached or failed, 502; when
// it did not answer in time, 504 Gateway Timeout; when the request's body
// could not be read from the client, 400, or 408 Request Timeout if the
// client sent none of it for the body timeout ([WithBodyTimeout]), and the
// backend is not blamed. A client that reads no response for the write
// timeout ([WithWriteTimeout]) is cut off. Each answer says which in a
// fixed text, and no body names a backend. [WithErrorHandler] replaces the
// 502, 503 and 504 answers.
type Handler struct {
	set    *backend.Set
	policy policy.Policy
	picker picker // unkeyed requests
	keys   picker // keyed requests
	logger *slog.Logger
	firsts firstPicks
	groups groups

	// The user's hooks; nil when not set.
	rewrite        func(*httputil.ProxyRequest)
	modifyResponse func(*http.Response) error
	errorHandler   func(http.ResponseWriter, *http.Request, error)

	// proxy is what the ReverseProxy of every exchange starts from;
	// exchanges holds exchanges ready for another request.
	proxy     httputil.ReverseProxy
	exchanges sync.Pool
	transport http.RoundTripper // under the exchanges' retries
	replays   *replayBudget

	retries       int
	retryWithin   time.Duration
	now           func() time.Time // the retries' clock, if set (by tests); see clock
	strict        bool
	failureStatus func(code int) bool
	observer      event.Observer  // nil: none; see observerOf
	stripper      policy.Stripper // nil when the binding is forwarded
	rewriteHost   bool
	trusted       []netip.Prefix
	via           via
	bodyTimeout   time.Duration // 0: none
	writeTimeout  time.Duration // 0: none
}

// New returns a handler balancing over set, binding clients with p.
// Invalid options make it return an error, as do a nil set or policy, and
// a nil pointer given as the policy, a picker, the transport or an
// observer; it never panics.
func New(set *backend.Set, p policy.Policy, opts ...Option) (*Handler, error) {
	if set == nil {
		return nil, errors.New("sticky: nil backend set")
	}
	if p == nil {
		return nil, errors.New("sticky: nil policy")
	}
	if nilPointer(p) {
		return nil, fmt.Errorf("sticky: nil policy (%T)(nil)", p)
	}
	o := options{retries: defaultRetries, retryWithin: defaultRetryWithin,
		bodyTimeout: defaultIOTimeout, writeTimeout: defaultIOTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	if o.picker == nil {
		o.picker = &balancer.LeastConnections{}
	}
	if o.keys == nil {
		o.keys = &balancer.ConsistentHash{}
	}
	if o.transport == nil {
		o.transport = DefaultTransport()
	}
	if o.logger == nil {
		o.logger = slog.New(slog.DiscardHandler)
	}
	if o.via == "" {
		o.via = randomPseudonym()
	}
	h := &Handler{
		set: set, policy: p, picker: newPicker(o.picker), keys: newPicker(o.keys), logger: o.logger,
		retries: o.retries, retryWithin: o.retryWithin, strict: o.strict, failureStatus: o.failureStatus,
		observer: observerOf(o.observers), trusted: o.trusted, rewriteHost: o.rewriteHost,
		via: newVia(o.via), bodyTimeout: o.bodyTimeout, writeTimeout: o.writeTimeout,
		rewrite: o.rewrite, modifyResponse: o.modifyResponse, errorHandler: o.errorHandler,
	}
	if s, ok := p.(policy.Stripper); ok && !o.keepBinding {
		h.stripper = s
	}
	h.transport, h.replays = o.transport, newReplayBudget()
	h.proxy = httputil.ReverseProxy{
		BufferPool:    &bufferPool{},
		ErrorLog:      slog.NewLogLogger(o.logger.Handler(), slog.LevelDebug),
		FlushInterval: o.flushInterval,
	}
	h.exchanges.New = func() any { return h.newExchange() }
	return h, nil
}

// picker is one of the handler's pickers, with its Done method if it has
// one, found once by New rather than by a type assertion per request.
type picker struct {
	balancer.Picker
	done balancer.DonePicker // the same picker; nil if it is no DonePicker
}

func newPicker(p balancer.Picker) picker {
	done, _ := p.(balancer.DonePicker)
	return picker{Picker: p, done: done}
}

// exchange is one request's way through the handler: the routing decision
// and the ReverseProxy that carries it out, whose hooks (Rewrite,
// ModifyResponse, ErrorHandler and the Transport, which retries) are the
// exchange's own methods. They find the decision in their receiver, so the
// request needs no context value to carry it, which would cost a context
// and a copy of the request per request, and a layer more in every context
// lookup net/http makes.
//
// Exchanges are pooled with their proxies, whose hooks are bound once. An
// exchange goes back to the pool when its proxy's ServeHTTP has returned,
// normally or by panic: nothing the proxy started refers to the exchange
// after that (the transport and an upgraded connection's copying
// goroutines hold only the outgoing request and the connections).
type exchange struct {
	h       *Handler
	proxy   httputil.ReverseProxy
	in      *http.Request
	backend *backend.Backend   // counted in flight until the request is over
	bound   policy.Binding     // what the policy read from the request
	tried   []*backend.Backend // backends that failed it, when retried
	body    *trackedBody       // the outgoing body; nil without one
	sent    time.Time          // when the request was handed to the proxy
	rd      readDeadliner      // sets the client's read deadline; nil without a body timeout
	rlimit  time.Time          // the server's ReadTimeout for rd; zero: none
	tw      timedWriter        // what the response is written to, with a write timeout
	trusted bool               // the client's peer is a trusted proxy, as rewrite found
	client  uint64             // the client's identity for passive health (see clientID)

	// With the user's Rewrite and retries: the outgoing header and Host
	// as the handler's own rewrite made them, for the next attempt's.
	header http.Header
	host   string
	// query is the client's query as ReverseProxy cleaned it (of what it
	// cannot parse: semicolons, bad escapes), for a retry's URL.
	query string
	// refused: the user's ModifyResponse refused the backend's response.
	refused bool
	// keep: the client's binding stays as it is, whoever answers (its
	// backend failed it only on a connection the transport reused).
	keep bool
	// resent: the transport sent the current attempt on more than one
	// connection (see replayGuard.resent).
	resent bool

	// done is told how the current attempt went, if a DonePicker placed
	// it (see doneWith); nil otherwise, when nothing below is kept.
	done    balancer.DonePicker
	since   time.Time     // when the current attempt was sent
	status  int           // the backend's answer's status; 0: none yet
	latency time.Duration // from since to the answer's header
	err     error         // why the attempt failed, when it did before an answer

	// For a tracked or observed request (track): when it was received,
	// the time from then to the backend's response header, how many
	// retries it had, and whether its client left before an answer.
	track   bool
	dec     *Decision // the tracker's, kept up with each attempt; nil: none
	start   time.Time
	hdr     time.Duration
	retries int
	gone    bool
}

// newExchange returns an exchange whose proxy is h's, hooked to it.
func (h *Handler) newExchange() *exchange {
	x := &exchange{h: h, proxy: h.proxy}
	x.proxy.Rewrite = x.rewrite
	x.proxy.ModifyResponse = x.modifyResponse
	x.proxy.ErrorHandler = x.proxyError
	x.proxy.Transport = x
	return x
}

// finish counts the request out of its backend, the last one it was sent
// to if it was retried, and puts x back in the pool.
func (h *Handler) finish(x *exchange, f *facts) {
	if x.track {
		f.Backend, f.Retries, f.Header, f.Status = x.backend.ID(), x.retries, x.hdr, x.tw.status
		if x.gone {
			f.Status = 0
		}
	}
	accounting.Release(x.backend)
	x.body.stop(false) // the transport may still read it: the connection is not ours any more
	if x.done != nil {
		x.doneWith(x.err) // after the release: a panic in Done loses no count
	}
	x.in, x.backend, x.bound, x.tried, x.body, x.rd, x.rlimit = nil, nil, policy.Binding{}, nil, nil, nil, time.Time{}
	x.tw, x.trusted, x.client = timedWriter{}, false, 0
	x.header, x.host, x.query, x.refused, x.keep, x.resent, x.status = nil, "", "", false, false, false, 0
	x.track, x.dec, x.start, x.hdr, x.retries, x.gone = false, nil, time.Time{}, 0, 0, false
	h.exchanges.Put(x)
}

// ServeHTTP routes and proxies one request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var f facts
	if f.dec = trackedBy(r); f.dec != nil || h.observer != nil {
		f.on, f.start = true, time.Now()
		defer h.report(r, &f)
	}
	defer h.recoverPanic(w, r, &f)
	if h.via.seen(r.Header) {
		f.Placement, f.Status = event.Unplaced, http.StatusLoopDetected
		h.looped(w, r)
		return
	}
	snap := h.set.Snapshot()
	bound := h.policy.Lookup(r, snap)
	if h.observer != nil && rejected(bound.Status) {
		h.observeRejected(r, bound.Status)
	}
	f.Binding = reasonOf(bound.Status)
	b, done, placed, err := h.choose(r, snap, bound)
	f.Placement = placed
	if err != nil {
		f.Status = h.unavailable(w, r, err, f.on)
		return
	}
	x := h.exchanges.Get().(*exchange)
	x.in, x.backend, x.bound, x.sent = r, b, bound, time.Now()
	x.client = clientID(r, h.trusted)
	x.track, x.start = f.on, f.start
	if f.dec != nil {
		*f.dec = Decision{Backend: b.ID(), Placement: placed, Binding: f.Binding}
		x.dec = f.dec
	}
	if done != nil {
		x.done, x.since = done, x.sent
	}
	defer h.finish(x, &f)
	x.proxy.ServeHTTP(x.timed(w, r), r)
	x.tw.progress() // time for what the server writes after the handler
}

// retryAfter is the Retry-After of a 503, in seconds: about the time a
// backend ejected or failing its health checks takes to come back.
const retryAfter = "10"

// unavailable answers a request no backend can take, or has the user's
// error handler answer it, with an error that wraps balancer.ErrNoBackend.
// It returns the status sent, which for the user's error handler it learns
// only if track is set (0 otherwise).
func (h *Handler) unavailable(w http.ResponseWriter, r *http.Request, err error, track bool) int {
	h.logger.Debug("no backend for request", "method", r.Method, "path", r.URL.Path, "err", err)
	if h.errorHandler != nil {
		if !errors.Is(err, balancer.ErrNoBackend) {
			err = fmt.Errorf("%w: %w", balancer.ErrNoBackend, err) // the picker's own error
		}
		if !track {
			h.errorHandler(w, r, err)
			return 0
		}
		x := h.exchanges.Get().(*exchange) // for its writer, which records the status
		x.tw = timedWriter{ResponseWriter: w}
		h.errorHandler(&x.tw, r, err)
		status := x.tw.status
		x.tw = timedWriter{}
		h.exchanges.Put(x)
		return status
	}
	w.Header()["Retry-After"] = []string{retryAfter}
	if err == errBindingLost {
		http.Error(w, "503 service unavailable: the server holding this session is unavailable", http.StatusServiceUnavailable)
		return http.StatusServiceUnavailable
	}
	http.Error(w, "503 service unavailable: no backend available", http.StatusServiceUnavailable)
	return http.StatusServiceUnavailable
}

// looped answers a request that has already passed through this handler,
// by its Via header: forwarding it again would go round the loop until the
// process runs out of connections.
func (h *Handler) looped(w http.ResponseWriter, r *http.Request) {
	h.logger.Warn("request loop: a request came back to the handler", "method", r.Method, "path", r.URL.Path, "via", h.via.name)
	http.Error(w, "508 loop detected", http.StatusLoopDetected)
}

// observeRejected tells the observer that the policy refused a binding,
// and why.
func (h *Handler) observeRejected(r *http.Request, s policy.Status) {
	h.observer.Observe(event.Event{Kind: event.Rejected, Request: r, Reason: reasonOf(s)})
}

// rejected reports whether s is a binding the policy refused to honour.
// An Unknown binding is authentic: its backend has left the set, and its
// client is redispatched.
func rejected(s policy.Status) bool {
	switch s {
	case policy.Malformed, policy.Forged, policy.Expired:
		return true
	}
	return false
}

// recoverPanic turns a panic in a user-supplied policy, picker or hook into a 500
// answer and a logged, observed event, rather than a dropped connection
// and a stack trace on stderr. ReverseProxy's own way of aborting a
// response, http.ErrAbortHandler, is let through. The 500 is f's status
// if no other was sent.
func (h *Handler) recoverPanic(w http.ResponseWriter, r *http.Request, f *facts) {
	p := recover()
	if p == nil {
		return
	}
	if p == http.ErrAbortHandler {
		panic(p)
	}
	h.logger.Error("panic serving a request", "panic", p, "stack", string(debug.Stack()))
	h.observe(event.Event{Kind: event.Panic, Request: r, Panic: p})
	if f.Status == 0 {
		f.Status = http.StatusInternalServerError
	}
	http.Error(w, "500 internal server error", http.StatusInternalServerError)
}

// observe hands e to the handler's observer (see observerOf), if it has one.
func (h *Handler) observe(e event.Event) {
	if h.observer != nil {
		h.observer.Observe(e)
	}
}

// errBindingLost answers a request bound to a backend that no longer serves
// its clients but has not left the set, when bindings are strict.
var errBindingLost = fmt.Errorf("sticky: the bound backend is unavailable: %w", balancer.ErrNoBackend)

// choose returns the backend for r, already counted in flight: the bound
// one if it still serves its clients or admits r as its trial (see
// [backend.Ejection]), else the one reroute chooses; and the DonePicker
// that placed it, if one did; and how the request was placed.
func (h *Handler) choose(r *http.Request, snap *backend.Snapshot, bound policy.Binding) (*backend.Backend, balancer.DonePicker, event.Placement, error) {
	if bound.Status == policy.Valid {
		if b := snap.Lookup(bound.ID); b != nil && (snap.KeepsBound(b) || accounting.TryTrial(b)) && accounting.Acquire(b) {
			if h.observer != nil {
				h.observer.Observe(event.Event{Kind: event.BoundHit, Request: r, Backend: b.ID()})
			}
			return b, nil, event.Bound, nil
		}
	}
	b, done, err := h.reroute(r, snap, bound)
	switch {
	case err != nil:
		return nil, nil, event.Unplaced, err
	case bound.Status == policy.Keyed:
		return b, done, event.Keyed, nil
	case bound.Status == policy.Valid || bound.Status == policy.Unknown:
		return b, done, event.Redispatched, nil
	}
	return b, done, event.Picked, nil
}

// reroute returns, counted in flight, the backend for a request whose
// binding names none that serves it, chosen within one group of backends
// when the set has several (see groups): the key picker's choice for a
// keyed request; for a client whose binding names a backend that does not
// serve it, the one rehome chooses, if any takes new clients; else the
// picker's, shared by the unbound HTTP/2 requests that arrive together
// from one client (see firstPicks). With strict bindings,
// a request bound to a backend that is still a member but does not serve
// gets none. It also returns the DonePicker that placed the backend, if
// one did.
func (h *Handler) reroute(r *http.Request, snap *backend.Snapshot, bound policy.Binding) (*backend.Backend, balancer.DonePicker, error) {
	var prev *backend.Backend // the bound backend, if still a member
	if bound.Status == policy.Valid {
		prev = snap.Lookup(bound.ID)
		if h.strict && prev != nil && !prev.Removed() {
			return nil, nil, errBindingLost
		}
	}
	moved := bound.Status == policy.Valid || bound.Status == policy.Unknown
	var k uint64 // the moved client's rehomeKey
	if moved {
		k = rehomeKey(r, h.trusted, bound)
	}
	info := balancer.Info{Request: r, Snapshot: h.groups.snapshot(snap, bound, prev, k)}
	var b *backend.Backend
	var done balancer.DonePicker
	var err error
	switch {
	case bound.Status == policy.Keyed:
		info.KeyHash, info.Keyed = bound.KeyHash, true
		b, done, err = h.pick(h.keys, info)
	case moved && h.rehomed(&b, k, info.Snapshot, nil):
	case h.firsts.applies(r):
		b, err = h.firsts.choose(r, h.trusted, snap, func() (b *backend.Backend, err error) {
			b, done, err = h.pick(h.picker, info) // a request that shares the pick is not the picker's placement
			return b, err
		})
	default:
		b, done, err = h.pick(h.picker, info)
	}
	if err == nil && h.observer != nil {
		if moved {
			var from string // none: the bound backend has left the set
			if prev != nil {
				from = prev.ID()
			}
			h.observer.Observe(event.Event{Kind: event.Redispatch, Request: r, Backend: b.ID(), Prev: from})
		} else {
			h.observer.Observe(event.Event{Kind: event.Pick, Request: r, Backend: b.ID()})
		}
	}
	return b, done, err
}

// rehomed sets *b to the backend rehome chooses for key k, counted in
// flight, and reports whether it did.
func (h *Handler) rehomed(b **backend.Backend, k uint64, snap *backend.Snapshot, skip func(*backend.Backend) bool) bool {
	if c := rehome(k, snap, skip); c != nil && accounting.Acquire(c) {
		*b = c
		return true
	}
	return false
}

// pick asks p for a backend and counts the request in flight on it, asking
// again if the backend left the set in the meantime; it returns p.done
// with it, nil for a trial. A choice the request may not be placed on
// (see placeable) is replaced by the least loaded member that takes new
// clients, returned without p.done. An unkeyed request that another backend can be
// tried with if it fails (no body, an idempotent method) goes instead to a
// half-open backend that admits it as its trial.
func (h *Handler) pick(p picker, info balancer.Info) (*backend.Backend, balancer.DonePicker, error) {
	if !info.Keyed && trialSafe(info.Request) { // a key goes where the key picker says
		if b := accounting.Trial(info.Snapshot); b != nil && accounting.Acquire(b) {
			return b, nil, nil
		}
	}
	for range maxPicks {
		b, err := p.Pick(info)
		if err != nil {
			return nil, nil, err
		}
		if b == nil {
			return nil, nil, balancer.ErrNoBackend
		}
		done := p.done
		if !placeable(info, b) {
			// The picker broke its contract: the least loaded member
			// that takes new clients gets the request instead, and the
			// picker is not told of a placement it did not make.
			if b, done = leastLoaded(info.Snapshot, nil), nil; b == nil {
				return nil, nil, balancer.ErrNoBackend
			}
		}
		if accounting.Acquire(b) {
			return b, done, nil
		}
		// b left the set after the snapshot was loaded: pick again from
		// the new one.
		info.Snapshot = h.set.Snapshot()
	}
	return nil, nil, fmt.Errorf("%w: backends removed while picking", balancer.ErrNoBackend)
}

// placeable reports whether the request info describes may be placed on
// b, a picker's choice: b is a member of info.Snapshot and takes new
// clients, or, for a keyed request, is any member (a key picker may keep a
// key on its draining backend, or admit the request as a half-open
// backend's trial).
func placeable(info balancer.Info, b *backend.Backend) bool {
	if info.Keyed {
		return info.Snapshot.Lookup(b.ID()) == b
	}
	return info.Snapshot.TakesNew(b) // a member's only
}

// leastLoaded returns the member of snap that takes new clients and that
// skip, if not nil, does not report, with the least load relative to its
// weight; nil if there is none.
func leastLoaded(snap *backend.Snapshot, skip func(*backend.Backend) bool) *backend.Backend {
	var best *backend.Backend
	for _, b := range snap.Routable() {
		if skip != nil && skip(b) || !snap.TakesNew(b) {
			continue
		}
		if best == nil || snap.Load(b)*best.Weight() < snap.Load(best)*b.Weight() {
			best = b
		}
	}
	return best
}

// trialSafe reports whether r may be a half-open backend's trial though
// it is not bound there: retried on another backend if the trial fails,
// its client need not see the failure.
func trialSafe(r *http.Request) bool {
	return r != nil && (r.Body == nil || r.Body == http.NoBody) && idempotent(r)
}

// rewrite points the outgoing request at the chosen backend, removes the
// policy's binding from it, sets the forwarding headers (believing the
// client's only from a trusted proxy), removes an HTTP/2 upgrade, and adds
// the handler's Via entry; then calls the user's Rewrite, keeping what it
// is handed for a retry's. A body is read through a trackedBody.
func (x *exchange) rewrite(pr *httputil.ProxyRequest) {
	h := x.h
	if b := pr.Out.Body; b != nil && b != http.NoBody {
		// Its own allocation, not the exchange's: the transport may still
		// read it after the request is over and x serves another.
		x.body = &trackedBody{rc: b, size: max(pr.In.ContentLength, 0), client: x.client}
		if x.rd != nil {
			x.body.dl, x.body.d, x.body.limit = x.rd, h.bodyTimeout, x.rlimit
		}
		pr.Out.Body = x.body
	}
	x.query = pr.Out.URL.RawQuery
	pr.SetURL(x.backend.URL())
	if !h.rewriteHost {
		pr.Out.Host = pr.In.Host
	}
	if h.stripper != nil {
		h.stripper.Strip(pr.Out.Header)
	}
	if up, ok := pr.Out.Header["Upgrade"]; ok && h2cUpgrade(up) {
		// The client asks to speak HTTP/2 with the proxy, not with the
		// backend, which must not switch protocols under it.
		delete(pr.Out.Header, "Upgrade")
		delete(pr.Out.Header, "Connection")
	}
	x.trusted = len(h.trusted) > 0 && h.trustsPeer(pr.In) // else not worth the lookups
	in, out := pr.In.Header, pr.Out.Header
	if xff, ok := in["X-Forwarded-For"]; ok && x.trusted {
		out["X-Forwarded-For"] = xff // SetXForwarded appends the peer
	}
	pr.SetXForwarded()
	if !x.trusted {
		for k := range out { // one pass over a few headers, not a lookup for each of spoofable
			if spoofable(k) {
				delete(out, k)
			}
		}
	} else {
		for _, k := range [...]string{"X-Forwarded-Proto", "X-Forwarded-Host"} {
			if v, ok := in[k]; ok {
				out[k] = v
			}
		}
		if fwd, ok := in["Forwarded"]; ok {
			out["Forwarded"] = []string{strings.Join(fwd, ", ") + ", " + forwardedFor(pr.In.RemoteAddr)}
		}
	}
	h.via.add(pr.Out.Header, pr.In.ProtoMajor, pr.In.ProtoMinor)
	if h.rewrite != nil {
		if h.retries > 0 && !h.strict {
			x.header, x.host = pr.Out.Header.Clone(), pr.Out.Host
		}
		h.rewrite(pr)
	}
}

// spoofable reports whether k, a canonical header key, is one of the
// headers besides X-Forwarded-For, -Proto and -Host and Forwarded by which
// proxies tell applications where a request came from, and how:
// frameworks believe them (Rack's X-Forwarded-Ssl and -Scheme, Tomcat's
// and Symfony's X-Forwarded-Port, nginx's realip and many applications'
// X-Real-IP) when they come from the proxy. From a peer that is not a
// trusted proxy they are removed; the handler sets none of them.
func spoofable(k string) bool {
	switch k {
	case "X-Real-Ip", "X-Forwarded-Port", "X-Forwarded-Ssl", "X-Forwarded-Scheme", "X-Forwarded-Server",
		"X-Forwarded-Prefix", "X-Url-Scheme", "Front-End-Https", "True-Client-Ip", "X-Client-Ip", "X-Cluster-Client-Ip":
		return true
	}
	return false
}

// h2cUpgrade reports whether an Upgrade header's values ask for HTTP/2
// over cleartext (RFC 7540's h2c upgrade).
func h2cUpgrade(values []string) bool {
	for _, v := range values {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), "h2c") {
				return true
			}
		}
	}
	return false
}

// forwardedFor returns a Forwarded element (RFC 7239) for the peer at
// remoteAddr, host:port: for=, with an IPv6 address quoted and bracketed.
func forwardedFor(remoteAddr string) string {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return "for=unknown"
	}
	if a := ap.Addr().Unmap(); a.Is4() {
		return "for=" + a.String()
	}
	return `for="[` + ap.Addr().String() + `]"`
}

// forwardedHTTPS reports whether h, the header of a request from a
// trusted proxy, says the client's request came over HTTPS: the last item
// of its X-Forwarded-Proto, which the nearest proxy appended, is https.
func forwardedHTTPS(h http.Header) bool {
	v, ok := h["X-Forwarded-Proto"]
	if !ok || len(v) == 0 {
		return false
	}
	last := v[len(v)-1] // the list's last item: the nearest proxy's
	if i := strings.LastIndexByte(last, ','); i >= 0 {
		last = last[i+1:]
	}
	return strings.EqualFold(strings.TrimSpace(last), "https")
}

// trustsPeer reports whether r comes straight from a trusted proxy.
func (h *Handler) trustsPeer(r *http.Request) bool {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	addr := ap.Addr().Unmap()
	for _, p := range h.trusted {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// stillServes reports whether the backend with ID id is a member of the
// set's current snapshot that serves its clients.
func (h *Handler) stillServes(id string) bool {
	snap := h.set.Snapshot()
	b := snap.Lookup(id)
	return b != nil && snap.KeepsBound(b)
}

// modifyResponse reports the answer for passive health checking and lets
// the policy write its binding on the response (unless x.keep says the
// client stays bound where it is, and its backend still serves its
// clients: one that left the set, or went down, since the request was
// placed does not keep it), then hands it to the user's
// ModifyResponse. A 101 Switching Protocols clears the deadlines
// the body and write timeouts set: the connection is handed over (a
// WebSocket), and may stay quiet as long as both ends like.
func (x *exchange) modifyResponse(resp *http.Response) error {
	h := x.h
	x.status = resp.StatusCode
	if x.track {
		now := time.Now()
		x.hdr = now.Sub(x.start)
		if x.done != nil {
			x.latency = now.Sub(x.since)
		}
	} else if x.done != nil {
		x.latency = time.Since(x.since)
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		x.body.stop(true)
		x.tw.stop()
	}
	if h.failureStatus != nil && h.failureStatus(resp.StatusCode) {
		accounting.ReportFailureOf(x.backend, accounting.Failure{Cause: "status " + strconv.Itoa(resp.StatusCode), Client: x.client, Reached: true})
		h.observe(event.Event{Kind: event.Failure, Request: x.in, Backend: x.backend.ID(), Reason: event.StatusFailure})
	} else {
		accounting.ReportSuccess(x.backend)
	}
	n := len(resp.Header["Set-Cookie"])
	in := x.in
	if in.TLS == nil && x.trusted && forwardedHTTPS(in.Header) {
		in = in.WithContext(in.Context())
		in.TLS = &tls.ConnectionState{} // over HTTPS as far as the policy is concerned
	}
	if !x.keep || !h.stillServes(x.bound.ID) {
		h.policy.Save(in, resp, x.backend, x.bound)
	}
	bound := len(resp.Header["Set-Cookie"]) > n
	if bound {
		// A shared cache that kept this response would hand the binding
		// to everyone behind it.
		privatize(resp.Header)
	}
	if h.modifyResponse != nil {
		if err := h.modifyResponse(resp); err != nil {
			x.refused = true
			return err // the response, and its binding, go no further
		}
	}
	if bound {
		h.observe(event.Event{Kind: event.Bind, Request: x.in, Backend: x.backend.ID()})
	}
	return nil
}

// proxyError answers a request whose backend could not be reached, failed
// or did not answer in time, saying which (see backendFailure), in a fixed
// text that names no backend, or one whose response the user's
// ModifyResponse refused; or has the user's error handler answer it. It
// answers 400 one whose body could not be read from the client
// (malformed, cut short), which is the client's fault, not the backend's,
// or 408 if the client sent nothing of it for too long.
func (x *exchange) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	id := x.backend.ID()
	if x.status == 0 {
		x.err = err // for the DonePicker: the attempt ended without an answer
	}
	if berr := x.body.failed(); berr != nil {
		// Before the client's context: a failed body read cancels it,
		// though a client whose body was too slow still reads the answer.
		x.h.logger.Debug("request body unreadable", "backend", id, "err", berr)
		if timeout(berr) {
			http.Error(w, "408 request timeout: the request body did not arrive in time", http.StatusRequestTimeout)
			return
		}
		http.Error(w, "400 bad request: the request body could not be read", http.StatusBadRequest)
		return
	}
	if r.Context().Err() != nil {
		// The client went away; nobody reads this answer. Not the
		// backend's failure, but a stall's symptom if it answers no one.
		x.gone = true
		accounting.ReportAbandoned(x.backend, x.waited(), x.client)
		x.h.logger.Debug("client gone", "backend", id, "err", err)
		if x.h.errorHandler != nil {
			x.h.errorHandler(w, r, err)
			return
		}
		http.Error(w, "502 bad gateway: the backend did not answer", http.StatusBadGateway)
		return
	}
	if x.refused {
		x.h.logger.Debug("response refused by ModifyResponse", "backend", id, "status", x.status, "err", err)
	} else {
		x.h.logger.Warn("backend failed", "backend", id, "err", err)
	}
	if x.h.errorHandler != nil {
		x.h.errorHandler(w, r, err)
		return
	}
	if x.refused {
		http.Error(w, "502 bad gateway: the backend's response was refused", http.StatusBadGateway)
		return
	}
	code, text := backendFailure(err)
	http.Error(w, text, code)
}

// errNoAnswer is what a DonePicker is told of an attempt that ended with
// neither an answer nor an error, when a hook panicked.
var errNoAnswer = errors.New("sticky: the request ended before its backend answered")

// doneWith tells x.done how the current attempt went: failed with err, or
// answered with x.status if err is nil; and forgets x.done, so that each
// placement is reported once.
func (x *exchange) doneWith(err error) {
	d := balancer.DoneInfo{Request: x.in, Backend: x.backend, Err: err}
	switch {
	case err != nil:
		d.Latency = time.Since(x.since)
	case x.status != 0:
		d.StatusCode, d.Latency = x.status, x.latency
	default:
		d.Err, d.Latency = errNoAnswer, time.Since(x.since)
	}
	done := x.done
	x.done, x.err, x.latency = nil, nil, 0
	done.Done(d)
}

// waited returns how long x's request has waited for its backend's
// answer: since it was handed to the proxy, or, with a body, for as long
// as its last attempt was not waiting for the client's body (a slow upload
// is its client's time).
func (x *exchange) waited() time.Duration {
	if x.body == nil {
		return time.Since(x.sent)
	}
	return x.body.lastWait()
}

// backendFailure returns the status and text that tell a client what err,
// the error of a request to a backend, means for it: 502 if no connection
// to the backend could be made (refused, unreachable, a name that does not
// resolve, the connect timeout, a TLS handshake that failed or timed out:
// the request never reached it); 504 if the backend took too long (the
// transport's response header timeout, or another read that timed out);
// else 502, the backend failed (the connection reset or closed before a
// complete response, a malformed response).
func backendFailure(err error) (int, string) {
	if unreached(err) {
		return http.StatusBadGateway, "502 bad gateway: the backend could not be reached"
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
		return http.StatusGatewayTimeout, "504 gateway timeout: the backend did not answer in time"
	}
	return http.StatusBadGateway, "502 bad gateway: the backend failed"
}
