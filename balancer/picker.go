package balancer

import (
	"errors"
	"net/http"
	"time"

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
	// KeyHash is the hash of the request's affinity key, valid when Keyed
	// is true. Requests with the same key should go to the same backend
	// while it serves them; hashing pickers such as [ConsistentHash] see
	// to it.
	KeyHash uint64
	// Keyed reports whether the request carries an affinity key.
	Keyed bool
	// Tried lists the backends this request was already sent to and that
	// failed it, oldest first, when the handler asks again for a retry;
	// it is empty on a first attempt. A picker should choose another if
	// it can; the handler does not send a request twice to one backend.
	// Pickers must neither modify nor keep it.
	Tried []*backend.Backend
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
// A picker that learns from how its requests went implements [DonePicker]
// as well.
type Picker interface {
	Pick(info Info) (*backend.Backend, error)
}

// PickerFunc adapts an ordinary function to a [Picker].
type PickerFunc func(info Info) (*backend.Backend, error)

// Pick calls f(info).
func (f PickerFunc) Pick(info Info) (*backend.Backend, error) { return f(info) }

// DonePicker is a [Picker] that learns how the requests it placed went,
// as grpc-go's PickResult.Done tells its pickers, for a picker that weighs
// latencies or outcomes. The sticky handler calls Done exactly once for
// each placement it made with the backend Pick returned: when that attempt
// fails, before any retry is placed, or else when the response is over.
// Requests it did not place (bound ones, trials of a half-open backend,
// unbound HTTP/2 requests given the backend picked for their client's
// first, a retry the picker's choice could not take) are not reported,
// nor is a pick whose backend left the set before the request could be
// counted on it: the handler asks again, and reports the pick it uses.
//
// Done is called concurrently, on the request's goroutine: it should
// neither block nor allocate. The handler finds out whether a picker
// implements DonePicker once, when it is built.
type DonePicker interface {
	Picker
	Done(DoneInfo)
}

// DoneInfo is how one placement of a request went, as [DonePicker.Done]
// learns it.
type DoneInfo struct {
	// Request is the client's request. Done must not modify or keep it.
	Request *http.Request
	// Backend is the backend Pick returned, that the request was sent to.
	Backend *backend.Backend
	// Err is why the attempt failed before the backend answered (it could
	// not be reached, failed, did not answer in time, or the client left
	// or its body could not be read); nil if the backend answered.
	Err error
	// StatusCode is the status of the backend's answer; 0 when Err is set.
	StatusCode int
	// Latency is the time from sending the request to the backend to its
	// response header, or to the error.
	Latency time.Duration
}
