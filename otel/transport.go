package otel

import (
	"net"
	"net/http"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/affinitylb/affinity/sticky"
)

// Transport returns a round tripper, for sticky.WithTransport, that sends
// each request with rt in a client span of its own, a child of the span
// in the request's context, writes that span's context into the
// request's header with the Telemetry's propagator, and records the
// attempt's duration on the http.client.request.duration histogram. The
// sticky handler calls it once per attempt, so each backend a request is
// retried on has its own span and its own point. A nil rt is
// sticky.DefaultTransport().
//
// The span is named for the method. The span and the point carry the
// HTTP client semantic conventions' http.request.method, server.address
// and server.port, and http.response.status_code, or error.type when rt
// returned an error or the status is 400 or more; such a span's status
// is Error. For a request [Telemetry.Handler] tracks, they also carry
// [BackendIDKey], the backend the attempt is for, and a retry's span
// http.request.resend_count, how many backends were tried before it.
// The span ends, and the duration is measured, when RoundTrip returns:
// at the response header, or the error. The round tripper passes the
// request's context on, as sticky.WithTransport asks for the handler's
// retries to stay its own.
func (t *Telemetry) Transport(rt http.RoundTripper) http.RoundTripper {
	if rt == nil {
		rt = sticky.DefaultTransport()
	}
	return &transport{rt: rt, tracer: t.tracer, propagator: t.propagator, duration: t.duration}
}

type transport struct {
	rt         http.RoundTripper
	tracer     trace.Tracer
	propagator propagation.TextMapPropagator
	duration   metric.Float64Histogram
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	method := methodAttr(req.Method)
	attrs := make([]attribute.KeyValue, 0, 6)
	attrs = append(attrs, method)
	host, port := hostPort(req)
	if host != "" {
		attrs = append(attrs, semconv.ServerAddress(host))
	}
	if port > 0 {
		attrs = append(attrs, semconv.ServerPort(port))
	}
	retries := 0
	if d := sticky.DecisionOf(req); d != nil && d.Backend != "" {
		attrs = append(attrs, BackendIDKey.String(d.Backend))
		retries = d.Retries
	}
	name := method.Value.AsString()
	if name == "_OTHER" {
		name = "HTTP"
	}
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...)}
	if retries > 0 {
		opts = append(opts, trace.WithAttributes(semconv.HTTPRequestResendCount(retries)))
	}
	ctx, span := t.tracer.Start(req.Context(), name, opts...)
	defer span.End()

	out := req.Clone(ctx)
	t.propagator.Inject(ctx, propagation.HeaderCarrier(out.Header))
	resp, err := t.rt.RoundTrip(out)
	var result []attribute.KeyValue
	switch {
	case err != nil:
		result = []attribute.KeyValue{semconv.ErrorType(err)}
		span.SetStatus(codes.Error, err.Error())
	case resp.StatusCode >= 400:
		result = []attribute.KeyValue{semconv.HTTPResponseStatusCode(resp.StatusCode),
			semconv.ErrorTypeKey.String(strconv.Itoa(resp.StatusCode))}
		span.SetStatus(codes.Error, "")
	default:
		result = []attribute.KeyValue{semconv.HTTPResponseStatusCode(resp.StatusCode)}
	}
	span.SetAttributes(result...)
	t.duration.Record(ctx, time.Since(start).Seconds(), metric.WithAttributes(append(attrs, result...)...))
	return resp, err
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
