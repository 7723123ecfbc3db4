package event

import (
	"net/http"
	"strconv"
	"time"
)

// Kind says what an [Event] reports.
type Kind uint8

const (
	// Pick: the picker placed a request that was not bound (Backend).
	Pick Kind = iota + 1
	// BoundHit: a request went to the backend it was bound to (Backend).
	BoundHit
	// Bind: the policy bound the client to Backend on the response (a new
	// binding, or one renewed).
	Bind
	// Redispatch: a request bound to Prev, which no longer serves its
	// clients, was placed on Backend instead.
	Redispatch
	// Rejected: the request carried a binding the policy would not honour;
	// Reason says why.
	Rejected
	// Retry: Prev failed the request before answering it (it could not
	// be reached, or the connection failed), and the request was sent on
	// to Backend.
	Retry
	// StateChange: Backend's state went from From to To.
	StateChange
	// DrainStart: Backend began to drain.
	DrainStart
	// DrainEnd: Backend's drain ended; Reason says how.
	DrainEnd
	// Panic: user-supplied code (a policy, a picker, or one of the
	// handler's hooks) panicked while serving a request; Panic holds the
	// recovered value.
	Panic
	// Failure: a request to Backend failed, as reported for passive health
	// checking; Reason says how.
	Failure
	// Done: a request is over. Backend is the last backend it was sent to
	// (empty if none could take it); Request, Placement, Retries, Status,
	// Header and Elapsed say how it went, and Reason why the policy
	// refused the request's binding, if it did.
	Done
)

var kindNames = [...]string{
	Pick:        "pick",
	BoundHit:    "bound_hit",
	Bind:        "bind",
	Redispatch:  "redispatch",
	Rejected:    "rejected",
	Retry:       "retry",
	StateChange: "state_change",
	DrainStart:  "drain_start",
	DrainEnd:    "drain_end",
	Panic:       "panic",
	Failure:     "failure",
	Done:        "done",
}

// String returns the kind's name in snake case, as metrics label it
// ("pick", "bound_hit", ...), or "unknown" for a value that is not a Kind.
func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return "unknown"
}

// State is a backend's health as the balancer sees it. Package backend
// gives it, and its values, the names backend.State, backend.Healthy,
// backend.Unhealthy and backend.Draining.
type State int32

const (
	// Healthy backends take new clients and the clients bound to them.
	Healthy State = iota
	// Unhealthy backends take no traffic; their clients are re-routed. A
	// half-open backend (see backend.Ejection) is Unhealthy: it takes a
	// single trial request, and is Healthy again only once a request
	// succeeds.
	Unhealthy
	// Draining backends keep serving the clients bound to them but take no
	// new ones.
	Draining
)

