package metrics

import (
	"encoding/json"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/event"
)

// done returns a Done event about the backend id.
func done(id string, status int, elapsed time.Duration) event.Event {
	return event.Event{Kind: event.Done, Backend: id, Placement: event.Picked, Status: status, Header: elapsed / 2, Elapsed: elapsed}
}

// TestRequestDurationHistogram counts requests of known durations, 50 ms
// and 200 ms, into the buckets that hold them, in the exposition and the
// expvar.
func TestRequestDurationHistogram(t *testing.T) {
	set := newSet(t, "app1", "app2")
	r := newRecorder(t, set)
	r.Observe(done("app1", 200, 50*time.Millisecond))
	r.Observe(done("app1", 200, 200*time.Millisecond))
	r.Observe(done("app1", 200, 200*time.Millisecond))

	_, body := scrape(t, r.Metrics(), "/metrics")
	p := parseExposition(t, body)
	tests := []struct {
		backend, le string
		want        float64
	}{
		{"app1", "0.005", 0},
		{"app1", "0.025", 0},
		{"app1", "0.05", 1}, // le is inclusive: 50 ms is in it
		{"app1", "0.1", 1},
		{"app1", "0.25", 3},
		{"app1", "0.5", 3},
		{"app1", "10", 3},
		{"app1", "+Inf", 3},
		{"app2", "0.05", 0},
		{"app2", "+Inf", 0},
	}
	for _, tt := range tests {
		t.Run(tt.backend+"/le="+tt.le, func(t *testing.T) {
			assert.Equal(t, tt.want, p.get(t, "affinity_request_duration_seconds_bucket", "backend", tt.backend, "le", tt.le))
		})
	}
	assert.Equal(t, 3.0, p.get(t, "affinity_request_duration_seconds_count", "backend", "app1"))
	assert.InDelta(t, 0.45, p.get(t, "affinity_request_duration_seconds_sum", "backend", "app1"), 1e-9)
	assert.Equal(t, 0.0, p.get(t, "affinity_request_duration_seconds_count", "backend", "app2"))
	assert.Equal(t, 0.0, p.get(t, "affinity_request_duration_seconds_sum", "backend", "app2"))
	for _, f := range p.families {
		if f.name == "affinity_request_duration_seconds" {
			assert.Equal(t, "histogram", f.typ)
			assert.Equal(t, 2*(numBuckets+2), f.samples, "buckets, sum and count for each backend")
		}
	}
	assert.Regexp(t, regexp.MustCompile(`(?m)^affinity_request_duration_seconds_bucket\{backend="app1",le="0.005"\} 0\n(.*le=.*\n){11}affinity_request_duration_seconds_sum\{backend="app1"\} 0.45\naffinity_request_duration_seconds_count\{backend="app1"\} 3$`), body,
		"buckets in increasing order, then sum and count")

	var v struct {
		Backends map[string]struct {
			Duration struct {
				Buckets map[string]int64
				Sum     float64
				Count   int64
			} `json:"request_duration_seconds"`
		}
	}
	require.NoError(t, json.Unmarshal([]byte(r.Expvar().String()), &v))
	h := v.Backends["app1"].Duration
	assert.Equal(t, int64(1), h.Buckets["0.05"])
	assert.Equal(t, int64(3), h.Buckets["0.25"])
	assert.Equal(t, int64(3), h.Buckets["+Inf"])
	assert.Len(t, h.Buckets, numBuckets)
	assert.InDelta(t, 0.45, h.Sum, 1e-9)
	assert.Equal(t, int64(3), h.Count)
}

// TestBucketIndex puts durations at and around the bounds in their
// buckets.
func TestBucketIndex(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{
		{0, "0.005"},
		{-time.Second, "0.005"}, // counted as 0 by observe; here only the bucket
		{5 * time.Millisecond, "0.005"},
		{5*time.Millisecond + 1, "0.01"},
		{time.Second, "1"},
		{10 * time.Second, "10"},
		{10*time.Second + 1, "+Inf"},
		{time.Hour, "+Inf"},
	} {
		t.Run(tt.d.String(), func(t *testing.T) {
			assert.Equal(t, tt.want, bucketLabels[bucketIndex(tt.d)])
		})
	}
}

// TestResponsesByClass counts responses by status class; a Done without
// a status (the client left first) is in no class, but its duration is in
// the histogram.
func TestResponsesByClass(t *testing.T) {
	set := newSet(t, "app1")
	r := newRecorder(t, set)
	for _, status := range []int{101, 200, 204, 200, 302, 404, 499, 500, 503, 502, 0, 600, 99} {
		r.Observe(done("app1", status, time.Millisecond))
	}
	r.Observe(done("", 502, time.Millisecond)) // no backend took it: not per backend

	_, body := scrape(t, r.Metrics(), "/metrics")
	p := parseExposition(t, body)
	for _, tt := range []struct {
		class string
		want  float64
	}{
		{"1xx", 1}, {"2xx", 3}, {"3xx", 1}, {"4xx", 2}, {"5xx", 3},
	} {
		t.Run(tt.class, func(t *testing.T) {
			assert.Equal(t, tt.want, p.get(t, "affinity_responses_total", "backend", "app1", "class", tt.class))
		})
	}
	assert.Equal(t, 10.0, p.sum("affinity_responses_total"), "no other class")
	assert.Equal(t, 13.0, p.get(t, "affinity_request_duration_seconds_count", "backend", "app1"))

	var v struct {
		Backends map[string]struct{ Responses map[string]int64 }
	}
	require.NoError(t, json.Unmarshal([]byte(r.Expvar().String()), &v))
	assert.Equal(t, map[string]int64{"1xx": 1, "2xx": 3, "3xx": 1, "4xx": 2, "5xx": 3}, v.Backends["app1"].Responses)
}

