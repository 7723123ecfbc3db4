// Package policy binds clients to backends: it reads the binding a request
// carries and writes it on the response.
//
// A [Policy] has two halves, both called concurrently for every request.
// Lookup reads the request's binding and resolves it against the backend
// snapshot the request is routed with, returning a [Binding]. A policy never
// fails a request: a binding it cannot read or trust comes back with a
// [Status] saying why (Malformed, Forged, Expired, Unknown) and the caller
// treats it as absent, choosing a backend afresh. Once a backend has
// answered, Save is given what Lookup returned and sets, refreshes or leaves
// the binding on the response. Binding.Refresh asks Save to write the
// binding again although the request was served by the backend it names.
// A policy whose binding travels in the request, a cookie of the
// balancer's own, implements [Stripper] so that the handler removes it
// before forwarding.
//
// A binding either names a backend (Valid, with its ID) or, for clients
// that keep no cookies, carries an affinity key (Keyed, with the key's
// 64-bit hash in KeyHash) that a hashing picker maps to a backend.
//
// # Policies
//
//   - The cookie policies, in package [github.com/affinitylb/affinity/cookie],
//     bind a client with a signed cookie of the balancer's own, for a time
//     of their own or for as long as the application's session cookie
//     lives. They suit browsers, and the balancer keeps no state per
//     client.
//   - [Key] binds clients that keep no cookies by a value they send with
//     every request: a header ([HeaderKey]), a query parameter
//     ([QueryKey]), a cookie of the application's ([CookieKey]) or the
//     client's IP address ([ClientIPKey], which believes X-Forwarded-For
//     or Forwarded only from proxies you name; see [ParsePrefixes]). It
//     keeps nothing and writes nothing: the same key reaches the same
//     backend for as long as the hashing picker maps it there. A policy
//     of your own that finds keys elsewhere hashes them with [HashKey], as
//     the Key does, so that the same key reaches the same backend whoever
//     found it.
//   - [Chain] asks several policies in order, for instance the balancer's
//     cookie, then a header Key, leaving the rest to the picker. The first
//     that places the request wins. On the response every member saves
//     its own binding, so a client placed by its key or by the picker is
//     given a cookie, and one placed by a valid cookie keeps it as it is.
//
// The policies of this package are safe for concurrent use and never
// panic, whatever a request carries. Their Lookup allocates nothing, and
// reads a Cookie header in time linear in its length, however many cookies
// it holds.
//
// An affinity key is no authentication: any client can send any header or
// query parameter, and so choose its backend.
package policy