// String returns "healthy", "unhealthy" or "draining", or "State(n)" for a
// value that is not a State.
func (s State) String() string {
	switch s {
	case Healthy:
		return "healthy"
	case Unhealthy:
		return "unhealthy"
	case Draining:
		return "draining"
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// Reason qualifies a [Rejected], [DrainEnd] or [Failure] event. The zero
// Reason is none.
type Reason uint8

const (
	// Malformed, Forged, Expired and Unknown say why a binding was
	// Rejected, as the policy's status of the same name: it could not be
	// decoded; it failed authentication; it was authentic but its lifetime
	// is over; it was authentic but names no member of the set. The
	// sticky handler reports a request whose binding is Unknown as a
	// Redispatch, not as Rejected: Unknown is for other emitters.
	Malformed Reason = iota + 1
	Forged
	Expired
	Unknown

	// DrainIdle, DrainTimeout, DrainUndone and DrainRemoved say how a
	// drain ended (DrainEnd): the backend was idle for the set's drain
	// idle time and left the set; the drain's timeout passed and it left
	// the set; the drain was undone (the backend was set healthy again);
	// the backend was removed by other means.
	DrainIdle
	DrainTimeout
	DrainUndone
	DrainRemoved

	// TransportFailure and StatusFailure say how a request failed
	// (Failure): the backend could not be reached or did not answer; it
	// answered with a status the handler counts as a failure.
	TransportFailure
	StatusFailure
)

var reasonNames = [...]string{
	Malformed:        "malformed",
	Forged:           "forged",
	Expired:          "expired",
	Unknown:          "unknown",
	DrainIdle:        "idle",
	DrainTimeout:     "timeout",
	DrainUndone:      "undone",
	DrainRemoved:     "removed",
	TransportFailure: "transport",
	StatusFailure:    "status",
}

// String returns the reason as metrics label it: "malformed", "forged",
// "expired", "unknown", "idle", "timeout", "undone", "removed",
// "transport" or "status"; "" for the zero Reason, and "other" for a value
// that is not a Reason.
func (r Reason) String() string {
	if r == 0 {
		return ""
	}
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return "other"
}

// Placement says how a request found its backend, for a [Done] event.
type Placement uint8

const (
	// Bound: the request went to the backend its binding names.
	Bound Placement = iota + 1
	// Picked: the request carried no binding the policy honoured, and the
	// picker placed it.
	Picked
	// Keyed: the request carried an affinity key, and the key picker
	// placed it.
	Keyed
	// Redispatched: the request's binding named a backend that no longer
	// serves its clients, and it was placed anew.
	Redispatched
	// Unplaced: no backend could take the request.
	Unplaced
)

var placementNames = [...]string{
	Bound:        "bound",
	Picked:       "picked",
	Keyed:        "keyed",
	Redispatched: "redispatched",
	Unplaced:     "unplaced",
}

// String returns the placement's name ("bound", "picked", "keyed",
// "redispatched", "unplaced"), "" for the zero Placement, or "other".
func (p Placement) String() string {
	if p == 0 {
		return ""
	}
	if int(p) < len(placementNames) {
		return placementNames[p]
	}
	return "other"
}

// Event is one thing that happened to a pool or to a request on its way
// through a balancer. Which fields are set depends on Kind; the others are
// zero.
type Event struct {
	Kind Kind
	// Backend is the ID of the backend concerned: the one a request went
	// to (Pick, BoundHit, Bind, Redispatch, Retry, Failure), or the one
	// whose state changed or that drained (StateChange, DrainStart,
	// DrainEnd). Empty for Rejected and Panic.
	Backend string
	// Prev is the ID of the backend a request left: for Redispatch, the
	// backend it was bound to, empty if that is no longer a member of the
	// set; for Retry, the one that failed the request.
	Prev string
	// From and To are the states of a StateChange.
	From, To State
	// Reason qualifies Rejected, DrainEnd and Failure.
	Reason Reason
	// Panic is the value recovered from the panic of a Panic event.
	Panic any

	// Request is the client's request, for the events of a request (Pick,
	// BoundHit, Bind, Redispatch, Rejected, Retry, Failure, Panic, Done);
	// its Context carries the embedder's values, such as a trace's span.
	// Nil for a set's events. Observers must not modify it, nor keep it
	// past Observe.
	Request *http.Request
	// Placement, Retries, Status, Header and Elapsed describe a Done
	// request: how it found its backend; how many other backends it was
	// sent to after the first failed it; the status of the response the
	// client was sent (0 if none was: the client left first); how long
	// from the handler's receiving the request to the backend's response
	// header (0 if none came); and how long until the response was
	// written whole.
	Placement Placement
	Retries   int
	Status    int
	Header    time.Duration
	Elapsed   time.Duration
}

// Observer receives events. Observe is called synchronously, from request
// goroutines and from a set's own, concurrently, and a set calls it with
// its lock held: it must be safe for concurrent use, quick, and must not
// call back into the set. Events are passed by value and allocate nothing;
// with no observer configured, none is built.
type Observer interface {
	Observe(Event)
}

// ObserverFunc adapts a function to an [Observer].
type ObserverFunc func(Event)

// Observe calls f(e).
func (f ObserverFunc) Observe(e Event) { f(e) }
