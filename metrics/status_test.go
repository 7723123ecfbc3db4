package metrics

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/event"
)

func TestStatusJSON(t *testing.T) {
	set := newSet(t, "b", "a")
	r := newRecorder(t, set)
	clk := withClock(r)
	r.Observe(ev(event.Pick, "a", ""))
	r.Observe(ev(event.Bind, "a", ""))
	r.Observe(ev(event.Retry, "a", "b"))
	clk.add(1500 * time.Millisecond)

	for _, how := range []struct {
		name   string
		target string
		header []string
	}{
		{"query", "/status?format=json", nil},
		{"accept", "/status", []string{"Accept", "application/json"}},
	} {
		t.Run(how.name, func(t *testing.T) {
			resp, body := scrape(t, r.Status(), how.target, how.header...)
			require.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			assert.Equal(t, "Accept", resp.Header.Get("Vary"))

			var raw map[string]json.RawMessage
			require.NoError(t, json.Unmarshal([]byte(body), &raw))
			assert.ElementsMatch(t, []string{"backends", "totals", "fail_open", "generated_at"}, keys(raw))
			var page struct {
				Backends    []map[string]json.RawMessage
				FailOpen    bool      `json:"fail_open"`
				GeneratedAt time.Time `json:"generated_at"`
			}
			require.NoError(t, json.Unmarshal([]byte(body), &page))
			assert.False(t, page.FailOpen)
			assert.True(t, start.Add(1500*time.Millisecond).Equal(page.GeneratedAt), "generated at %v", page.GeneratedAt)
			require.Len(t, page.Backends, 2)
			a := page.Backends[0]
			assert.ElementsMatch(t, []string{"id", "url", "group", "state", "weight", "inflight", "requests", "errors", "bindings_last_minute",
				"since", "reason", "next_try", "drain_deadline", "drain_left_seconds",
				"p50_seconds", "p99_seconds", "responses_last_minute", "5xx_last_minute", "5xx_rate", "rps"}, keys(a))

			var got struct {
				ID, URL, State                            string
				Weight, InFlight, Requests, Errors, Binds int64
				RPS                                       []int64
			}
			for k, v := range map[string]any{
				"id": &got.ID, "url": &got.URL, "state": &got.State, "weight": &got.Weight, "inflight": &got.InFlight,
				"requests": &got.Requests, "errors": &got.Errors, "bindings_last_minute": &got.Binds, "rps": &got.RPS,
			} {
				require.NoError(t, json.Unmarshal(a[k], v), k)
			}
			assert.Equal(t, "a", got.ID, "sorted by ID")
			assert.Equal(t, "http://127.0.0.1:2", got.URL)
			assert.Equal(t, "healthy", got.State)
			assert.Equal(t, int64(1), got.Weight)
			assert.Equal(t, int64(1), got.Binds)
			assert.Zero(t, got.Errors)
			require.Len(t, got.RPS, 300)
			assert.Equal(t, int64(2), got.RPS[299], "the last whole second: the pick and the retry")

			var b struct{ Errors int64 }
			require.NoError(t, json.Unmarshal(page.Backends[1]["errors"], &b.Errors))
			assert.Equal(t, int64(1), b.Errors, "b: retried away")
		})
	}
}

func keys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

