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
//
// # The balancer's cookie
//
// [Cookie] binds a client with a cookie of the balancer's own. Its value is
// 44 characters, the unpadded base64url encoding of 33 bytes:
//
//	version (1) | token (8) | issued (4) | expires (4) | tag (16)
//
// version is 1; issued and expires are big-endian Unix seconds, expires
// being 0 for a session cookie. From each configured key two subkeys are
// derived, HMAC-SHA-256(key, label) with distinct labels: one makes tokens,
// one makes tags.
//
//   - Opaque. The token is the first 64 bits of HMAC-SHA-256 of the
//     backend's ID under the token subkey. The cookie shows neither the
//     backend's ID nor its address, and only a key holder can make one that
//     names a backend. Clients bound to the same backend carry the same
//     token: they can tell they share a backend, not which it is.
//   - Authentic. The tag is HMAC-SHA-256, truncated to 128 bits, of the
//     cookie's name, a zero byte and the first 17 bytes, under the tag
//     subkey, compared in constant time. Altering any byte, or presenting
//     the value under another cookie name, makes it Forged.
//   - Bounded. The expiry is signed into the value and enforced by Lookup,
//     not only by the browser: a client that keeps the cookie past its
//     Max-Age is not bound by it.
//   - Stateless. The balancer keeps nothing per client, so replicas
//     configured with the same name and keys accept each other's cookies,
//     and a restart loses no bindings.
//   - Rotatable. The first key signs and every key verifies. To rotate, put
//     the new key first on every replica, then drop the old one once the
//     cookies it signed have expired (a TTL later; session cookies can live
//     as long as the browser runs). A cookie verified with an older key is
//     re-signed with the first on its next response.
//
// A cookie is a bearer token: copied to another client, it binds that
// client too, until it expires. Stickiness is not authentication.
package policy
