package otel

import (
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/affinitylb/affinity/event"
	"github.com/affinitylb/affinity/sticky"
)

// The attributes Handler sets on the server span.
const (
	// BackendIDKey is the ID of the last backend the request was sent to;
	// not set when no backend could take it.
	BackendIDKey = attribute.Key("affinity.backend.id")
	// BindingKey is the status of the binding the request carried:
	// "valid" (the policy honoured it: the request went to its backend,
	// or was re-placed because that backend no longer serves its
	// clients), "keyed" (it carried an affinity key the key picker placed
	// it by), "none" (it carried none), or why the policy refused it:
	// "malformed", "forged", "expired" or "unknown" (event.Reason's
	// names). For a request no backend could take it is set only if the
	// policy refused the binding: the handler does not say which of the
	// others it was.
	BindingKey = attribute.Key("affinity.binding")
	// PlacementKey is how the request found its backend: "bound",
	// "picked", "keyed", "redispatched" or "unplaced" (event.Placement's
	// names).
	PlacementKey = attribute.Key("affinity.placement")
	// RetriesKey is how many other backends the request was sent to after
	// the first failed it.
	RetriesKey = attribute.Key("affinity.retries")
)

// Handler returns a handler that serves each request with h, a sticky
// handler (or one that passes the request on to one), tracking it (see
// sticky.Track) so that [Telemetry.Transport] can say which backend each
// attempt is for, and then sets [BackendIDKey], [BindingKey],
// [PlacementKey] and [RetriesKey] on the span in the request's context if
// that span is recording. It starts no span: it belongs inside the
// embedder's server instrumentation, such as otelhttp.NewHandler. A
// request the sticky handler stopped serving before placing it (a panic
// in the policy) gets no attributes.
func (t *Telemetry) Handler(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r, d := sticky.Track(r)
		h.ServeHTTP(w, r)
		span := trace.SpanFromContext(r.Context())
		if d.Placement == 0 || !span.IsRecording() {
			return
		}
		attrs := make([]attribute.KeyValue, 0, 4)
		if d.Backend != "" {
			attrs = append(attrs, BackendIDKey.String(d.Backend))
		}
		if status := bindingStatus(d); status != "" {
			attrs = append(attrs, BindingKey.String(status))
		}
		attrs = append(attrs,
			PlacementKey.String(d.Placement.String()),
			RetriesKey.Int(d.Retries),
		)
		span.SetAttributes(attrs...)
	})
}

// bindingStatus is d's value of BindingKey; "" for none.
func bindingStatus(d *sticky.Decision) string {
	if d.Binding != 0 {
		return d.Binding.String()
	}
	switch d.Placement {
	case event.Bound, event.Redispatched:
		return "valid"
	case event.Keyed:
		return "keyed"
	case event.Picked:
		return "none"
	}
	return ""
}
