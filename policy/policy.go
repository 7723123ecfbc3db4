package policy

import (
	"net/http"

	"github.com/affinitylb/affinity/backend"
)

// Status says what a [Policy] found when it read a request's binding.
type Status uint8

const (
	// None: the request carries no binding.
	None Status = iota
	// Valid: the request is bound to Binding.ID.
	Valid
	// Malformed: a binding was present but could not be decoded.
	Malformed
	// Forged: the binding failed authentication (bad MAC or unknown key).
	Forged
	// Expired: the binding was authentic but its lifetime is over.
	Expired
	// Unknown: the binding was authentic but names no member of the set:
	// its backend has left it. The handler places the client anew, strict
	// bindings or not, and reports a redispatch.
	Unknown
	// Keyed: the request names no backend but carries an affinity key,
	// whose hash (Binding.KeyHash) a hashing picker maps to one.
	Keyed
)

// String returns the status's name in lower case.
func (s Status) String() string {
	switch s {
	case None:
		return "none"
	case Valid:
		return "valid"
	case Malformed:
		return "malformed"
	case Forged:
		return "forged"
	case Expired:
		return "expired"
	case Unknown:
		return "unknown"
	case Keyed:
		return "keyed"
	}
	return "invalid"
}

// Binding is what a [Policy] read from a request.
//
// A binding returned by a [Chain] also records, unexported, which member
// produced it, for the Chain's Save: hand Save the Binding Lookup
// returned, whole, and compare Bindings by their fields rather than with
// ==. A Binding rebuilt field by field records no member, and a Chain's
// Save gives it to all its members, which is harmless (see [Chain]).
type Binding struct {
	// ID is the backend the request is bound to; set only when Status is
	// Valid.
	ID string
	// Status says whether a binding was found and, if not, why.
	Status Status
	// Refresh asks for the binding to be written again on the response even
	// if the request is served by ID: it is close to expiry (sliding
	// expiry) or signed with an old key.
	Refresh bool
	// KeyHash is the 64-bit hash of the request's affinity key (a header,
	// a query parameter, the client's address...); set only when Status is
	// Keyed. Requests with the same key have the same KeyHash, so a hashing
	// picker sends them to the same backend. The built-in policies hash
	// with [HashKey].
	KeyHash uint64
	// Group is the group ([backend.Config.Group]) the binding names: the
	// group of the backend it was made for, which the handler re-places
	// the client within when that backend no longer serves it. Policies
	// that record it set it whenever the binding is authentic (Valid,
	// Unknown, Expired), even if its backend has left the set; others, key
	// policies among them, leave it "", the default group.
	Group string
	// Seed tells apart the clients bound to one backend, and is the same
	// in every request of one client while its binding lasts. When the
	// backend no longer serves its clients, the handler hashes Seed, with
	// the binding and the client's address, to place each anew, so that
	// the requests one client sends together agree on its new backend
	// while the clients of the backend spread over the others, those
	// behind one address too. The cookie policies set it, from the time
	// the binding was made, when it is Valid or Unknown; 0, as other
	// policies leave it, spreads clients by their addresses alone.
	Seed uint64

	from chainPath // which Chain members produced the binding; see Chain
}

// Policy binds clients to backends. Lookup reads a request's binding; Save
// writes the binding on the response. Both are called concurrently from
// many goroutines. A policy never fails a request: anything it cannot read
// or trust is reported as a Status other than Valid and treated as absent.
type Policy interface {
	// Lookup returns the binding carried by r, resolved against the
	// membership s.
	Lookup(r *http.Request, s *backend.Snapshot) Binding
	// Save is called once the backend b has answered the client's request
	// r with resp, before resp's header is sent to the client. prev is what
	// Lookup returned for r. Save sets, refreshes or deletes the binding by
	// editing resp.Header; it must not read resp.Body.
	Save(r *http.Request, resp *http.Response, b *backend.Backend, prev Binding)
}

// Stripper is implemented by policies whose binding travels in the request
// itself, a cookie of the balancer's own, and that can remove it from the
// request before the request is forwarded, so that the backend never sees
// it (HAProxy's "indirect" cookies). The handler calls Strip on the
// outgoing request's header when stripping is on, as it is by default. The
// application's own cookies must be left as they are.
type Stripper interface {
	Strip(h http.Header)
}
