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
// # Groups
//
// When the set's backends are in several groups ([backend.Config.Group],
// a version of the application, a target group) with weights
// ([backend.WithGroupWeights], [backend.Set.SetGroupWeight]), a request
// not bound to a backend that serves it is placed in two steps: first a
// group, then the picker, or the key picker, chooses within the group's
// snapshot ([backend.Snapshot.Group]). A new client is given a group by
// smooth weighted round robin over the groups of positive weight that
// have a member taking new clients (nginx's algorithm: over any run of
// clients each group's share is its weight's, to within one client). A
// client whose binding names a group ([policy.Binding.Group]; else the
// group of its backend, if still a member) is re-placed within that group
// while it has a member taking new clients, whatever its weight, 0
// included: a group at weight 0 takes no new clients but keeps its own
// (Gateway API GEP-1619); only a group with none left sends its clients
// to another, chosen, as a keyed request's, by weighted rendezvous
// hashing, of the binding and the client's address, so that one client's
// requests agree on it. A keyed request's key is assigned to a
// group by weighted rendezvous hashing (the highest -w/ln(u), u uniform
// in (0,1) from the key and the group's name): each group's share of the
// keys is its weight's, and changing one group's weight moves keys only
// to it or from it. Moving weight from one group to another of two moves
// keys only between them; with three or more, it also moves a few keys
// between those two and the others, as any assignment that depends on
// the weights alone must. When no group of positive weight can take a
// new client, every member may. A retry stays in its group while the
// group has a backend left to try. A set without groups (every backend
// in the default group, "", and no weight set) is placed exactly as
// without this step.
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
// 503, while the backend is still a member, with [WithStrictBinding]), by
// a weighted rendezvous hash of its binding and its client's address
// rather than by the picker, so that the requests a client sends together
// agree on its new backend and bind it once; a
// request whose backend fails it before answering is retried on another
// when that is safe, and executed by backends at most twice in all
// ([WithRetries]); transport
// failures, and answers [WithFailureStatus] names, feed the set's passive
// health checking, each with its client (a hash of its address, as
// trusted proxies report it) and whether it reached the backend, so that
// one client's failures that reached a backend, or its slow requests,
// never eject it ([backend.Ejection]): behind a proxy that is not among
// [WithTrustedProxies], all clients look like one and only failures that
// never reached a backend eject it, so name the proxy, or add active
// health checks; the policy's cookie is stripped before forwarding and
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
//
// # Each request's facts
//
// Every event of a request carries the request ([event.Event.Request]),
// and each request, whatever its end (answered, 502, 503, 508, the
// client's 400 or 408, a panic's 500), ends with one [event.Done] event:
// the last backend it was sent to, how it was placed, its retries, the
// status its client was sent (0 if the client left first), the time to
// the backend's response header and the total time, and why its binding
// was refused, if it was. A middleware around the handler reads the same
// facts from [Track]'s [Decision], filled in before ServeHTTP returns; a
// round tripper given to [WithTransport] reads, with [DecisionOf], the
// backend of each attempt of a tracked request while it is sent.
// Without an observer or a tracked request none of it is gathered: no
// clock is read and nothing is allocated for it; with them, nothing is
// allocated per request either.
package sticky
