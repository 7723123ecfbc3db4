package sticky

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"reflect"
	"time"

	"github.com/affinitylb/affinity/balancer"
	"github.com/affinitylb/affinity/event"
)

// Option configures a [Handler]. An option only records its value; [New]
// validates them all.
type Option func(*options)

// options records the values of New's options. A field whose option takes
// a value that may be nil, or that has a default, has a flag saying
// whether the option was given.
type options struct {
	picker, keys       balancer.Picker
	pickerSet, keysSet bool
	transport          http.RoundTripper
	transportSet       bool
	logger             *slog.Logger
	retries            int
	retryWithin        time.Duration
	strict             bool
	failureStatus      func(code int) bool
	failureStatusSet   bool
	observers          []event.Observer
	keepBinding        bool
	rewriteHost        bool
	trusted            []netip.Prefix
	via                string
	viaSet             bool
	bodyTimeout        time.Duration
	writeTimeout       time.Duration
	rewrite            func(*httputil.ProxyRequest)
	rewriteSet         bool
	modifyResponse     func(*http.Response) error
	modifyResponseSet  bool
	errorHandler       func(http.ResponseWriter, *http.Request, error)
	errorHandlerSet    bool
	flushInterval      time.Duration
	nilObserver        bool // WithObserver(nil) was given
}

// validate returns every invalid value o records, joined; nil if all are
// valid.
func (o *options) validate() error {
	var errs []error
	if o.retries < 0 || o.retryWithin < 0 || o.retries > 0 && o.retryWithin == 0 {
		errs = append(errs, fmt.Errorf("sticky: WithRetries(%d, %v): want n ≥ 0 and, with retries, a positive time", o.retries, o.retryWithin))
	}
	for _, p := range o.trusted {
		switch {
		case !p.IsValid():
			errs = append(errs, fmt.Errorf("sticky: WithTrustedProxies(%v): invalid prefix", p))
		case p.Addr().Is4In6():
			// Peers are compared unmapped: it would match no one.
			errs = append(errs, fmt.Errorf("sticky: WithTrustedProxies(%v): the prefix is IPv4-mapped IPv6; give it as IPv4", p))
		}
	}
	if o.viaSet && !validPseudonym(o.via) {
		errs = append(errs, errVia(o.via))
	}
	for _, nilPtr := range []struct {
		option, what string
		v            any
	}{
		{"WithPicker", "picker", o.picker},
		{"WithKeyPicker", "picker", o.keys},
		{"WithTransport", "transport", o.transport},
	} {
		if nilPointer(nilPtr.v) {
			errs = append(errs, fmt.Errorf("sticky: %s((%T)(nil)): nil %s", nilPtr.option, nilPtr.v, nilPtr.what))
		}
	}
	for _, ob := range o.observers {
		if nilPointer(ob) {
			errs = append(errs, fmt.Errorf("sticky: WithObserver((%T)(nil)): nil observer", ob))
		}
	}
	for _, nilOpt := range []struct {
		name  string
		isNil bool
	}{
		{"WithPicker(nil): nil picker", o.pickerSet && o.picker == nil},
		{"WithKeyPicker(nil): nil picker", o.keysSet && o.keys == nil},
		{"WithTransport(nil): nil transport", o.transportSet && o.transport == nil},
		{"WithRewrite(nil): nil function", o.rewriteSet && o.rewrite == nil},
		{"WithModifyResponse(nil): nil function", o.modifyResponseSet && o.modifyResponse == nil},
		{"WithErrorHandler(nil): nil function", o.errorHandlerSet && o.errorHandler == nil},
		{"WithObserver(nil): nil observer", o.nilObserver},
		{"WithFailureStatus(nil): nil function", o.failureStatusSet && o.failureStatus == nil},
	} {
		if nilOpt.isNil {
			errs = append(errs, errors.New("sticky: "+nilOpt.name))
		}
	}
	if o.bodyTimeout < 0 {
		errs = append(errs, fmt.Errorf("sticky: WithBodyTimeout(%v): negative", o.bodyTimeout))
	}
	if o.writeTimeout < 0 {
		errs = append(errs, fmt.Errorf("sticky: WithWriteTimeout(%v): negative", o.writeTimeout))
	}
	return errors.Join(errs...)
}

// Retries are bounded by default as HAProxy's "retries 3" and Envoy's
// default retry policy are, in count and in time.
const (
	defaultRetries     = 2
	defaultRetryWithin = 10 * time.Second
)

