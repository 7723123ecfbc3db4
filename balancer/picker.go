package balancer

import (
	"errors"
	"net/http"

	"github.com/affinitylb/affinity/backend"
)

// ErrNoBackend is returned by a [Picker] when no backend can take the
// request.
var ErrNoBackend = errors.New("balancer: no backend available")

// Info is what a [Picker] knows about the request it places.
type Info struct {
	// Request is the client's request. Pickers must not modify it.
	Request *http.Request
	// Snapshot is the membership the request was routed with; pick among
	// its Routable backends.
	Snapshot *backend.Snapshot
	// Key is the hash of the request's affinity key, valid when Keyed is
	// true. Requests with the same key should go to the same backend while
	// it serves them; hashing pickers such as [ConsistentHash] see to it.
	Key uint64
	// Keyed reports whether the request carries an affinity key.
	Keyed bool
}

// Picker chooses a backend for a request that is not bound to one.
//
// Pick is called concurrently from many goroutines and should neither block
// nor allocate. It returns one of info.Snapshot.Routable(), or ErrNoBackend
// when that is empty. Load accounting is the caller's: the handler counts
// the request in flight on the returned backend until it is done, so
// [backend.Snapshot.Load] is live. A load-aware picker weighs loads with
// info.Snapshot.Load(b): the requests in flight plus the slow-start
// allowance of a backend that has just joined or recovered.
//
// The sticky handler has two pickers: one for requests that carry an
// affinity key (info.Keyed), a [ConsistentHash] unless replaced, and one
// for the others, which include every client not bound yet. Each sees only
// its own kind of request. A key picker may also return the key's own
// backend while it is draining: a draining backend keeps the keys it holds.
type Picker interface {
	Pick(info Info) (*backend.Backend, error)
}

// PickerFunc adapts an ordinary function to a [Picker].
type PickerFunc func(info Info) (*backend.Backend, error)

// Pick calls f(info).
func (f PickerFunc) Pick(info Info) (*backend.Backend, error) { return f(info) }
