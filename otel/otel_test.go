package otel_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/cookie"
	affotel "github.com/affinitylb/affinity/otel"
	"github.com/affinitylb/affinity/policy"
	"github.com/affinitylb/affinity/sticky"
)

// app starts a backend on 127.0.0.1 that answers with its name, and
// fails the test if a request reaches it without a traceparent header.
func app(t *testing.T, name string) backend.Config {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		assert.NotEmpty(t, r.Header.Get("Traceparent"), "%s: traceparent", name)
		_, _ = io.WriteString(w, name)
	}))
	t.Cleanup(srv.Close)
	return backend.Config{ID: name, URL: srv.URL}
}

// unreachable returns a backend whose address nothing listens on.
func unreachable(t *testing.T, name string) backend.Config {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return backend.Config{ID: name, URL: "http://" + addr}
}

// rig is a sticky handler under otelhttp's server handler, with the
// Telemetry's handler and transport, recording to memory.
type rig struct {
	url    string
	spans  *tracetest.SpanRecorder
	reader *sdkmetric.ManualReader
}

func newRig(t *testing.T, p policy.Policy, cfgs ...backend.Config) *rig {
	t.Helper()
	return newRigOf(t, false, p, cfgs...)
}

// newRigOf is newRig, without the Telemetry's handler if untracked.
func newRigOf(t *testing.T, untracked bool, p policy.Policy, cfgs ...backend.Config) *rig {
	t.Helper()
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() {
		assert.NoError(t, tp.Shutdown(context.Background()))
		assert.NoError(t, mp.Shutdown(context.Background()))
	})
	tel, err := affotel.New(affotel.WithTracerProvider(tp), affotel.WithMeterProvider(mp),
		affotel.WithPropagator(propagation.TraceContext{}))
	require.NoError(t, err)
	set, err := backend.NewSet(cfgs)
	require.NoError(t, err)
	h, err := sticky.New(set, p, sticky.WithTransport(tel.Transport(sticky.DefaultTransport())))
	require.NoError(t, err)
	var inner http.Handler = h
	if !untracked {
		inner = tel.Handler(h)
	}
	srv := httptest.NewServer(otelhttp.NewHandler(inner, "proxy", otelhttp.WithTracerProvider(tp)))
	t.Cleanup(srv.Close)
	return &rig{url: srv.URL, spans: spans, reader: reader}
}

// get sends a GET to the rig with cookie c, if not nil, and returns the
// body and the binding cookie of the response, if any.
func (g *rig) get(t *testing.T, header http.Header, c *http.Cookie) (string, *http.Cookie) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, g.url, nil)
	require.NoError(t, err)
	for k, v := range header {
		req.Header[k] = v
	}
	if c != nil {
		req.AddCookie(c)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "body %q", body)
	var bound *http.Cookie
	if cs := resp.Cookies(); len(cs) > 0 {
		bound = cs[0]
	}
	return string(body), bound
}

// serverSpans returns the server spans ended so far.
func (g *rig) serverSpans() []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range g.spans.Ended() {
		if s.SpanKind() == trace.SpanKindServer {
			out = append(out, s)
		}
	}
	return out
}

// clientSpans returns the client spans ended so far that are children of
// parent.
func (g *rig) clientSpans(parent sdktrace.ReadOnlySpan) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range g.spans.Ended() {
		if s.SpanKind() == trace.SpanKindClient && s.Parent().SpanID() == parent.SpanContext().SpanID() {
			out = append(out, s)
		}
	}
	return out
}

// attrs returns s's attributes by key.
func attrs(s sdktrace.ReadOnlySpan) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes() {
		m[kv.Key] = kv.Value
	}
	return m
}

func cookiePolicy(t *testing.T) *cookie.Policy {
	t.Helper()
	p, err := cookie.New([][]byte{[]byte("a secret of at least 16 bytes")})
	require.NoError(t, err)
	return p
}

func TestHandlerSetsServerSpanAttributes(t *testing.T) {
	g := newRig(t, cookiePolicy(t), app(t, "app1"), app(t, "app2"))
	first, bound := g.get(t, nil, nil)
	require.NotNil(t, bound, "the first response binds")

	tests := []struct {
		name      string
		cookie    *http.Cookie
		binding   string
		placement string
	}{
		{"no binding", nil, "none", "picked"},
		{"valid binding", bound, "valid", "bound"},
		{"malformed binding", &http.Cookie{Name: bound.Name, Value: "not a binding"}, "malformed", "picked"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g.spans.Reset()
			body, _ := g.get(t, nil, tt.cookie)
			if tt.placement == "bound" {
				require.Equal(t, first, body, "a bound request goes to its backend")
			}
			servers := g.serverSpans()
			require.Len(t, servers, 1)
			a := attrs(servers[0])
			require.Equal(t, body, a[affotel.BackendIDKey].AsString())
			require.Equal(t, tt.binding, a[affotel.BindingKey].AsString())
			require.Equal(t, tt.placement, a[affotel.PlacementKey].AsString())
			require.Equal(t, int64(0), a[affotel.RetriesKey].AsInt64())
			require.Len(t, g.clientSpans(servers[0]), 1)
		})
	}
}

