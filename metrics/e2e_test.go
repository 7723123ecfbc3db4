package metrics

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/balancer"
	"github.com/affinitylb/affinity/cookie"
	"github.com/affinitylb/affinity/sticky"
)

// TestEndToEnd wires a Recorder to a real set and sticky handler, sends
// traffic through, and checks what /metrics and /status say against what
// the clients saw.
func TestEndToEnd(t *testing.T) {
	apps := map[string]*httptest.Server{}
	var cfgs []backend.Config
	for _, id := range []string{"app1", "app2", "app3"} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, id)
		}))
		t.Cleanup(srv.Close)
		apps[id] = srv
		cfgs = append(cfgs, backend.Config{ID: id, URL: srv.URL})
	}
	set, err := backend.NewSet(cfgs, backend.WithEjection(backend.Ejection{}))
	require.NoError(t, err)
	rec := newRecorder(t, set)
	pol, err := cookie.New([][]byte{[]byte("a key of at least sixteen bytes")})
	require.NoError(t, err)
	h, err := sticky.New(set, pol, sticky.WithObserver(rec), sticky.WithPicker(&balancer.RoundRobin{}))
	require.NoError(t, err)
	lb := httptest.NewServer(h)
	t.Cleanup(lb.Close)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", rec.Metrics())
	mux.Handle("GET /status", rec.Status())
	admin := httptest.NewServer(mux)
	t.Cleanup(admin.Close)

	// What the clients saw.
	var bindings int
	servedBy := map[string]int{}
	send := func(c *http.Cookie) (string, *http.Cookie) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, lb.URL, nil)
		require.NoError(t, err)
		if c != nil {
			req.AddCookie(c)
		}
		resp, err := lb.Client().Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
		servedBy[string(body)]++
		for _, ck := range resp.Cookies() {
			if ck.Name == pol.Name() {
				bindings++
				return string(body), ck
			}
		}
		return string(body), c
	}

	type client struct {
		on     string
		cookie *http.Cookie
	}
	clients := make([]client, 6)
	for i := range clients { // new clients: picked, bound
		clients[i].on, clients[i].cookie = send(nil)
	}
	for _, c := range clients { // back with their cookie: bound hits
		on, _ := send(c.cookie)
		require.Equal(t, c.on, on, "sticky")
	}
	send(&http.Cookie{Name: pol.Name(), Value: "garbage"}) // rejected, then picked

	require.NoError(t, set.SetState("app1", backend.Unhealthy))
	var onApp1 int
	for i, c := range clients { // app1's clients are redispatched
		if c.on == "app1" {
			onApp1++
			clients[i].on, clients[i].cookie = send(c.cookie)
			require.NotEqual(t, "app1", clients[i].on)
		}
	}
	require.Positive(t, onApp1)
	require.NoError(t, set.SetState("app1", backend.Healthy))

	apps["app3"].Close() // app3 is unreachable: new clients placed there are retried
	for range 3 {
		on, _ := send(nil)
		require.NotEqual(t, "app3", on)
	}

	resp, err := admin.Client().Get(admin.URL + "/metrics")
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	assert.Equal(t, ContentType, resp.Header.Get("Content-Type"))
	m := parseExposition(t, string(body))

	assert.Equal(t, 6.0+1+3, m.sum("affinity_picks_total"), "new clients, the garbage cookie, the last three")
	assert.Equal(t, 6.0, m.sum("affinity_bound_hits_total"))
	assert.Equal(t, float64(onApp1), m.get(t, "affinity_redispatches_from_total", "backend", "app1"))
	assert.Equal(t, float64(onApp1), m.sum("affinity_redispatches_to_total"))
	assert.Equal(t, float64(bindings), m.sum("affinity_bindings_total"))
	assert.Equal(t, 1.0, m.get(t, "affinity_rejected_bindings_total", "reason", "malformed"))
	assert.Equal(t, 0.0, m.sum("affinity_rejected_bindings_total")-1, "nothing else rejected")
	assert.Equal(t, 1.0, m.get(t, "affinity_state_changes_total", "backend", "app1", "to", "unhealthy"))
	assert.Equal(t, 1.0, m.get(t, "affinity_state_changes_total", "backend", "app1", "to", "healthy"))
	assert.Equal(t, 1.0, m.get(t, "affinity_backend_state", "backend", "app1", "state", "healthy"))
	retries := m.get(t, "affinity_retries_from_total", "backend", "app3")
	assert.GreaterOrEqual(t, retries, 1.0, "three picks in a row meet app3")
	assert.Equal(t, retries, m.sum("affinity_retries_to_total"))
	assert.Equal(t, 0.0, m.sum("affinity_panics_total"))
	for _, id := range []string{"app1", "app2", "app3"} {
		admitted := m.get(t, "affinity_picks_total", "backend", id) + m.get(t, "affinity_bound_hits_total", "backend", id) +
			m.get(t, "affinity_redispatches_to_total", "backend", id) + m.get(t, "affinity_retries_to_total", "backend", id)
		assert.Equal(t, admitted, m.get(t, "affinity_backend_requests_total", "backend", id), "%s: one event per admission", id)
		served := admitted - m.get(t, "affinity_retries_from_total", "backend", id)
		assert.Equal(t, float64(servedBy[id]), served, "%s: answered what it admitted, less what it failed", id)
	}

	resp, err = admin.Client().Get(admin.URL + "/status?format=json")
	require.NoError(t, err)
	defer resp.Body.Close()
	var status struct {
		Backends []struct {
			ID                 string
			State              string
			Requests           int64
			Errors             int64
			BindingsLastMinute int64 `json:"bindings_last_minute"`
			RPS                []int64
		}
		FailOpen bool `json:"fail_open"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&status))
	require.Len(t, status.Backends, 3)
	var recent int64
	for _, b := range status.Backends {
		recent += b.BindingsLastMinute
		assert.Len(t, b.RPS, 300)
		assert.Equal(t, "healthy", b.State)
		assert.Equal(t, int64(m.get(t, "affinity_backend_requests_total", "backend", b.ID)), b.Requests)
	}
	assert.Equal(t, int64(bindings), recent, "every binding was made in the last minute")
	assert.Equal(t, int64(onApp1), status.Backends[0].Errors, "app1: its clients redispatched")
	assert.Equal(t, int64(retries), status.Backends[2].Errors, "app3: retried elsewhere")
	assert.False(t, status.FailOpen)
}

// TestEndToEndLatency sends requests through a sticky handler to a
// backend that answers after known delays, 50 ms and 200 ms, and finds
// them in the request duration histogram and the status classes. Only
// the delays' lower bounds are asserted: a slow machine adds to them.
func TestEndToEndLatency(t *testing.T) {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/50ms":
			time.Sleep(50 * time.Millisecond)
			io.WriteString(w, "ok")
		case "/200ms":
			time.Sleep(200 * time.Millisecond)
			http.Error(w, "overloaded", http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(app.Close)
	set, err := backend.NewSet([]backend.Config{{ID: "app1", URL: app.URL}}, backend.WithEjection(backend.Ejection{}))
	require.NoError(t, err)
	rec := newRecorder(t, set)
	pol, err := cookie.New([][]byte{[]byte("a key of at least sixteen bytes")})
	require.NoError(t, err)
	h, err := sticky.New(set, pol, sticky.WithObserver(rec))
	require.NoError(t, err)
	lb := httptest.NewServer(h)
	t.Cleanup(lb.Close)

	for path, status := range map[string]int{"/50ms": http.StatusOK, "/200ms": http.StatusServiceUnavailable} {
		resp, err := lb.Client().Get(lb.URL + path)
		require.NoError(t, err)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		require.Equal(t, status, resp.StatusCode, path)
	}

	// The handler reports a request done once it has written the response
	// whole, which the client may have read before.
	var p *parsed
	require.Eventually(t, func() bool {
		_, body := scrape(t, rec.Metrics(), "/metrics")
		p = parseExposition(t, body)
		return p.get(t, "affinity_request_duration_seconds_count", "backend", "app1") == 2
	}, 10*time.Second, 10*time.Millisecond, "both requests reported done")
	bucket := func(le string) float64 {
		return p.get(t, "affinity_request_duration_seconds_bucket", "backend", "app1", "le", le)
	}
	assert.Zero(t, bucket("0.025"), "neither took less than 50 ms")
	assert.LessOrEqual(t, bucket("0.1"), 1.0, "the 200 ms request is beyond 0.1 s")
	assert.Equal(t, 2.0, bucket("+Inf"))
	assert.GreaterOrEqual(t, p.get(t, "affinity_request_duration_seconds_sum", "backend", "app1"), 0.25)
	assert.Equal(t, 1.0, p.get(t, "affinity_responses_total", "backend", "app1", "class", "2xx"))
	assert.Equal(t, 1.0, p.get(t, "affinity_responses_total", "backend", "app1", "class", "5xx"))

	var page struct {
		Backends []struct {
			P50     *float64 `json:"p50_seconds"`
			P99     *float64 `json:"p99_seconds"`
			Rate5xx float64  `json:"5xx_rate"`
		}
	}
	_, body := scrape(t, rec.Status(), "/status?format=json")
	require.NoError(t, json.Unmarshal([]byte(body), &page))
	require.Len(t, page.Backends, 1)
	b := page.Backends[0]
	require.NotNil(t, b.P50)
	require.NotNil(t, b.P99)
	assert.Greater(t, *b.P50, 0.025, "in the 50 ms request's bucket or later")
	assert.Greater(t, *b.P99, 0.1, "in the 200 ms request's bucket or later")
	assert.InDelta(t, 0.5, b.Rate5xx, 1e-9)
}
