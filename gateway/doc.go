// Package gateway builds a [policy.Policy] from the session persistence
// settings of the Kubernetes Gateway API (GEP-1619): the sessionPersistence
// of an HTTPRoute rule or a BackendLBPolicy. [SessionPersistence] mirrors
// the API's fields, without depending on its module, and [NewPolicy]
// returns the policy that implements them: a [cookie.Policy] for the
// Cookie type, a [cookie.Header] for the Header type. Both bind with the
// package cookie's signed, opaque value, so a controller running several
// replicas gives each the same keys.
//
// The fields map onto the cookie package's options:
//
//	Type     LifetimeType  AbsoluteTimeout A  IdleTimeout I   policy
//	Cookie   Session       -                  -               session cookie, no expiry
//	Cookie   Session       A                  -               session cookie; binding ends A after it was made
//	Cookie   Permanent     A (required)       -               Max-Age A, absolute: the binding ends A after it was made
//	Cookie   Permanent     A (required)       I               Max-Age I, sliding with activity, never past A
//	Header   -             -                  -               value with no expiry
//	Header   -             A                  -               binding ends A after it was made
//	Header   -             A or none          I               expires I after the last refresh, never past A
//
// A session cookie carries no expiry for an idle timeout to slide, so
// IdleTimeout with a Session cookie is an error: use Permanent. Times are
// whole seconds, as a cookie's Max-Age is.
package gateway
