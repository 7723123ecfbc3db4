package otel

import (
	"net"
	"net/http"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/affinitylb/affinity/sticky"
)

// Transport returns a round tripper, for sticky.WithTransport, that sends
// each request with rt in a client span of its own, a child of the span
// in the request's context, and writes that span's context into the
// request's header with the Telemetry's propagator. The sticky handler
// calls it once per attempt, so each backend a request is retried on has
// its own span. A nil rt is sticky.DefaultTransport().
//
// The span is named for the method and carries the HTTP client semantic
// conventions' http.request.method, server.address and server.port, and
// http.response.status_code, or error.type when rt returned an error or
// the status is 400 or more; such a span's status is Error. The span ends
// when RoundTrip returns: it times the attempt to the response header.
// The round tripper passes the request's context on, as sticky.WithTransport
// asks for the handler's retries to stay its own.
func (t *Telemetry) Transport(rt http.RoundTripper) http.RoundTripper {
	if rt == nil {
		rt = sticky.DefaultTransport()
	}
	return &transport{rt: rt, tracer: t.tracer, propagator: t.propagator}
}

type transport struct {
	rt         http.RoundTripper
	tracer     trace.Tracer
	propagator propagation.TextMapPropagator
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	method := methodAttr(req.Method)
	attrs := []attribute.KeyValue{method}
	host, port := hostPort(req)
	if host != "" {
		attrs = append(attrs, semconv.ServerAddress(host))
	}
	if port > 0 {
		attrs = append(attrs, semconv.ServerPort(port))
	}
	name := method.Value.AsString()
	if name == "_OTHER" {
		name = "HTTP"
	}
	ctx, span := t.tracer.Start(req.Context(), name,
		trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	defer span.End()

	out := req.Clone(ctx)
	t.propagator.Inject(ctx, propagation.HeaderCarrier(out.Header))
	resp, err := t.rt.RoundTrip(out)
	if err != nil {
		span.SetAttributes(semconv.ErrorType(err))
		span.SetStatus(codes.Error, err.Error())
		return resp, err
	}
	span.SetAttributes(semconv.HTTPResponseStatusCode(resp.StatusCode))
	if resp.StatusCode >= 400 {
		span.SetAttributes(semconv.ErrorTypeKey.String(strconv.Itoa(resp.StatusCode)))
		span.SetStatus(codes.Error, "")
	}
	return resp, nil
}

// methodAttr is the http.request.method of method: itself if it is one the
// semantic conventions know, "_OTHER" otherwise.
func methodAttr(method string) attribute.KeyValue {
	switch method {
	case "":
		return semconv.HTTPRequestMethodGet
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return semconv.HTTPRequestMethodKey.String(method)
	}
	return semconv.HTTPRequestMethodOther
}

// hostPort is the host and port req is sent to, the port defaulted from
// the scheme; 0 if unknown.
func hostPort(req *http.Request) (string, int) {
	host := req.URL.Host
	h, p, err := net.SplitHostPort(host)
	if err != nil {
		h, p = host, ""
	}
	if port, err := strconv.Atoi(p); err == nil {
		return h, port
	}
	switch req.URL.Scheme {
	case "http", "h2c":
		return h, 80
	case "https":
		return h, 443
	}
	return h, 0
}
