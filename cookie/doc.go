// Package cookie binds clients to backends with a signed cookie of the
// balancer's own: the [policy.Policy] implementations for browsers and
// other clients that keep cookies, and for those that keep none, with the
// same signed value in a header.
//
//   - [Policy], made by [New], binds a client for the browser session or
//     for a time that, by default, counts from the client's last request
//     (sliding expiry: the cookie is re-issued once at most half its
//     lifetime is left), optionally bounded by a maximum life. It suits
//     any application, and the balancer keeps no state per client.
//   - [App], made by [NewApp], binds with the same cookie, but for as long
//     as the application's own session cookie lives (PHPSESSID,
//     JSESSIONID...): set when the application sets its cookie, with the
//     same lifetime and Path, and deleted when it deletes it, as AWS ALB's
//     application-based stickiness does. Clients without an application
//     session are not bound at all; one whose session was taken over by
//     another backend, its own having failed, is bound there even if the
//     application does not set its cookie again, so it moves once.
//   - [Header], made by [NewHeader], is for clients that keep no cookies,
//     such as API clients that echo a session header the way MCP clients
//     echo Mcp-Session-Id: the same signed value travels in a response
//     header of its name, and back in the request header. It takes the
//     options that set the lifetime and refuses those that shape a cookie.
//
// They take the same options ([WithName], [WithTTL], [WithPath], ...),
// which only record their values: the constructor checks them all and
// reports every invalid one. All implement [policy.Stripper], so the
// handler removes their cookie or header from requests before they reach
// a backend.
// Put one first in a [policy.Chain] to bind browsers by cookie and other
// clients by a key.
//
// The policies are safe for concurrent use and never panic, whatever a
// request carries. Their Lookup allocates nothing, once they have indexed
// the snapshot's backends, and reads a Cookie header in time linear in its
// length, however many cookies it holds. When a request carries several
// cookies of the balancer's name, as browsers send cookies set with
// different paths (the longest first), the first valid one binds.
//
// # The cookie
//
// Its value binds a client to a backend and the backend's group
// ([backend.Config.Group]). For a backend of the default group, "", it is
// 44 characters, the unpadded base64url encoding of 33 bytes, version 2:
//
//	version (1) | token (8) | issued (4) | expires (4) | tag (16)
//
// For a backend of a named group it is 52 characters, 39 bytes, version 3:
//
//	version (1) | token (8) | group (6) | issued (4) | expires (4) | tag (16)
//
// issued and expires are big-endian Unix seconds, expires being 0 for a
// session cookie. From each configured key two subkeys are
// derived, HMAC-SHA-256(key, label) with distinct labels: the token subkey
// with the label "affinity backend token v1", and the tag subkey, its
// first 16 bytes, with "affinity cookie cmac v2", a zero byte and the
// cookie's name. The group token is the first 48 bits of HMAC-SHA-256 of a
// zero byte and the group's name under the token subkey (1 if those are
// all zero). Lookup reports the group in [policy.Binding.Group] for every
// authentic cookie, Valid, Unknown (its backend has left, so the handler
// re-places the client in its group) or Expired, when the snapshot knows
// the group: it has a member or a weight. A version 2 cookie names the
// default group; one that names a backend now in another group is
// refreshed.
//
//   - Opaque. The token is the first 64 bits of HMAC-SHA-256 of the
//     backend's ID under the token subkey. The cookie shows neither the
//     backend's ID nor its address, and only a key holder can make one that
//     names a backend. Clients bound to the same backend carry the same
//     token: they can tell they share a backend, not which it is. Nothing
//     in a value is drawn at random, so clients bound to one backend in
//     the same second get the same value; Save signs it once and hands it
//     to all of them.
//   - Authentic. The tag is AES-CMAC (NIST SP 800-38B, RFC 4493) of
//     the fields between the version and the tag (16 bytes in version 2,
//     22 in version 3), under
//     the tag subkey as an AES-128 key; it is compared in constant time.
//     Altering any byte, or presenting the value under another cookie
//     name, makes it Forged (or Malformed, for a version not known or
//     not of its length).
//   - Bounded. The expiry is signed into the value and enforced by Lookup,
//     not only by the browser: a client that keeps the cookie past its
//     Max-Age is not bound by it. So is the binding's age, issued, kept
//     when the cookie is refreshed: past the maximum life, if one is set,
//     the binding ends however active the client.
//   - Stateless. The balancer keeps nothing per client (per backend, its
//     tokens and the last value issued for it), so replicas configured
//     with the same name and keys accept each other's cookies, and a
//     restart loses no bindings.
//   - Rotatable. The first key signs and every key verifies. To rotate
//     across replicas updated one at a time, first add the new key after
//     the old one on every replica; once all have it, put it first on
//     every replica; then drop the old one once the cookies it signed have
//     expired (a TTL later; session cookies can live as long as the
//     browser runs). At each step a replica not yet updated accepts what an
//     updated one signs; putting the new key first in one step would not
//     do, and would move the clients an updated replica re-signed. A
//     cookie verified with an older key is re-signed with the first on its
//     next response: by a Policy with a new lifetime, by an App with the
//     expiry it had.
//
// A cookie is a bearer token: copied to another client, it binds that
// client too, until it expires. Stickiness is not authentication.
package cookie
