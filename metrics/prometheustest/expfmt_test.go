package prometheustest

import (
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/event"
	"github.com/affinitylb/affinity/metrics"
)

// TestExpfmtParsesMetrics builds a Recorder with a few backends and
// events of most kinds, request durations included, and parses its whole
// exposition with expfmt's text parser.
func TestExpfmtParsesMetrics(t *testing.T) {
	set, err := backend.NewSet([]backend.Config{
		{ID: "app1", URL: "http://127.0.0.1:1"},
		{ID: "app2", URL: "http://127.0.0.1:2"},
		{ID: "app3", URL: "http://127.0.0.1:3"},
	})
	require.NoError(t, err)
	rec, err := metrics.New(set)
	require.NoError(t, err)
	for _, e := range []event.Event{
		{Kind: event.Pick, Backend: "app1"},
		{Kind: event.BoundHit, Backend: "app1"},
		{Kind: event.Bind, Backend: "app1"},
		{Kind: event.Redispatch, Backend: "app2", Prev: "app1"},
		{Kind: event.Retry, Backend: "app1", Prev: "app2"},
		{Kind: event.Failure, Backend: "app2", Reason: event.TransportFailure},
		{Kind: event.Rejected, Reason: event.Forged},
		{Kind: event.Panic, Panic: "boom"},
		{Kind: event.Done, Backend: "app1", Placement: event.Picked, Status: 200, Header: 40 * time.Millisecond, Elapsed: 50 * time.Millisecond},
		{Kind: event.Done, Backend: "app1", Placement: event.Bound, Status: 200, Header: 150 * time.Millisecond, Elapsed: 200 * time.Millisecond},
		{Kind: event.Done, Backend: "app2", Placement: event.Redispatched, Status: 503, Header: time.Millisecond, Elapsed: 2 * time.Millisecond},
		// Not a member of the set (a custom emitter's ID): its label
		// value needs escaping.
		{Kind: event.Done, Backend: `odd "id"\x`, Placement: event.Picked, Status: 0, Elapsed: time.Minute},
		{Kind: event.Done, Placement: event.Unplaced, Status: 502, Elapsed: time.Millisecond},
	} {
		rec.Observe(e)
	}

	srv := httptest.NewServer(rec.Metrics())
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, expfmt.TypeTextPlain, expfmt.ResponseFormat(resp.Header).FormatType(), "the Content-Type names the text format")
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)

	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	require.NoError(t, err)

	for name, typ := range map[string]dto.MetricType{
		"affinity_backend_requests_total":   dto.MetricType_COUNTER,
		"affinity_backend_inflight":         dto.MetricType_GAUGE,
		"affinity_backend_state":            dto.MetricType_GAUGE,
		"affinity_picks_total":              dto.MetricType_COUNTER,
		"affinity_request_duration_seconds": dto.MetricType_HISTOGRAM,
		"affinity_responses_total":          dto.MetricType_COUNTER,
		"affinity_rejected_bindings_total":  dto.MetricType_COUNTER,
		"affinity_untracked_events_total":   dto.MetricType_COUNTER,
	} {
		require.Contains(t, families, name)
		assert.Equal(t, typ, families[name].GetType(), name)
	}
	assert.Len(t, families, 21)

	h := metricOf(t, families["affinity_request_duration_seconds"], "backend", "app1").GetHistogram()
	require.NotNil(t, h)
	assert.Equal(t, uint64(2), h.GetSampleCount())
	assert.InDelta(t, 0.25, h.GetSampleSum(), 1e-9)
	buckets := map[float64]uint64{}
	for _, b := range h.GetBucket() {
		buckets[b.GetUpperBound()] = b.GetCumulativeCount()
	}
	assert.Equal(t, map[float64]uint64{
		.005: 0, .01: 0, .025: 0, .05: 1, .1: 1, .25: 2, .5: 2, 1: 2, 2.5: 2, 5: 2, 10: 2, math.Inf(1): 2,
	}, buckets)

	odd := metricOf(t, families["affinity_request_duration_seconds"], "backend", `odd "id"\x`).GetHistogram()
	assert.Equal(t, uint64(1), odd.GetSampleCount())
	ob := odd.GetBucket()
	require.Len(t, ob, 12)
	assert.Equal(t, 10.0, ob[10].GetUpperBound())
	assert.Equal(t, uint64(0), ob[10].GetCumulativeCount(), "a minute is beyond 10 s")
	assert.Equal(t, uint64(1), ob[11].GetCumulativeCount(), "+Inf")

	resps := families["affinity_responses_total"]
	assert.Equal(t, 1.0, counterOf(t, resps, "backend", "app2", "class", "5xx"))
	assert.Equal(t, 2.0, counterOf(t, resps, "backend", "app1", "class", "2xx"))
	assert.Len(t, resps.GetMetric(), 4*5, "five classes for each backend, member or not")
}

// metricOf returns the metric of f whose labels include the given name,
// value pairs; it fails the test if there is not exactly one.
func metricOf(t *testing.T, f *dto.MetricFamily, labels ...string) *dto.Metric {
	t.Helper()
	var found []*dto.Metric
	for _, m := range f.GetMetric() {
		got := map[string]string{}
		for _, l := range m.GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		ok := true
		for i := 0; i+1 < len(labels); i += 2 {
			ok = ok && got[labels[i]] == labels[i+1]
		}
		if ok {
			found = append(found, m)
		}
	}
	require.Len(t, found, 1, "%s %v", f.GetName(), labels)
	return found[0]
}

func counterOf(t *testing.T, f *dto.MetricFamily, labels ...string) float64 {
	t.Helper()
	return metricOf(t, f, labels...).GetCounter().GetValue()
}