// WithRetries sets how many other backends a request is tried on when its
// backend fails it before answering, and for how long after the first
// failure retries may start. A request whose backend could not be reached
// (no connection could be made) is tried on up to n others. One that may
// have reached it (the connection was reset or closed before a response)
// is sent to one other at most, and only if repeating it is harmless (an
// idempotent method: an Idempotency-Key header is not enough, as the
// other backend keeps no record of the key), within a budget that
// every request adds a fifth of a replay to (it starts with 3, and saves
// at most 100), so that a wave of failures cannot multiply the backends'
// load: a request is executed by backends at most twice, over HTTP/1.1
// (see [DefaultTransport]), but for one of another method with an
// Idempotency-Key, which net/http's Transport may send again to the same
// backend, as it does for any client. Whatever the error, a
// request is sent again only if its body can be (it has none, or not a
// byte of it had been read: it is sent whole to the next backend); one
// whose body could not be read from the client is never retried. A
// retried request is bound to the backend that answered it, unless its
// backend failed it only on a connection the transport reused (one the
// backend may have closed while idle), which is no sign the backend cannot
// serve: its client stays bound there, while that backend serves its
// clients. The default
// is 2 retries within 10 seconds; WithRetries(0, 0) turns retries off:
// no request goes to another backend, though one that could be replayed
// and met a connection the transport reused is sent again to its own
// backend, once, as net/http's Transport would send it.
func WithRetries(n int, within time.Duration) Option {
	return func(o *options) { o.retries, o.retryWithin = n, within }
}

// WithStrictBinding makes a request bound to a backend that no longer
// serves its clients but may come back (unhealthy, ejected) fail with 503
// and a Retry-After header instead of being placed on another backend and
// re-bound, and turns retries off (as [WithRetries](0, 0) does), for
// applications that would rather show an error than lose a session. A backend that has left the set will not
// come back: its clients are placed anew and bound again, once, strict or
// not. Draining backends still serve their clients.
func WithStrictBinding(strict bool) Option {
	return func(o *options) { o.strict = strict }
}

// WithForwardedBinding sets whether the policy's own binding (its cookie)
// is forwarded to the backend with the rest of the request. By default it
// is removed first (HAProxy's "indirect" cookies): the application has no
// use for it, and a backend that logs or echoes cookies should not see
// it. Policies that implement [policy.Stripper] know how to remove theirs.
func WithForwardedBinding(forward bool) Option {
	return func(o *options) { o.keepBinding = forward }
}

// WithPreserveHost sets whether the client's Host header is forwarded;
// false sends each backend its own host as the Host header, as
// [httputil.ProxyRequest.SetURL] does, for backends that serve only their
// own name. By default the client's Host is forwarded unchanged, as
// applications that build absolute URLs from it, or check a WebSocket's
// Origin against it, need. Either way, X-Forwarded-Host carries the
// client's.
func WithPreserveHost(preserve bool) Option {
	return func(o *options) { o.rewriteHost = !preserve }
}

// WithTrustedProxies names the proxies in front of the handler, such as
// a TLS-terminating load balancer, whose forwarding headers the handler
// believes. A request from one of them is forwarded with its
// X-Forwarded-For and the proxy's address appended, its Forwarded with an
// element for the proxy appended, and its X-Forwarded-Proto and
// X-Forwarded-Host as they are; and one it says came over HTTPS
// (X-Forwarded-Proto: https) is handed to the policy as if it had come
// over TLS (with a TLS field, empty), so that a cookie policy's automatic
// Secure attribute holds. From any other peer the four headers are
// replaced by what the handler saw: X-Forwarded-For is the peer's address
// alone, X-Forwarded-Proto http or https, X-Forwarded-Host the request's
// Host, and Forwarded is removed, as are the other headers by which
// proxies say where a request came from and how (X-Real-IP,
// X-Forwarded-Port, -Ssl, -Scheme and the like); so a client cannot make
// the backend believe it comes from elsewhere.
//
// The client address a trusted proxy reports (in X-Forwarded-For, else
// Forwarded, read as [policy.ClientIPKey] reads them) also decides which
// unbound HTTP/2 requests share a first pick: those reported for one
// address within a few seconds do, up to a page load's worth and whatever
// connection they arrive on, rather than every request of the proxy's
// connection; and which client a failure is counted for in passive health
// checking, which ejects a backend on failures that reached it only when
// at least two clients had them ([backend.Ejection]): behind a proxy that
// is not trusted every client has its address, and only failures that
// never reached a backend, or active health checks, eject one. By default
// no proxy is trusted.
func WithTrustedProxies(prefixes ...netip.Prefix) Option {
	return func(o *options) { o.trusted = append(o.trusted, prefixes...) }
}