func TestStatusHTML(t *testing.T) {
	set := newSet(t, "app1", "app2", "app3")
	require.NoError(t, set.SetState("app2", backend.Draining))
	r := newRecorder(t, set)
	clk := withClock(r)
	for i := range 20 {
		r.Observe(ev(event.Pick, "app1", ""))
		if i%2 == 0 {
			r.Observe(ev(event.BoundHit, "app3", ""))
		}
		clk.add(time.Second)
	}
	r.Observe(ev(event.Bind, "app1", ""))

	resp, body := scrape(t, r.Status(), "/status", "Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"))
	assert.Contains(t, body, `<meta http-equiv="refresh" content="5">`)
	assert.NotContains(t, body, "<script")
	assert.Contains(t, body, `<table id="backends">`)
	assert.Contains(t, body, `<svg id="rps-chart"`)

	table := between(t, body, `<table id="backends">`, `</table>`)
	rows := regexp.MustCompile(`<tr data-backend="([^"]+)">(.*?)</tr>`).FindAllStringSubmatch(table, -1)
	require.Len(t, rows, 3, "one row per backend")
	for i, want := range []struct{ id, state, cells string }{
		{"app1", "healthy", `<td class="n">1</td><td class="n">0</td><td class="n">0</td><td class="n">0</td><td class="n">1</td>`},
		{"app2", "draining", `<td class="n">1</td><td class="n">0</td><td class="n">0</td><td class="n">0</td><td class="n">0</td>`},
		{"app3", "healthy", `<td class="n">1</td><td class="n">0</td><td class="n">0</td><td class="n">0</td><td class="n">0</td>`},
	} {
		assert.Equal(t, want.id, rows[i][1])
		assert.Contains(t, rows[i][2], fmt.Sprintf(`<span class="badge state-%s">%[1]s</span>`, want.state), want.id)
		assert.Contains(t, rows[i][2], want.cells, "%s: weight, in flight, requests, errors, bindings", want.id)
	}

	svg := between(t, body, `<svg id="rps-chart"`, `</svg>`+"\n<figcaption>")
	lines := regexp.MustCompile(`<polyline data-backend="([^"]+)" [^>]*points="([^"]+)"`).FindAllStringSubmatch(svg, -1)
	require.Len(t, lines, 3, "one line per backend")
	for i, id := range []string{"app1", "app2", "app3"} {
		assert.Equal(t, id, lines[i][1])
		assert.Len(t, strings.Fields(lines[i][2]), 300, "%s: a point a second", id)
	}
	assert.Contains(t, svg, "requests/s", "the y axis is labelled")
	assert.Contains(t, svg, ">now</text>", "the x axis is labelled")
	assert.NotContains(t, svg, "no requests")
	assert.Contains(t, body, `class="legend"`)
}

func TestStatusShowsGroups(t *testing.T) {
	set, err := backend.NewSet([]backend.Config{
		{ID: "b1", URL: "http://127.0.0.1:1", Group: "blue"},
		{ID: "d1", URL: "http://127.0.0.1:2"},
		{ID: "g1", URL: "http://127.0.0.1:3", Group: "green"},
	})
	require.NoError(t, err)
	r := newRecorder(t, set)

	_, body := scrape(t, r.Status(), "/status?format=json")
	var page struct{ Backends []struct{ ID, Group string } }
	require.NoError(t, json.Unmarshal([]byte(body), &page))
	var got []string
	for _, b := range page.Backends {
		got = append(got, b.ID+":"+b.Group)
	}
	assert.Equal(t, []string{"b1:blue", "d1:", "g1:green"}, got)

	_, body = scrape(t, r.Status(), "/status")
	rows := regexp.MustCompile(`<tr data-backend="([^"]+)"><td>(.*?)</td>`).FindAllStringSubmatch(between(t, body, `<table id="backends">`, `</table>`), -1)
	require.Len(t, rows, 3)
	for i, want := range []struct{ id, group string }{{"b1", `<div class="group">group blue</div>`}, {"d1", ""}, {"g1", `<div class="group">group green</div>`}} {
		assert.Equal(t, want.id, rows[i][1])
		if want.group == "" {
			assert.NotContains(t, rows[i][2], `class="group"`, "the default group is not shown")
			continue
		}
		assert.Contains(t, rows[i][2], want.group)
	}
}

func TestStatusHTMLNoData(t *testing.T) {
	for _, tt := range []struct {
		name  string
		ids   []string
		lines int
	}{
		{"no backends", nil, 0},
		{"quiet backends", []string{"a", "b"}, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, body := scrape(t, newRecorder(t, newSet(t, tt.ids...)).Status(), "/status")
			assert.Contains(t, body, `<svg id="rps-chart"`)
			assert.Contains(t, body, "no requests in the last 5 minutes")
			assert.Equal(t, tt.lines, strings.Count(body, "<polyline"))
			assert.NotContains(t, body, "NaN")
			if len(tt.ids) == 0 {
				assert.Contains(t, body, "No backends.")
			}
		})
	}
}

func TestStatusChartShowsTheBusiest(t *testing.T) {
	ids := make([]string, 12)
	for i := range ids {
		ids[i] = fmt.Sprintf("b%02d", i)
	}
	set := newSet(t, ids...)
	r := newRecorder(t, set)
	clk := withClock(r)
	for i, id := range ids {
		if i == 0 || i == 5 {
			continue // the two idle ones
		}
		r.Observe(ev(event.Pick, id, ""))
	}
	clk.add(time.Second)
	_, body := scrape(t, r.Status(), "/status")
	drawn := regexp.MustCompile(`<polyline data-backend="([^"]+)"`).FindAllStringSubmatch(body, -1)
	require.Len(t, drawn, maxChartLines)
	for _, m := range drawn {
		assert.NotContains(t, []string{"b00", "b05"}, m[1], "the idle ones are left out")
	}
	assert.Contains(t, body, "and 2 more, not drawn")
	assert.Equal(t, 12, strings.Count(body, "<tr data-backend="), "the table has them all")
}

