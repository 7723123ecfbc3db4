// Package sticky provides the [Handler] that puts sticky-session load
// balancing in front of a pool of backends.
//
// A Handler combines three parts, each from its own package:
//
//   - a [backend.Set]: the pool, its membership and each backend's state;
//   - a [policy.Policy]: what binds a client to a backend (a signed cookie,
//     for instance);
//   - a [balancer.Picker]: where a client that is not bound goes
//     (least connections by default).
//
// It forwards with [httputil.ReverseProxy], so streaming, trailers and
// WebSocket upgrades behave as they do there, and it counts every request in
// flight on its backend for the request's whole life.
package sticky
