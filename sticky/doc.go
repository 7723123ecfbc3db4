// Package sticky provides the [Handler] that puts sticky-session load
// balancing in front of a pool of backends.
//
// A Handler combines three parts, each from its own package:
//
//   - a [backend.Set]: the pool, its membership and each backend's state;
//   - a [policy.Policy]: what binds a client to a backend (a signed cookie,
//     an application's session cookie, a header key...);
//   - two [balancer.Picker]s: the key picker, which hashes the affinity
//     key of a key policy onto the pool (Maglev consistent hashing,
//     without load bounds, by default; [WithKeyPicker]), and the picker,
//     which places every other request not bound to a backend (least
//     connections by default; [WithPicker]).
//
// It forwards with [httputil.ReverseProxy], so streaming, trailers and
// WebSocket upgrades behave as they do there, and it counts every request in
// flight on its backend for the request's whole life. The proxy's extension
// points are the handler's options, run after its own work:
// [WithRewrite] on every attempt's outgoing request, [WithModifyResponse]
// on the backend's response, [WithErrorHandler] for the answers to the
// requests it cannot forward, and [WithFlushInterval]. A picker that
// implements [balancer.DonePicker] is told how each request it placed
// went.
//
// Around that core it does what an edge proxy must: a request bound to a
// backend that no longer serves is placed again and re-bound (or answered
// 503, while the backend is still a member, with [WithStrictBinding]); a
// request whose backend fails it before answering is retried on another
// when that is safe, and executed by backends at most twice in all
// ([WithRetries]); transport
// failures, and answers [WithFailureStatus] names, feed the set's passive
// health checking; the policy's cookie is stripped before forwarding and
// responses that set it are made private to shared caches; the client's
// Host is forwarded ([WithPreserveHost]), and the forwarding headers
// (X-Forwarded-For, -Proto, -Host, Forwarded) are believed and extended
// only from trusted proxies ([WithTrustedProxies]), replaced otherwise;
// a client's h2c upgrade is not forwarded; unbound
// HTTP/2 requests arriving together from one client (on one connection, or
// with one forwarded address behind trusted proxies; 16 at most) share one
// binding; a
// request that comes back to the handler round a loop, as its Via header
// shows, is answered 508 ([WithVia]); a client that stops sending its
// request's body is answered 408 ([WithBodyTimeout]), and one that stops
// reading its response is cut off ([WithWriteTimeout]), blaming no
// backend; a
// panic in a user's policy, picker or hook is answered 500. Everything it
// decides can be watched with an [event.Observer] ([WithObserver]).
package sticky
