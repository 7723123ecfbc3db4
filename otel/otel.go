package otel

import (
	"errors"
	"fmt"

	gotel "go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName is the instrumentation scope of the tracer and the meter a
// Telemetry uses.
const ScopeName = "github.com/affinitylb/affinity/otel"

// Option configures a [Telemetry] made by [New].
type Option func(*options)

type options struct {
	tracerProvider trace.TracerProvider
	meterProvider  metric.MeterProvider
	propagator     propagation.TextMapPropagator
	nilTracer      bool
	nilMeter       bool
	nilPropagator  bool
}

// WithTracerProvider sets the provider of the tracer that starts client
// spans. The default is the global one, otel.GetTracerProvider(), as it is
// when New is called. tp must not be nil.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(o *options) { o.tracerProvider, o.nilTracer = tp, tp == nil }
}

// WithMeterProvider sets the provider of the meter that records request
// durations. The default is the global one, otel.GetMeterProvider(), as it
// is when New is called. mp must not be nil.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(o *options) { o.meterProvider, o.nilMeter = mp, mp == nil }
}

// WithPropagator sets the propagator that writes a client span's context
// into the request sent to a backend. The default is the global one,
// otel.GetTextMapPropagator(), as it is when New is called. p must not be
// nil.
func WithPropagator(p propagation.TextMapPropagator) Option {
	return func(o *options) { o.propagator, o.nilPropagator = p, p == nil }
}

// Telemetry holds the tracer, meter and propagator its Handler and
// Transport use. It is safe for concurrent use.
type Telemetry struct {
	tracer     trace.Tracer
	propagator propagation.TextMapPropagator
	duration   metric.Float64Histogram
}

// New returns a Telemetry configured by opts. It reports every invalid
// option together.
func New(opts ...Option) (*Telemetry, error) {
	o := options{
		tracerProvider: gotel.GetTracerProvider(),
		meterProvider:  gotel.GetMeterProvider(),
		propagator:     gotel.GetTextMapPropagator(),
	}
	for _, opt := range opts {
		opt(&o)
	}
	var errs []error
	if o.nilTracer {
		errs = append(errs, errors.New("otel: WithTracerProvider(nil): must not be nil"))
	}
	if o.nilMeter {
		errs = append(errs, errors.New("otel: WithMeterProvider(nil): must not be nil"))
	}
	if o.nilPropagator {
		errs = append(errs, errors.New("otel: WithPropagator(nil): must not be nil"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	duration, err := o.meterProvider.Meter(ScopeName).Float64Histogram(
		"http.client.request.duration",
		metric.WithUnit("s"),
		metric.WithDescription("Duration of HTTP client requests."),
		metric.WithExplicitBucketBoundaries(durationBuckets...),
	)
	if err != nil {
		return nil, fmt.Errorf("otel: http.client.request.duration: %w", err)
	}
	return &Telemetry{
		tracer:     o.tracerProvider.Tracer(ScopeName),
		propagator: o.propagator,
		duration:   duration,
	}, nil
}

// durationBuckets are the bucket boundaries, in seconds, the HTTP
// semantic conventions advise for http.client.request.duration.
var durationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}