// WithVia names the handler in the Via header it adds to every request it
// forwards ("1.1 name", or "2 name" for an HTTP/2 request: the protocol
// version as received, after the entries already there), by which it
// recognises a request that has come back to it: that one is answered 508
// Loop Detected, and forwarded to no backend. The name must be an RFC 9110
// token (letters, digits and !#$%&'*+-.^_`|~), such as a host name without
// its port; backends see it. Handlers that may forward to each other, in
// one process or several, must have different names; replicas that never
// do may share one. By default each handler returned by [New] has a name
// of its own, "affinity-" and 16 random hex digits, new at every start.
// Responses get no Via entry: clients do not learn the name.
func WithVia(name string) Option {
	return func(o *options) { o.via, o.viaSet = name, true }
}

// WithObserver adds an observer that receives the handler's events: picks,
// bound hits, bindings, redispatches, rejected bindings, retries,
// failures and panics. It may be given several times: each observer
// receives every event, in the order they were given.
// The set's own events (state changes, drains) go to the observers added
// to the set with [backend.Set.AddObserver]; one observer may serve both.
// By default there is none, and no event is built. o must not be nil,
// nor a nil pointer.
func WithObserver(o event.Observer) Option {
	return func(o2 *options) {
		if o == nil {
			o2.nilObserver = true
			return
		}
		o2.observers = append(o2.observers, o)
	}
}

// WithFailureStatus makes answers with a status for which failure returns
// true count as failures of their backend for passive health checking
// ([backend.Ejection]), as transport errors always do. For example,
// func(code int) bool { return code >= 500 } counts every 5xx, 501 Not
// Implemented and 505 HTTP Version Not Supported included, which any client
// gets from many servers by asking for a method or version they lack: one
// client's such answers alone never eject a backend, but clients at two
// addresses could eject it; counting only 502, 503 and 504, which say the
// backend cannot serve, leaves fewer ways. By default no answer
// counts as a failure. failure must not be nil.
func WithFailureStatus(failure func(code int) bool) Option {
	return func(o *options) { o.failureStatus, o.failureStatusSet = failure, true }
}

// WithPicker sets the picker that places the requests that are neither
// bound to a backend nor carry an affinity key: every new client of a
// cookie policy, a request without the key of a key policy. A client whose
// binding names a backend that no longer serves it (or that failed the
// request) is not the picker's: the handler places it by a weighted
// rendezvous hash of the binding and the client's address, so that the
// requests it sends together all go to one backend. It never sees a keyed request (a policy
// binding whose Status is Keyed), which goes to the key picker
// ([WithKeyPicker]) whatever the picker. A picker that implements
// [balancer.DonePicker] is told how each request it placed went. A choice
// that is no member of the snapshot it was given taking new clients (a
// draining or unhealthy member, a backend of another set) is not used: the
// least loaded member that takes new clients gets the request, and the
// picker is not told of it. The default is a zero
// [balancer.LeastConnections]. p must not be nil, nor a
// nil pointer.
func WithPicker(p balancer.Picker) Option {
	return func(o *options) { o.picker, o.pickerSet = p, true }
}

// WithKeyPicker replaces the hashing of affinity keys: p places every
// request whose binding is Keyed, [balancer.Info.Keyed] set, and no other.
// It should send the requests with the same [balancer.Info.KeyHash] to the same
// backend while that backend serves them. The default is a zero
// [balancer.ConsistentHash]: Maglev hashing over the set's members, with
// loads unbounded, so that a key stays on its backend while the backend
// serves (healthy, or draining); pass a ConsistentHash built with
// [balancer.WithLoadFactor] to let the keys of a busy backend spill over.
// p must not be nil, nor a nil pointer.
func WithKeyPicker(p balancer.Picker) Option {
	return func(o *options) { o.keys, o.keysSet = p, true }
}

// WithTransport sets the round tripper that carries requests to backends.
// The default is [DefaultTransport](). An [http.Transport] of another
// making sends an idempotent request again, on its own, when a reused
// connection fails under it; one made by DefaultTransport (its fields
// may be changed, but for Proxy) leaves that to the handler, as does a
// round tripper that passes the request's context on to one. The handler
// calls rt once per attempt, on the goroutine serving the request; for a
// tracked request (see [Track]), [DecisionOf] the request rt is given
// names the backend of that attempt. rt must not be nil, nor a nil
// pointer.
func WithTransport(rt http.RoundTripper) Option {
	return func(o *options) { o.transport, o.transportSet = rt, true }
}

// WithLogger sets the logger. Backend failures are logged at Warn,
// per-request detail at Debug. A nil logger, like the default, discards
// everything.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.logger = l }
}

// WithBodyTimeout bounds how long the handler waits for the next byte of a
// request's body: a client that sends nothing of it for d (and at most a
// quarter more) is answered 408 Request Timeout, and its connection is
// closed. That is the client's fault: it is not counted against the
// backend, and the request is not retried. A body that keeps arriving,
// however slowly and however long, is not cut off, nor is one the backend
// is slow to take. It is set with [http.ResponseController.SetReadDeadline],
// per request under HTTP/2, and never past the server's own ReadTimeout.
// The default is 30 seconds; 0 turns it off; a negative d is an error.
func WithBodyTimeout(d time.Duration) Option {
	return func(o *options) { o.bodyTimeout = d }
}

