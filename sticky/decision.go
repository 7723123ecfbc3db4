package sticky

import (
	"context"
	"net/http"
	"time"

	"github.com/affinitylb/affinity/event"
	"github.com/affinitylb/affinity/policy"
)

// Decision is what a [Handler] did with one request, for a middleware
// around it: see [Track]. When ServeHTTP returns, its fields are those of
// the request's [event.Done] event. While the handler sends the request
// to a backend, Backend is that backend, Retries counts the backends
// tried before it, and Placement and Binding are set: a round tripper
// given to [WithTransport], or a hook, finds them with [DecisionOf] from
// the outgoing request, and so learns which backend each attempt is for.
// Status, Header and Elapsed are zero until ServeHTTP returns.
type Decision struct {
	// Backend is the ID of the last backend the request was sent to;
	// empty if none could take it.
	Backend string
	// Placement says how the request found its backend; zero if the
	// handler stopped before placing it (a panic in the policy).
	Placement event.Placement
	// Binding says why the policy refused the request's binding
	// (event.Malformed, Forged, Expired or Unknown); zero if it did not.
	Binding event.Reason
	// Retries is how many other backends the request was sent to after
	// the first failed it.
	Retries int
	// Status is the status of the response the client was sent; 0 if
	// none was (the client left first).
	Status int
	// Header is the time from the handler's receiving the request to the
	// backend's response header; 0 if none came. Elapsed is the time
	// until the response was written whole.
	Header, Elapsed time.Duration
}

// decisionKey is the context key of a tracked request's *Decision.
type decisionKey struct{}

// Track returns r with a context that asks the handler for its decision,
// and the Decision the handler fills in before its ServeHTTP returns. A
// middleware around the handler calls it, passes the returned request to
// ServeHTTP, and reads the Decision after; it is written only by the
// goroutine serving the request. A request already tracked is returned as
// it is, with its Decision. Track costs a context and a copy of the
// request; an untracked request costs the handler one context lookup.
func Track(r *http.Request) (*http.Request, *Decision) {
	if d := trackedBy(r); d != nil {
		return r, d
	}
	d := &Decision{}
	return r.WithContext(context.WithValue(r.Context(), decisionKey{}, d)), d
}

// DecisionOf returns the Decision of a request [Track] tracks: r is the
// tracked request or one made from it with its context, such as the
// request the handler sends to a backend (unless a rewrite replaced its
// context). It returns nil for a request no one tracks. The Decision is
// written only by the goroutine serving the request, which is the one
// that calls a round tripper or a hook.
func DecisionOf(r *http.Request) *Decision {
	return trackedBy(r)
}

// trackedBy returns the Decision Track put in r's context, or nil.
func trackedBy(r *http.Request) *Decision {
	d, _ := r.Context().Value(decisionKey{}).(*Decision)
	return d
}

// facts is what ServeHTTP gathers of a request that is tracked (see
// Track) or observed, for its Done event; untouched otherwise.
type facts struct {
	Decision
	dec   *Decision // the tracker's; nil: none
	start time.Time // when the handler received the request
	on    bool      // tracked or observed
}

// report ends a tracked or observed request: it fills in the tracker's
// Decision and hands the observer the request's Done event.
func (h *Handler) report(r *http.Request, f *facts) {
	f.Elapsed = time.Since(f.start)
	if f.dec != nil {
		*f.dec = f.Decision
	}
	if h.observer != nil {
		h.observer.Observe(event.Event{Kind: event.Done, Request: r, Backend: f.Backend, Reason: f.Binding,
			Placement: f.Placement, Retries: f.Retries, Status: f.Status, Header: f.Header, Elapsed: f.Elapsed})
	}
}

// reasonOf returns the Reason of a binding the policy refused with s, or
// zero.
func reasonOf(s policy.Status) event.Reason {
	switch s {
	case policy.Malformed:
		return event.Malformed
	case policy.Forged:
		return event.Forged
	case policy.Expired:
		return event.Expired
	case policy.Unknown:
		return event.Unknown
	}
	return 0
}
