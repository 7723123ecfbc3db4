package metrics

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/event"
	"github.com/affinitylb/affinity/internal/accounting"
)

// scrape serves h one GET and returns the response and its body.
func scrape(t *testing.T, h http.Handler, target string, header ...string) (*http.Response, string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	resp := w.Result()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(body)
}

func TestMetrics(t *testing.T) {
	set := newSet(t, "app2", "app1", "app3")
	require.NoError(t, set.SetState("app3", backend.Unhealthy)) // before the Recorder: not counted, but read from the set
	r := newRecorder(t, set)
	events := []event.Event{
		ev(event.Pick, "app1", ""), ev(event.Pick, "app1", ""), ev(event.Pick, "app2", ""),
		ev(event.BoundHit, "app1", ""),
		ev(event.Bind, "app1", ""), ev(event.Bind, "app2", ""),
		ev(event.Redispatch, "app2", "app1"),
		ev(event.Retry, "app3", "app2"),
		ev(event.Failure, "app2", ""), ev(event.Failure, "app2", ""),
		{Kind: event.Rejected, Reason: event.Forged},
		{Kind: event.Panic, Panic: "boom"},
	}
	for _, e := range events {
		r.Observe(e)
	}
	r.Observe(event.Event{Kind: event.DrainEnd, Backend: "app3", Reason: event.DrainIdle})
	b := set.Snapshot().Lookup("app2")
	require.True(t, accounting.Acquire(b))
	t.Cleanup(func() { accounting.Release(b) })

	resp, body := scrape(t, r.Metrics(), "/metrics")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "text/plain; version=0.0.4; charset=utf-8", resp.Header.Get("Content-Type"))
	p := parseExposition(t, body)

	tests := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"affinity_backend_requests_total", []string{"backend", "app2"}, 1},
		{"affinity_backend_inflight", []string{"backend", "app2"}, 1},
		{"affinity_backend_inflight", []string{"backend", "app1"}, 0},
		{"affinity_backend_weight", []string{"backend", "app3"}, 1},
		{"affinity_backend_state", []string{"backend", "app3", "state", "unhealthy"}, 1},
		{"affinity_backend_state", []string{"backend", "app3", "state", "healthy"}, 0},
		{"affinity_backend_state", []string{"backend", "app1", "state", "healthy"}, 1},
		{"affinity_backend_state", []string{"backend", "app1", "state", "draining"}, 0},
		{"affinity_fail_open", nil, 0},
		{"affinity_picks_total", []string{"backend", "app1"}, 2},
		{"affinity_picks_total", []string{"backend", "app2"}, 1},
		{"affinity_picks_total", []string{"backend", "app3"}, 0},
		{"affinity_bound_hits_total", []string{"backend", "app1"}, 1},
		{"affinity_bindings_total", []string{"backend", "app1"}, 1},
		{"affinity_bindings_total", []string{"backend", "app2"}, 1},
		{"affinity_redispatches_to_total", []string{"backend", "app2"}, 1},
		{"affinity_redispatches_from_total", []string{"backend", "app1"}, 1},
		{"affinity_retries_to_total", []string{"backend", "app3"}, 1},
		{"affinity_retries_from_total", []string{"backend", "app2"}, 1},
		{"affinity_state_changes_total", []string{"backend", "app3", "to", "unhealthy"}, 0},
		{"affinity_drains_total", []string{"backend", "app1"}, 0},
		{"affinity_failures_total", []string{"backend", "app2"}, 2},
		{"affinity_failures_total", []string{"backend", "app1"}, 0},
		{"affinity_drain_ends_total", []string{"reason", "idle"}, 1},
		{"affinity_rejected_bindings_total", []string{"reason", "forged"}, 1},
		{"affinity_rejected_bindings_total", []string{"reason", "malformed"}, 0},
		{"affinity_panics_total", nil, 1},
		{"affinity_untracked_events_total", nil, 0},
	}
	for _, tt := range tests {
		t.Run(seriesKey(tt.name, pairs(tt.labels)), func(t *testing.T) {
			assert.Equal(t, tt.want, p.get(t, tt.name, tt.labels...))
		})
	}
	assert.Len(t, p.families, 21)

	t.Run("expvar has the same counters", func(t *testing.T) {
		var v struct {
			Backends map[string]struct {
				Failures  int64 `json:"failures"`
				RetriesTo int64 `json:"retries_to"`
			} `json:"backends"`
		}
		require.NoError(t, json.Unmarshal([]byte(r.Expvar().String()), &v))
		assert.Equal(t, int64(2), v.Backends["app2"].Failures)
		assert.Equal(t, int64(1), v.Backends["app3"].RetriesTo)
	})

	t.Run("deterministic, sorted by backend", func(t *testing.T) {
		_, again := scrape(t, r.Metrics(), "/metrics")
		assert.Equal(t, body, again)
		i1, i2, i3 := strings.Index(body, `affinity_picks_total{backend="app1"}`),
			strings.Index(body, `affinity_picks_total{backend="app2"}`), strings.Index(body, `affinity_picks_total{backend="app3"}`)
		assert.True(t, i1 < i2 && i2 < i3, "app1, app2, app3")
	})
}