// WithWriteTimeout bounds how long writing a response to a client may make
// no progress: when one write has been blocked for d (and at most a
// quarter more), a client that has stopped reading, the connection is cut
// and the request ends, at the backend too. A response that keeps moving
// (a large download, a stream of server-sent events, however quiet between
// two of them) is not cut off, and neither the wait for the backend's
// answer nor a connection upgraded with 101 Switching Protocols (a
// WebSocket) counts. It is set with [http.ResponseController.SetWriteDeadline],
// per request under HTTP/2, and never past the server's own WriteTimeout.
// The default is 30 seconds; 0 turns it off; a negative d is an error.
func WithWriteTimeout(d time.Duration) Option {
	return func(o *options) { o.writeTimeout = d }
}

// WithRewrite adds f to the handler's rewrite of every outgoing request,
// as [httputil.ReverseProxy.Rewrite]: f is called after the handler has
// aimed pr.Out at the chosen backend, set the forwarding headers and its
// Via entry and removed the policy's binding, and on every attempt,
// retries included. Each call gets pr.Out with the header and URL the
// handler made for that attempt's backend: edits f made for an earlier
// attempt are not there, so f may add a header without repeating it.
//
// What f sets is sent as it is: the handler removes nothing after f. pr.In
// is the client's request as it arrived, with the policy's binding and,
// from a peer that is not a trusted proxy, the forwarding headers the
// handler removed from pr.Out: what f copies from pr.In reaches the
// backend, whoever sent it.
//
// f may change pr.Out's header, path and query, and Host. It must not
// change the target (pr.Out.URL's scheme and host: the request is counted
// on, retried from and reported to the chosen backend whatever f does),
// replace pr.Out.Body (the handler reads it to tell the client's failures
// from the backend's, and sends it again on a retry), modify pr.In, or
// keep pr after it returns. A panic in f is recovered as the handler's
// own: the client is answered 500. f must not be nil.
func WithRewrite(f func(pr *httputil.ProxyRequest)) Option {
	return func(o *options) { o.rewrite, o.rewriteSet = f, true }
}

// WithModifyResponse sets f to be called with every response of a
// backend, as [httputil.ReverseProxy.ModifyResponse], after the handler's
// own work on it (the answer counted for passive health checking, the
// policy's binding written): f sees the header the client would get. If f
// returns an error, the response is discarded (its body closed) and the
// request is answered as by the error handler, with f's error (502 by
// default, or the handler of [WithErrorHandler]). That is not the
// backend's failure: it is not ejected for it, nor is the request
// retried, and no binding reaches the client. f must not be nil.
func WithModifyResponse(f func(resp *http.Response) error) Option {
	return func(o *options) { o.modifyResponse, o.modifyResponseSet = f, true }
}

// WithErrorHandler sets f to answer the requests the handler cannot
// forward, instead of its default answers, as
// [httputil.ReverseProxy.ErrorHandler]: those whose backend could not be
// reached, failed, or did not answer in time (502 or 504 by default), or
// whose client left; those whose response [WithModifyResponse] refused;
// and those no backend can take (503 and Retry-After by default), with an
// error that wraps [balancer.ErrNoBackend]. r is the client's request, or
// the outgoing copy of it. The handler's own bookkeeping (failures
// reported, events, the request counted out) happens whatever f does. A
// request whose body could not be read from the client is still answered
// 400 or 408 by the handler, and one that has come back round a loop 508
// (see [WithVia]). A panic in f is recovered: the client is answered 500.
// f must not be nil.
func WithErrorHandler(f func(w http.ResponseWriter, r *http.Request, err error)) Option {
	return func(o *options) { o.errorHandler, o.errorHandlerSet = f, true }
}

// WithFlushInterval sets how often a response's body is flushed to the
// client while it is copied, as [httputil.ReverseProxy.FlushInterval]:
// every d for a positive d, after every write for a negative one; 0, the
// default, leaves it to the server (when its buffer fills, and at the end). Streamed responses (server-sent events,
// a body of unknown length) are flushed after every write whatever d.
func WithFlushInterval(d time.Duration) Option {
	return func(o *options) { o.flushInterval = d }
}

// nilPointer reports whether v is a nil pointer of some type held in a
// non-nil interface, as a constructor whose error was not checked leaves
// one: its methods would panic on every request.
func nilPointer(v any) bool {
	if v == nil {
		return false
	}
	rv := reflect.ValueOf(v)
	return rv.Kind() == reflect.Pointer && rv.IsNil()
}