func TestStatusEscapes(t *testing.T) {
	hostile := `http://127.0.0.1:1/x"><script>alert('&')</script>`
	set, err := backend.NewSet([]backend.Config{{ID: "a", URL: hostile}})
	require.NoError(t, err)
	url := set.Snapshot().Lookup("a").URL().String()
	require.Contains(t, url, "&", "the URL keeps a character HTML must escape")
	r := newRecorder(t, set)

	_, html := scrape(t, r.Status(), "/status")
	assert.NotContains(t, html, "<script>")
	assert.NotContains(t, html, url, "not verbatim")
	assert.Contains(t, html, strings.ReplaceAll(url, "&", "&amp;"))

	_, body := scrape(t, r.Status(), "/status?format=json")
	assert.NotContains(t, body, "<")
	assert.NotContains(t, body, "&")
	var page struct{ Backends []struct{ URL string } }
	require.NoError(t, json.Unmarshal([]byte(body), &page))
	require.Len(t, page.Backends, 1)
	assert.Equal(t, url, page.Backends[0].URL, "decodes to the URL")
}

func TestStatusRemovedBackend(t *testing.T) {
	set := newSet(t, "a", "b")
	r := newRecorder(t, set)
	withClock(r)
	r.Observe(ev(event.Pick, "b", ""))
	_, err := set.Remove("b")
	require.NoError(t, err)
	_, body := scrape(t, r.Status(), "/status?format=json")
	assert.Contains(t, body, `{"id":"b","url":"","group":"","state":"removed"`)
	_, html := scrape(t, r.Status(), "/status")
	assert.Contains(t, html, `<span class="badge state-removed">removed</span>`)
}

func TestStatusFailOpen(t *testing.T) {
	set := newSet(t, "a")
	require.NoError(t, set.SetState("a", backend.Unhealthy))
	r := newRecorder(t, set)
	_, body := scrape(t, r.Status(), "/status?format=json")
	assert.Contains(t, body, `"fail_open":true`)
	_, html := scrape(t, r.Status(), "/status")
	assert.Contains(t, html, "failing open")
}

func TestWantsJSON(t *testing.T) {
	tests := []struct {
		target, accept string
		want           bool
	}{
		{"/", "", false},
		{"/", "application/json", true},
		{"/", "Application/JSON; charset=utf-8", true},
		{"/", "text/html,application/json", false},
		{"/", "application/json, text/html", true},
		{"/", "*/*", false},
		{"/?format=json", "text/html", true},
		{"/?format=html", "application/json", false},
	}
	for _, tt := range tests {
		t.Run(tt.target+" "+tt.accept, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, tt.target, nil)
			require.NoError(t, err)
			req.Header.Set("Accept", tt.accept)
			assert.Equal(t, tt.want, wantsJSON(req))
		})
	}
}

func TestStatusMethods(t *testing.T) {
	w := newRecorderResponse(t, newRecorder(t, newSet(t)).Status(), http.MethodPost)
	assert.Equal(t, http.StatusMethodNotAllowed, w.StatusCode)
	assert.Equal(t, "GET, HEAD", w.Header.Get("Allow"))
}

func TestNiceCeil(t *testing.T) {
	for _, tt := range []struct {
		n    int64
		want float64
	}{{0, 1}, {1, 1}, {2, 2}, {3, 5}, {5, 5}, {6, 10}, {10, 10}, {11, 20}, {99, 100}, {101, 200}, {4999, 5000}} {
		assert.Equal(t, tt.want, niceCeil(tt.n), "%d", tt.n)
	}
}

// between returns the part of s from the first from to the next to,
// inclusive.
func between(t *testing.T, s, from, to string) string {
	t.Helper()
	i := strings.Index(s, from)
	require.GreaterOrEqual(t, i, 0, "no %q", from)
	j := strings.Index(s[i:], to)
	require.GreaterOrEqual(t, j, 0, "no %q after %q", to, from)
	return s[i : i+j+len(to)]
}