func TestTransportRetryShowsTwoClientSpans(t *testing.T) {
	dead := unreachable(t, "dead")
	g := newRig(t, cookiePolicy(t), dead, app(t, "live"))
	// The picker may place a request on the live backend first; one of a
	// few is placed on the dead one, fails there and is retried.
	var retried sdktrace.ReadOnlySpan
	for i := 0; i < 10 && retried == nil; i++ {
		g.spans.Reset()
		body, _ := g.get(t, nil, nil)
		require.Equal(t, "live", body)
		servers := g.serverSpans()
		require.Len(t, servers, 1)
		if attrs(servers[0])[affotel.RetriesKey].AsInt64() == 1 {
			retried = servers[0]
		}
	}
	require.NotNil(t, retried, "no request was retried")
	require.Equal(t, "live", attrs(retried)[affotel.BackendIDKey].AsString())

	clients := g.clientSpans(retried)
	require.Len(t, clients, 2, "one client span per attempt")
	deadHost, deadPort, err := net.SplitHostPort(dead.URL[len("http://"):])
	require.NoError(t, err)
	var failed, answered sdktrace.ReadOnlySpan
	for _, s := range clients {
		if _, ok := attrs(s)["http.response.status_code"]; ok {
			answered = s
		} else {
			failed = s
		}
	}
	require.NotNil(t, failed, "a span for the failed attempt")
	require.NotNil(t, answered, "a span for the answered attempt")

	fa := attrs(failed)
	require.Equal(t, "dead", fa[affotel.BackendIDKey].AsString(), "the failed attempt's backend")
	_, resent := fa["http.request.resend_count"]
	require.False(t, resent, "the first attempt is no resend")
	require.Equal(t, "GET", failed.Name())
	require.Equal(t, "GET", fa["http.request.method"].AsString())
	require.Equal(t, deadHost, fa["server.address"].AsString())
	require.Equal(t, deadPort, strconv.FormatInt(fa["server.port"].AsInt64(), 10))
	require.NotEmpty(t, fa["error.type"].AsString())
	require.Equal(t, codes.Error, failed.Status().Code)

	aa := attrs(answered)
	require.Equal(t, "live", aa[affotel.BackendIDKey].AsString(), "the answered attempt's backend")
	require.Equal(t, int64(1), aa["http.request.resend_count"].AsInt64())
	require.Equal(t, "GET", aa["http.request.method"].AsString())
	require.Equal(t, "127.0.0.1", aa["server.address"].AsString())
	require.NotEqual(t, deadPort, strconv.FormatInt(aa["server.port"].AsInt64(), 10))
	require.Equal(t, int64(http.StatusOK), aa["http.response.status_code"].AsInt64())
	_, hasError := aa["error.type"]
	require.False(t, hasError)
	require.Equal(t, codes.Unset, answered.Status().Code)
}

// durations returns the points of http.client.request.duration the rig
// recorded.
func (g *rig) durations(t *testing.T) []metricdata.HistogramDataPoint[float64] {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, g.reader.Collect(context.Background(), &rm))
	var points []metricdata.HistogramDataPoint[float64]
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != affotel.ScopeName {
			continue
		}
		for _, m := range sm.Metrics {
			if m.Name == "http.client.request.duration" {
				require.Equal(t, "s", m.Unit)
				h, ok := m.Data.(metricdata.Histogram[float64])
				require.True(t, ok, "a float64 histogram")
				points = append(points, h.DataPoints...)
			}
		}
	}
	return points
}

// slowApp starts a backend on 127.0.0.1 that answers with its name after
// delay.
func slowApp(t *testing.T, name string, delay time.Duration) backend.Config {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(delay)
		_, _ = io.WriteString(w, name)
	}))
	t.Cleanup(srv.Close)
	return backend.Config{ID: name, URL: srv.URL}
}

