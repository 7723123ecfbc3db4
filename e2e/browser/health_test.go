package browser

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestStatusPageHealth runs stickyproxy in front of three backends, one
// failing its health checks, one draining with a request still in flight
// and one serving, opens the status page in a browser and checks that it
// shows the latency of the last minute, why the unhealthy backend is out
// and since when, and how far the drain has gone.
func TestStatusPageHealth(t *testing.T) {
	chromiumPath(t) // skip before building and starting anything
	held := make(chan string, 2)
	release := make(chan struct{})
	server := func(id string, healthz int) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/healthz":
				w.WriteHeader(healthz)
			case "/hold": // answers when the test ends
				held <- id
				select {
				case <-release:
				case <-r.Context().Done():
				}
			default:
				fmt.Fprintln(w, id)
			}
		}))
		t.Cleanup(srv.Close)
		return id + "=" + srv.URL
	}
	backends := []string{server("app1", http.StatusOK), server("app2", http.StatusOK), server("sick", http.StatusServiceUnavailable)}
	p := startProxy(t, "-backends", strings.Join(backends, ","),
		"-health-path", "/healthz", "-health-interval", "1s", "-health-fall", "1")
	t.Cleanup(func() { close(release) }) // before the proxy shuts down: cleanups run last first
	plain := &http.Client{Timeout: 10 * time.Second}
	waitStatus(t, plain, p.admin, func(s statusJSON) bool { return s.backend("sick").State == "unhealthy" })

	// A request held on app1 or app2, which is then drained.
	go func() {
		resp, err := (&http.Client{}).Get(p.url + "/hold")
		if err == nil {
			resp.Body.Close()
		}
	}()
	var drained string
	select {
	case drained = <-held:
	case <-time.After(10 * time.Second):
		t.Fatal("the held request did not reach a backend")
	}
	resp, err := plain.Post(p.admin+"/backends/"+drained+"/drain", "application/json", strings.NewReader(`{"timeout": "1h"}`))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	serving := map[string]string{"app1": "app2", "app2": "app1"}[drained]

	// Latency: requests served by the other one.
	for range 10 {
		status, body := get(t, plain, p.url+"/whoami")
		require.Equal(t, http.StatusOK, status)
		require.Equal(t, serving+"\n", body)
	}
	waitStatus(t, plain, p.admin, func(s statusJSON) bool { return s.backend(serving).P50 != nil })

	ctx := newBrowser(t)
	nav, err := chromedp.Run(ctx, chromedp.NavigateResponse(p.admin+"/"))
	require.NoError(t, err)
	require.Equal(t, int64(200), nav.Status)
	require.NoError(t, chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS("#backends"))))
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[map[string]stateCell](`(() => {
		const text = (r, sel) => { const e = r.querySelector(sel); return e ? e.textContent.trim() : ""; };
		const rows = {};
		for (const r of document.querySelectorAll("#backends tbody tr[data-backend]")) {
			rows[r.dataset.backend] = {
				State: text(r, ".badge"), Why: text(r, ".why"), Since: text(r, ".since"),
				NextTry: text(r, ".next-try"), Drain: text(r, ".drain"), P50: text(r, ".p50"),
				InFlight: r.cells[4].textContent.trim(),
			};
		}
		return rows;
	})()`))
	require.NoError(t, err)
	t.Logf("status page rows: %+v", rows)
	require.Contains(t, rows, "sick")
	require.Contains(t, rows, drained)
	require.Contains(t, rows, serving)

	sick := rows["sick"]
	assert.Equal(t, "unhealthy", sick.State)
	assert.Equal(t, "health check: status 503, want 200..399", sick.Why)
	assert.Regexp(t, `^since \S+ ago$|^since now$`, sick.Since)
	assert.Empty(t, sick.Drain)

	d := rows[drained]
	assert.Equal(t, "draining", d.State)
	assert.Equal(t, "drain", d.Why)
	assert.Regexp(t, `^(59m\d+s|1h0m0s) left, 1 in flight$`, d.Drain)
	assert.Equal(t, "1", d.InFlight)

	s := rows[serving]
	assert.Equal(t, "healthy", s.State)
	assert.Empty(t, s.Why)
	assert.Regexp(t, `^\d+(\.\d+)? (ms|s)$`, s.P50, "the serving backend's p50")
}

// stateCell is what TestStatusPageHealth reads of a backend's row.
type stateCell struct {
	State, Why, Since, NextTry, Drain, P50, InFlight string
}

// statusJSON is what TestStatusPageHealth reads of the status JSON.
type statusJSON struct {
	Backends []struct {
		ID, State string
		P50       *float64 `json:"p50_seconds"`
	}
}

func (s statusJSON) backend(id string) (b struct {
	ID, State string
	P50       *float64 `json:"p50_seconds"`
}) {
	for _, x := range s.Backends {
		if x.ID == id {
			return x
		}
	}
	return b
}

// waitStatus waits until the status JSON on the admin listener admin
// satisfies ok.
func waitStatus(t *testing.T, c *http.Client, admin string, ok func(statusJSON) bool) {
	t.Helper()
	require.Eventually(t, func() bool {
		status, body := get(t, c, admin+"/?format=json")
		var s statusJSON
		return status == http.StatusOK && json.Unmarshal([]byte(body), &s) == nil && ok(s)
	}, 20*time.Second, 50*time.Millisecond)
}
