package metrics

import (
	"encoding/json"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/internal/accounting"
)

// TestStatusHealth checks that the status page says why each backend is
// out of rotation and since when, when an ejected one is tried next, and
// how long a drain has left, in JSON and in HTML.
func TestStatusHealth(t *testing.T) {
	const (
		backoff = time.Hour
		timeout = 2 * time.Hour
	)
	set, err := backend.NewSet([]backend.Config{
		{ID: "draining", URL: "http://127.0.0.1:1"},
		{ID: "ejected", URL: "http://127.0.0.1:2"},
		{ID: "fine", URL: "http://127.0.0.1:3"},
		{ID: "operator", URL: "http://127.0.0.1:4"},
	}, backend.WithEjection(backend.Ejection{After: 2, Base: backoff, Max: backoff}))
	require.NoError(t, err)
	before := time.Now()
	ej := set.Snapshot().Lookup("ejected")
	accounting.ReportFailure(ej)
	accounting.ReportFailure(ej)
	require.NoError(t, set.SetState("operator", backend.Unhealthy))
	_, err = set.Drain("draining", timeout)
	require.NoError(t, err)
	d := set.Snapshot().Lookup("draining")
	require.True(t, accounting.Acquire(d), "a request in flight on the draining backend")
	t.Cleanup(func() { accounting.Release(d) })
	after := time.Now()
	r := newRecorder(t, set)

	_, body := scrape(t, r.Status(), "/status?format=json")
	var page struct {
		Backends []struct {
			ID, State, Reason string
			InFlight          int64      `json:"inflight"`
			Since             *time.Time `json:"since"`
			NextTry           *time.Time `json:"next_try"`
			DrainDeadline     *time.Time `json:"drain_deadline"`
			DrainLeft         *float64   `json:"drain_left_seconds"`
		}
	}
	require.NoError(t, json.Unmarshal([]byte(body), &page))
	require.Len(t, page.Backends, 4)

	// within reports whether t is set and lies between from and to.
	within := func(t *time.Time, from, to time.Time) bool {
		return t != nil && !t.Before(from) && !t.After(to)
	}
	_, html := scrape(t, r.Status(), "/status?format=html")
	for i, want := range []struct {
		id, state, reason string
		inflight          int64
		nextTry, drain    bool
		html              []string // in the backend's state cell
	}{
		{id: "draining", state: "draining", reason: "drain", inflight: 1, drain: true,
			html: []string{`<div class="why">drain</div>`, `<div class="since">since `, `<div class="drain">2h0m0s left, 1 in flight</div>`}},
		{id: "ejected", state: "unhealthy", reason: "ejected: 2 failures in a row", nextTry: true,
			html: []string{`<div class="why">ejected: 2 failures in a row</div>`, `<div class="next-try">next try in 1h0m0s</div>`}},
		{id: "fine", state: "healthy"},
		{id: "operator", state: "unhealthy", reason: "operator",
			html: []string{`<div class="why">operator</div>`, `<div class="since">since `}},
	} {
		t.Run(want.id, func(t *testing.T) {
			b := page.Backends[i]
			require.Equal(t, want.id, b.ID)
			assert.Equal(t, want.state, b.State)
			assert.Equal(t, want.reason, b.Reason)
			assert.Equal(t, want.inflight, b.InFlight)
			if want.reason == "" {
				assert.Nil(t, b.Since, "since, for a backend healthy since it joined")
			} else {
				assert.True(t, within(b.Since, before.Truncate(time.Second), after), "since %v", b.Since)
			}
			if want.nextTry {
				assert.True(t, within(b.NextTry, before.Add(backoff), after.Add(backoff)), "next_try %v", b.NextTry)
			} else {
				assert.Nil(t, b.NextTry)
			}
			if want.drain {
				assert.True(t, within(b.DrainDeadline, before.Add(timeout), after.Add(timeout)), "drain_deadline %v", b.DrainDeadline)
				require.NotNil(t, b.DrainLeft)
				assert.InDelta(t, timeout.Seconds(), *b.DrainLeft, time.Minute.Seconds())
			} else {
				assert.Nil(t, b.DrainDeadline)
				assert.Nil(t, b.DrainLeft)
			}

			row := regexp.MustCompile(`<tr data-backend="` + want.id + `">.*?<td class="state">(.*?)</td>`).FindStringSubmatch(html)
			require.NotNil(t, row, "no state cell")
			for _, s := range want.html {
				assert.Contains(t, row[1], s)
			}
			if len(want.html) == 0 {
				assert.NotContains(t, row[1], "<div", "details for a healthy backend")
			}
		})
	}
}