// TestQuantile estimates quantiles from known samples, by linear
// interpolation within their buckets.
func TestQuantile(t *testing.T) {
	for _, tt := range []struct {
		name    string
		samples []time.Duration
		q       float64
		want    time.Duration
	}{
		// Rank 0.5 of one sample in (25 ms, 50 ms]: halfway.
		{"one sample", []time.Duration{40 * time.Millisecond}, 0.5, 37500 * time.Microsecond},
		// 100 samples: 60 in (0, 5 ms], 40 in (250 ms, 500 ms]. The
		// median is rank 50 of the first bucket's 60; p99, rank 99, is
		// the 39th of the 40 in (250 ms, 500 ms].
		{"p50 of two groups", repeat(60, 2*time.Millisecond, 40, 300*time.Millisecond), 0.5, 5 * time.Millisecond * 50 / 60},
		{"p99 of two groups", repeat(60, 2*time.Millisecond, 40, 300*time.Millisecond), 0.99, 250*time.Millisecond + 250*time.Millisecond*39/40},
		{"beyond the last bound", []time.Duration{time.Minute}, 0.99, 10 * time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l := newLatency()
			for _, d := range tt.samples {
				l.observe(d, 200, 100)
			}
			v := l.load(100)
			got, ok := v.quantile(tt.q)
			require.True(t, ok)
			assert.InDelta(t, float64(tt.want), float64(got), float64(time.Microsecond))
		})
	}
	t.Run("none", func(t *testing.T) {
		v := newLatency().load(100)
		_, ok := v.quantile(0.5)
		assert.False(t, ok)
	})
}

// repeat returns n1 copies of d1 then n2 of d2.
func repeat(n1 int, d1 time.Duration, n2 int, d2 time.Duration) []time.Duration {
	var out []time.Duration
	for range n1 {
		out = append(out, d1)
	}
	for range n2 {
		out = append(out, d2)
	}
	return out
}

// TestStatusLatency shows the last minute's quantiles and 5xx rate, per
// backend and in the totals, and forgets what is older than a minute.
func TestStatusLatency(t *testing.T) {
	set := newSet(t, "a", "b")
	r := newRecorder(t, set)
	clk := withClock(r)
	r.Observe(done("a", 500, 8*time.Second)) // older than the minute by the time it is read
	clk.add(2 * time.Second)
	for range 3 {
		r.Observe(done("a", 200, 40*time.Millisecond))
	}
	r.Observe(done("a", 502, 40*time.Millisecond))
	clk.add(59 * time.Second)

	type latency struct {
		P50       *float64 `json:"p50_seconds"`
		P99       *float64 `json:"p99_seconds"`
		Responses int64    `json:"responses_last_minute"`
		Errors5xx int64    `json:"5xx_last_minute"`
		Rate5xx   float64  `json:"5xx_rate"`
	}
	var page struct {
		Backends []struct {
			ID string
			latency
		}
		Totals latency
	}
	_, body := scrape(t, r.Status(), "/status?format=json")
	require.NoError(t, json.Unmarshal([]byte(body), &page))
	require.Len(t, page.Backends, 2)
	a, b := page.Backends[0], page.Backends[1]
	require.Equal(t, "a", a.ID)
	// Four samples in (25 ms, 50 ms]: p50 is rank 2 of 4, p99 rank 3.96.
	require.NotNil(t, a.P50)
	assert.InDelta(t, 0.0375, *a.P50, 1e-9)
	require.NotNil(t, a.P99)
	assert.InDelta(t, 0.025+0.025*3.96/4, *a.P99, 1e-9)
	assert.Equal(t, int64(4), a.Responses)
	assert.Equal(t, int64(1), a.Errors5xx)
	assert.InDelta(t, 0.25, a.Rate5xx, 1e-9)
	assert.Nil(t, b.P50, "no request in the minute")
	assert.Nil(t, b.P99)
	assert.Zero(t, b.Rate5xx)
	assert.Equal(t, a.latency, page.Totals, "b adds nothing")

	r.Observe(done("b", 503, 300*time.Millisecond))
	_, body = scrape(t, r.Status(), "/status?format=json")
	require.NoError(t, json.Unmarshal([]byte(body), &page))
	assert.Equal(t, int64(5), page.Totals.Responses)
	assert.Equal(t, int64(2), page.Totals.Errors5xx)
	assert.InDelta(t, 0.4, page.Totals.Rate5xx, 1e-9)
	require.NotNil(t, page.Totals.P99)
	assert.InDelta(t, 0.25+0.25*(4.95-4), *page.Totals.P99, 1e-9, "rank 4.95 of 5, in the one sample of (250 ms, 500 ms]")

	resp, html := scrape(t, r.Status(), "/status")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Regexp(t, `<tr data-backend="a">.*<td class="n p50">37.5 ms</td><td class="n p99">49.8 ms</td><td class="n rate5xx">25.0%</td></tr>`, html)
	assert.Regexp(t, `<tr data-backend="b">.*<td class="n p50">375.0 ms</td><td class="n p99">497.5 ms</td><td class="n rate5xx">100.0%</td></tr>`, html)
	assert.Regexp(t, `<tr id="totals"><th>Total</th>.*<td class="n rate5xx">40.0%</td></tr>`, html)
}

// TestObserveDoneAllocs checks that a Done event about a tracked backend
// allocates nothing.
func TestObserveDoneAllocs(t *testing.T) {
	r := newRecorder(t, newSet(t, "a"))
	e := done("a", 200, 30*time.Millisecond)
	r.Observe(e) // first sight
	assert.Zero(t, testing.AllocsPerRun(100, func() { r.Observe(e) }))
}
