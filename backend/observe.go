package backend

// EventKind says what an [Event] reports.
type EventKind uint8

const (
	// EventPick: the picker placed a request that was not bound (Backend).
	EventPick EventKind = iota + 1
	// EventBoundHit: a request went to the backend it was bound to.
	EventBoundHit
	// EventBind: the policy bound the client to Backend on the response
	// (a new binding, or one renewed).
	EventBind
	// EventRedispatch: a request bound to Prev, which no longer serves its
	// clients, was placed on Backend instead.
	EventRedispatch
	// EventRejected: the request carried a binding the policy would not
	// honour; Reason says why (malformed, forged, expired, unknown).
	EventRejected
	// EventRetry: Prev could not be reached, and the request was sent on to
	// Backend.
	EventRetry
	// EventStateChange: Backend's state went from From to To.
	EventStateChange
	// EventDrainStart: Backend began to drain.
	EventDrainStart
	// EventDrainEnd: Backend's drain ended; Reason is "idle", "timeout",
	// "undone" or "removed".
	EventDrainEnd
	// EventPanic: a user-supplied policy or picker panicked while serving a
	// request; Reason holds the panic value, formatted.
	EventPanic
	// EventFailure: a request to Backend failed, as reported for passive
	// health checking; Reason is "transport" (it could not be reached or
	// did not answer) or "status" (an answer the handler counts as a
	// failure).
	EventFailure
)

var eventNames = [...]string{
	EventPick:        "pick",
	EventBoundHit:    "bound_hit",
	EventBind:        "bind",
	EventRedispatch:  "redispatch",
	EventRejected:    "rejected",
	EventRetry:       "retry",
	EventStateChange: "state_change",
	EventDrainStart:  "drain_start",
	EventDrainEnd:    "drain_end",
	EventPanic:       "panic",
	EventFailure:     "failure",
}

// String returns the kind's name in snake case, as metrics label it.
func (k EventKind) String() string {
	if int(k) < len(eventNames) && eventNames[k] != "" {
		return eventNames[k]
	}
	return "unknown"
}

// Event is one thing that happened to a pool or to a request on its way
// through a balancer. Which fields are set depends on Kind.
type Event struct {
	Kind EventKind
	// Backend is the backend concerned: the one a request went to, or the
	// one whose state changed. Nil for EventRejected, and for EventPanic
	// before a backend was chosen.
	Backend *Backend
	// Prev is the backend a request left: for EventRedispatch and
	// EventRetry.
	Prev *Backend
	// From and To are the states of an EventStateChange.
	From, To State
	// Reason qualifies EventRejected, EventDrainEnd, EventPanic and
	// EventFailure.
	Reason string
}

// Observer receives events. Observe is called synchronously, from request
// goroutines and from the set's own, concurrently: it must be safe for
// concurrent use, quick, and must not call back into the set. Events are
// passed by value and allocate nothing; with no observer configured, none
// is built.
type Observer interface {
	Observe(Event)
}

// ObserverFunc adapts a function to an [Observer].
type ObserverFunc func(Event)

// Observe calls f(e).
func (f ObserverFunc) Observe(e Event) { f(e) }

// WithObserver sets the observer that receives the set's events: state
// changes and drains. Request events come from the handler, which has an
// option of its own; the same observer may serve both.
func WithObserver(o Observer) Option {
	return func(s *Set) error { s.observer = o; return nil }
}

// emit hands e to the set's observer, if it has one.
func (s *Set) emit(e Event) {
	if s.observer != nil {
		s.observer.Observe(e)
	}
}
