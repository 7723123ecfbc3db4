package metrics

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/affinitylb/affinity/backend"
)

// Status returns a handler serving the status page to GET and HEAD
// requests: a table of the backends (state, and why with since when for
// one that is not healthy, weight, in-flight, requests,
// errors, bindings made in the last minute, and the last minute's median
// and 99th percentile request durations and share of 5xx responses), with
// a totals row, and a chart of their requests per second over the last
// five minutes, as HTML without JavaScript that refreshes itself every 5
// seconds. The table is <table id="backends">, its totals row <tr
// id="totals">, the chart <svg id="rps-chart">.
//
// With ?format=json, or an Accept header that names application/json
// before text/html, it serves the same numbers as JSON:
//
//	{"backends": [{"id": "app1", "url": "http://10.0.0.1:8080", "group": "", "state": "healthy",
//	               "weight": 1, "inflight": 0, "requests": 42, "errors": 0,
//	               "bindings_last_minute": 3, "since": null, "reason": "",
//	               "next_try": null, "drain_deadline": null, "drain_left_seconds": null,
//	               "p50_seconds": 0.031, "p99_seconds": 0.24,
//	               "responses_last_minute": 40, "5xx_last_minute": 1, "5xx_rate": 0.025,
//	               "rps": [0, 1, ...]}],
//	 "totals": {"inflight": 0, "requests": 42, "errors": 0, "bindings_last_minute": 3,
//	            "p50_seconds": 0.031, "p99_seconds": 0.24,
//	            "responses_last_minute": 40, "5xx_last_minute": 1, "5xx_rate": 0.025},
//	 "fail_open": false, "generated_at": "2025-01-02T15:04:05Z"}
//
// The last minute is the 60 seconds that end with generated_at's,
// current one included; its quantiles are estimated from the request
// duration histogram's buckets (those of
// affinity_request_duration_seconds) by linear interpolation within the
// bucket that holds the rank, as Prometheus's histogram_quantile does, so
// they are only as fine as the buckets, and one beyond the last finite
// bound, 10 s, is given as 10 s; they are null when the minute holds no
// request. responses_last_minute counts the responses sent with a status
// from 100 to 599, 5xx_rate is the share of those that were 5xx, 0 with
// none. Durations and statuses come from the handler's Done events, by
// the backend that served the request last; the totals' quantiles are
// those of every backend's requests together.
//
// since, reason and next_try say why a backend is in its state, since
// when and, for an ejected one, when it is next tried, as
// [backend.Backend.Health] does; for a drain with a timeout,
// drain_deadline is when it ends and drain_left_seconds how long that is
// after generated_at, 0 once passed; inflight is what it still serves.
// They are null (reason "") where they do not apply, and for a removed
// backend.
//
// group is the backend's group ("" for the default one, and for a
// backend that left the set); the HTML page shows it under the backend's
// ID. rps holds 300 counts, oldest first: the requests placed on the backend
// in each of the 300 whole seconds before generated_at's. errors counts
// the requests that failed over from the backend: retried elsewhere after
// a transport error, or redispatched because it no longer served its
// clients. Backends are sorted by ID; those that left the set are
// listed, as "removed", until their counters are forgotten (see
// [WithForgetAfter]). The handler is safe for concurrent use.
func (r *Recorder) Status() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodGet && req.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
			return
		}
		v := r.view(true)
		var buf bytes.Buffer
		var err error
		if wantsJSON(req) {
			w.Header().Set("Content-Type", "application/json")
			err = json.NewEncoder(&buf).Encode(statusJSON(v))
		} else {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			err = statusTemplate.Execute(&buf, statusData(v))
		}
		if err != nil { // a bug: the data is ours
			http.Error(w, "500 internal server error: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Vary", "Accept")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
		w.Write(buf.Bytes()) // an error means the client left: nothing to do
	})
}

// wantsJSON reports whether req asks for JSON: ?format=json, or an Accept
// header naming application/json before any HTML type. Quality values
// are not weighed.
func wantsJSON(req *http.Request) bool {
	switch req.URL.Query().Get("format") {
	case "json":
		return true
	case "html":
		return false
	}
	for part := range strings.SplitSeq(req.Header.Get("Accept"), ",") {
		typ, _, _ := strings.Cut(part, ";")
		switch strings.ToLower(strings.TrimSpace(typ)) {
		case "application/json":
			return true
		case "text/html", "application/xhtml+xml":
			return false
		}
	}
	return false
}

// statusBackend is one backend in the status JSON.
type statusBackend struct {
	ID                 string `json:"id"`
	URL                string `json:"url"`
	Group              string `json:"group"` // "" for the default group, or a removed backend
	State              string `json:"state"`
	Weight             int64  `json:"weight"`
	InFlight           int64  `json:"inflight"`
	Requests           int64  `json:"requests"`
	Errors             int64  `json:"errors"`
	BindingsLastMinute int64  `json:"bindings_last_minute"`
	healthJSON
	latencyJSON
	RPS []int64 `json:"rps"`
}

// healthJSON is why a backend is in its state and since when, in the
// status JSON; see [backend.HealthInfo].
type healthJSON struct {
	Since         *time.Time `json:"since"`          // nil, null, if it has been healthy since it joined
	Reason        string     `json:"reason"`         // "" when healthy
	NextTry       *time.Time `json:"next_try"`       // an ejection's trial; null when not ejected
	DrainDeadline *time.Time `json:"drain_deadline"` // a drain's timeout; null when none
	DrainLeft     *float64   `json:"drain_left_seconds"`
}

