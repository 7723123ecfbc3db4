package otel

import (
	"context"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/affinitylb/affinity/event"
)

// Observe records, for each Done event of a request that reached a
// backend, the request's duration in seconds (the event's Elapsed: from
// the handler's receiving it to the response's being written whole,
// retries included) on the http.client.request.duration histogram, with
// the attributes [BackendIDKey] (the last backend it was sent to),
// http.request.method, http.response.status_code (when a response was
// sent) and error.type (the status, when it is 400 or more). A request no
// backend could take is not recorded: it is no client request. Other
// events are ignored. Give the Telemetry to sticky.WithObserver, alone or
// beside other observers; Observe is safe for concurrent use.
func (t *Telemetry) Observe(e event.Event) {
	if e.Kind != event.Done || e.Backend == "" {
		return
	}
	method := otherMethod
	if e.Request != nil {
		method = methodAttr(e.Request.Method)
	}
	attrs := make([]attribute.KeyValue, 0, 4)
	attrs = append(attrs, BackendIDKey.String(e.Backend), method)
	if e.Status != 0 {
		attrs = append(attrs, semconv.HTTPResponseStatusCode(e.Status))
	}
	if e.Status >= 400 {
		attrs = append(attrs, semconv.ErrorTypeKey.String(strconv.Itoa(e.Status)))
	}
	ctx := contextOf(e)
	t.duration.Record(ctx, e.Elapsed.Seconds(), metric.WithAttributes(attrs...))
}

// otherMethod is the method of a Done event with no request.
var otherMethod = semconv.HTTPRequestMethodOther

// contextOf is the context of e's request, for exemplars; Background if
// none.
func contextOf(e event.Event) context.Context {
	if e.Request != nil {
		return e.Request.Context()
	}
	return context.Background()
}