func TestTransportRecordsDurationPerBackend(t *testing.T) {
	key, err := policy.HeaderKey("X-Key")
	require.NoError(t, err)
	g := newRig(t, key, app(t, "app1"), slowApp(t, "slow", 50*time.Millisecond))
	// Keys hash to backends; a few of them reach both.
	served := map[string]int{}
	for i := 0; i < 64 && len(served) < 2; i++ {
		body, _ := g.get(t, http.Header{"X-Key": {"k" + strconv.Itoa(i)}}, nil)
		served[body]++
	}
	require.Len(t, served, 2, "the keys reached both backends")

	counts := map[string]int{}
	for _, dp := range g.durations(t) {
		id, ok := dp.Attributes.Value(affotel.BackendIDKey)
		require.True(t, ok, "a point without affinity.backend.id")
		method, _ := dp.Attributes.Value("http.request.method")
		require.Equal(t, "GET", method.AsString())
		status, _ := dp.Attributes.Value("http.response.status_code")
		require.Equal(t, int64(http.StatusOK), status.AsInt64())
		host, _ := dp.Attributes.Value("server.address")
		require.Equal(t, "127.0.0.1", host.AsString())
		if id.AsString() == "slow" {
			low, ok := dp.Min.Value()
			require.True(t, ok)
			require.GreaterOrEqual(t, low, 0.05, "the slow backend's attempts took its delay at least")
		}
		counts[id.AsString()] += int(dp.Count)
	}
	require.Equal(t, served, counts, "a point per backend, counting its requests")
}

func TestTransportRecordsEachAttempt(t *testing.T) {
	g := newRig(t, cookiePolicy(t), unreachable(t, "dead"), app(t, "live"))
	// The picker places one of a few requests on the dead backend, where it
	// fails and is retried on the live one.
	requests := 0
	for ; requests < 10; requests++ {
		g.get(t, nil, nil)
		if len(g.durations(t)) == 2 {
			requests++
			break
		}
	}
	points := g.durations(t)
	require.Len(t, points, 2, "a point for the dead backend and one for the live")
	byID := map[string]metricdata.HistogramDataPoint[float64]{}
	for _, dp := range points {
		id, ok := dp.Attributes.Value(affotel.BackendIDKey)
		require.True(t, ok, "a point without affinity.backend.id")
		byID[id.AsString()] = dp
	}
	dead, live := byID["dead"], byID["live"]
	require.Equal(t, uint64(1), dead.Count, "one attempt failed on the dead backend")
	errType, ok := dead.Attributes.Value("error.type")
	require.True(t, ok, "the failed attempt's error.type")
	require.NotEmpty(t, errType.AsString())
	_, ok = dead.Attributes.Value("http.response.status_code")
	require.False(t, ok, "the failed attempt had no response")
	require.Equal(t, uint64(requests), live.Count, "every request was answered by the live backend")
	_, ok = live.Attributes.Value("error.type")
	require.False(t, ok)
}

func TestTransportWithoutHandler(t *testing.T) {
	g := newRigOf(t, true, cookiePolicy(t), app(t, "app1"))
	g.get(t, nil, nil)
	points := g.durations(t)
	require.Len(t, points, 1)
	_, ok := points[0].Attributes.Value(affotel.BackendIDKey)
	require.False(t, ok, "an untracked request's attempt names no backend")
	host, _ := points[0].Attributes.Value("server.address")
	require.Equal(t, "127.0.0.1", host.AsString())
	require.Equal(t, uint64(1), points[0].Count)
	servers := g.serverSpans()
	require.Len(t, servers, 1)
	_, ok = attrs(servers[0])[affotel.BackendIDKey]
	require.False(t, ok, "no attributes without the handler")
	clients := g.clientSpans(servers[0])
	require.Len(t, clients, 1, "the client span without the handler")
	_, ok = attrs(clients[0])[affotel.BackendIDKey]
	require.False(t, ok)
}

func TestNewRejectsNilOptions(t *testing.T) {
	tests := []struct {
		name string
		opts []affotel.Option
		want []string
	}{
		{"tracer provider", []affotel.Option{affotel.WithTracerProvider(nil)}, []string{"otel: WithTracerProvider(nil): must not be nil"}},
		{"meter provider", []affotel.Option{affotel.WithMeterProvider(nil)}, []string{"otel: WithMeterProvider(nil): must not be nil"}},
		{"propagator", []affotel.Option{affotel.WithPropagator(nil)}, []string{"otel: WithPropagator(nil): must not be nil"}},
		{"all together", []affotel.Option{affotel.WithTracerProvider(nil), affotel.WithMeterProvider(nil), affotel.WithPropagator(nil)},
			[]string{"WithTracerProvider(nil)", "WithMeterProvider(nil)", "WithPropagator(nil)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tel, err := affotel.New(tt.opts...)
			require.Nil(t, tel)
			require.Error(t, err)
			for _, w := range tt.want {
				require.Contains(t, err.Error(), w)
			}
		})
	}
}