func newHealthJSON(h backend.HealthInfo, member bool, at time.Time) healthJSON {
	var j healthJSON
	if !member {
		return j
	}
	utc := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil
		}
		t = t.UTC()
		return &t
	}
	j.Since, j.Reason, j.NextTry, j.DrainDeadline = utc(h.Since), h.Reason, utc(h.Retry), utc(h.DrainDeadline)
	if j.DrainDeadline != nil {
		left := max(h.DrainDeadline.Sub(at), 0).Seconds()
		j.DrainLeft = &left
	}
	return j
}

// latencyJSON is the last minute's request durations and statuses in the
// status JSON, for a backend or the totals.
type latencyJSON struct {
	P50       *float64 `json:"p50_seconds"` // nil, null, if the minute holds no request
	P99       *float64 `json:"p99_seconds"`
	Responses int64    `json:"responses_last_minute"`
	Errors5xx int64    `json:"5xx_last_minute"`
	Rate5xx   float64  `json:"5xx_rate"` // Errors5xx / Responses, 0 with no response
}

func newLatencyJSON(v *latencyView) latencyJSON {
	l := latencyJSON{Responses: v.recentResp, Errors5xx: v.recent5xx}
	if d, ok := v.quantile(0.5); ok {
		s := d.Seconds()
		l.P50 = &s
	}
	if d, ok := v.quantile(0.99); ok {
		s := d.Seconds()
		l.P99 = &s
	}
	if l.Responses > 0 {
		l.Rate5xx = float64(l.Errors5xx) / float64(l.Responses)
	}
	return l
}

// statusTotals is the status JSON's totals: sums over the backends, and
// the quantiles of all their requests of the last minute.
type statusTotals struct {
	InFlight           int64 `json:"inflight"`
	Requests           int64 `json:"requests"`
	Errors             int64 `json:"errors"`
	BindingsLastMinute int64 `json:"bindings_last_minute"`
	latencyJSON
}

// statusPage is the status JSON.
type statusPage struct {
	Backends    []statusBackend `json:"backends"`
	Totals      statusTotals    `json:"totals"`
	FailOpen    bool            `json:"fail_open"`
	GeneratedAt time.Time       `json:"generated_at"`
}

func statusJSON(v *view) statusPage {
	p := statusPage{Backends: make([]statusBackend, len(v.backends)), FailOpen: v.failOpen, GeneratedAt: v.at.UTC()}
	var all latencyView
	for i := range v.backends {
		b := &v.backends[i]
		p.Backends[i] = statusBackend{
			ID: b.id, URL: b.url, Group: b.group, State: b.stateName(), Weight: b.weight,
			InFlight: b.inflight, Requests: b.requests, Errors: b.errors(),
			BindingsLastMinute: b.bindsLastMinute, healthJSON: newHealthJSON(b.health, b.member, v.at), latencyJSON: newLatencyJSON(&b.latency), RPS: b.rps,
		}
		t := &p.Totals
		t.InFlight += b.inflight
		t.Requests += b.requests
		t.Errors += b.errors()
		t.BindingsLastMinute += b.bindsLastMinute
		all.add(&b.latency)
	}
	p.Totals.latencyJSON = newLatencyJSON(&all)
	return p
}

//go:embed status.html
var statusHTML string

var statusTemplate = template.Must(template.New("status").Funcs(template.FuncMap{
	"seconds": formatSeconds,
	"percent": formatPercent,
	"ago":     formatAgo,
	"left":    formatLeft,
}).Parse(statusHTML))

// formatSeconds formats a quantile for the status page: in milliseconds
// below a second, in seconds from there; "–" for none.
func formatSeconds(s *float64) string {
	switch {
	case s == nil:
		return "–"
	case *s < 1:
		return strconv.FormatFloat(*s*1000, 'f', 1, 64) + " ms"
	}
	return strconv.FormatFloat(*s, 'f', 2, 64) + " s"
}

// formatPercent formats a share, 0 to 1, as a percentage with one
// decimal.
func formatPercent(f float64) string {
	return strconv.FormatFloat(f*100, 'f', 1, 64) + "%"
}

// formatAgo formats how long before or after now t is, for the status
// page, rounded to the second: "3m20s ago", "in 12s", "now".
func formatAgo(t *time.Time, now time.Time) string {
	d := t.Sub(now).Round(time.Second)
	switch {
	case d < 0:
		return (-d).String() + " ago"
	case d > 0:
		return "in " + d.String()
	}
	return "now"
}

// formatLeft formats a number of seconds left, rounded to the second.
func formatLeft(s *float64) string {
	return time.Duration(*s * float64(time.Second)).Round(time.Second).String()
}

// statusRow is one row of the status page's table.
type statusRow struct {
	B     statusBackend
	Color string // of its line in the chart; empty if not drawn
}

// statusView is the status page's template data.
type statusView struct {
	Rows        []statusRow
	Totals      statusTotals
	FailOpen    bool
	GeneratedAt string
	At          time.Time // when generated, to the nanosecond
	Chart       chart
}

func statusData(v *view) statusView {
	c, colors := newChart(v)
	p := statusJSON(v)
	sv := statusView{
		Rows:        make([]statusRow, len(p.Backends)),
		Totals:      p.Totals,
		FailOpen:    p.FailOpen,
		GeneratedAt: p.GeneratedAt.Format(time.RFC3339),
		At:          p.GeneratedAt,
		Chart:       c,
	}
	for i, b := range p.Backends {
		sv.Rows[i] = statusRow{B: b, Color: colors[i]}
	}
	return sv
}