// TestMetricsOfNonMembers counts the events about a backend that is not a
// member of the set, and reports no set numbers for it.
func TestMetricsOfNonMembers(t *testing.T) {
	r := newRecorder(t, newSet(t, "b"))
	r.Observe(ev(event.Pick, "a", ""))
	_, body := scrape(t, r.Metrics(), "/metrics")
	p := parseExposition(t, body)
	assert.Equal(t, 1.0, p.get(t, "affinity_picks_total", "backend", "a"))
	assert.False(t, p.has("affinity_backend_requests_total", "backend", "a"), "set numbers are for members")
	assert.False(t, p.has("affinity_backend_state", "backend", "a", "state", "healthy"))
	assert.True(t, p.has("affinity_backend_state", "backend", "b", "state", "healthy"))
	assert.Equal(t, 0.0, p.get(t, "affinity_fail_open"))
}

func TestMetricsFailOpen(t *testing.T) {
	set := newSet(t, "a", "b")
	require.NoError(t, set.SetState("a", backend.Unhealthy))
	require.NoError(t, set.SetState("b", backend.Unhealthy))
	_, body := scrape(t, newRecorder(t, set).Metrics(), "/metrics")
	assert.Equal(t, 1.0, parseExposition(t, body).get(t, "affinity_fail_open"))
}

func TestMetricsMethods(t *testing.T) {
	h := newRecorder(t, newSet(t)).Metrics()
	for _, tt := range []struct {
		method string
		code   int
	}{{http.MethodGet, 200}, {http.MethodHead, 200}, {http.MethodPost, 405}, {http.MethodDelete, 405}} {
		t.Run(tt.method, func(t *testing.T) {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(tt.method, "/metrics", nil))
			assert.Equal(t, tt.code, w.Code)
			if tt.code == 405 {
				assert.Equal(t, "GET, HEAD", w.Header().Get("Allow"))
			}
		})
	}
}

func TestExpositionEscaping(t *testing.T) {
	tests := []struct {
		name, value, want string
	}{
		{"plain", "app-1.eu_west", `m_total{l="app-1.eu_west"} 1`},
		{"backslash", `a\b`, `m_total{l="a\\b"} 1`},
		{"quote", `a"b`, `m_total{l="a\"b"} 1`},
		{"line feed", "a\nb", `m_total{l="a\nb"} 1`},
		{"all, and braces", "\\\"\n}{,=", `m_total{l="\\\"\n}{,="} 1`},
		{"unicode", "é☃", `m_total{l="é☃"} 1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := exposition{}
			e.header("m_total", "counter", "Help with a \\ backslash\nand a line feed.")
			e.sample("m_total", 1, "l", tt.value)
			text := string(e.buf)
			assert.Equal(t, "# HELP m_total Help with a \\\\ backslash\\nand a line feed.\n# TYPE m_total counter\n"+tt.want+"\n", text)
			p := parseExposition(t, text)
			assert.Equal(t, 1.0, p.get(t, "m_total", "l", tt.value), "read back")
		})
	}
}

// newRecorderResponse serves h one request with method and returns the
// response.
func newRecorderResponse(t *testing.T, h http.Handler, method string) *http.Response {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(method, "/", nil))
	return w.Result()
}
