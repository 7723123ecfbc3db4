package backend_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/internal/accounting"
)

// TestHealthInfo checks that Backend.Health says why a backend left
// rotation, since when, when an ejected one is tried next and when a
// drain ends, for each thing that can take it out.
func TestHealthInfo(t *testing.T) {
	const (
		backoff = time.Hour
		timeout = 2 * time.Hour
		window  = 40 * time.Millisecond
	)
	opts := []backend.Option{
		backend.WithEjection(backend.Ejection{After: 3, Base: backoff, Max: backoff}),
		backend.WithStallTimeout(window),
	}
	for _, tc := range []struct {
		name   string
		act    func(t *testing.T, set *backend.Set) *backend.Backend // takes a backend out, returns it
		state  backend.State
		reason string
		retry  bool // Retry is the back-off from the change
		drain  bool // DrainDeadline is the drain's timeout from the change
		probed bool // health checks go on taking it out
	}{
		{
			name: "health check failure",
			act: func(t *testing.T, set *backend.Set) *backend.Backend {
				srv := serve(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
				b := addBackend(t, set, "probed", srv.URL)
				checkHealth(t, set, backend.HealthCheck{Interval: 10 * time.Millisecond, Fall: 1})
				waitState(t, b, backend.Unhealthy)
				return b
			},
			state: backend.Unhealthy, reason: "health check: status 503, want 200..399", probed: true,
		},
		{
			name: "health check connection refused: no URL",
			act: func(t *testing.T, set *backend.Set) *backend.Backend {
				srv := httptest.NewServer(http.NotFoundHandler())
				srv.Close() // connection refused
				b := addBackend(t, set, "dead", srv.URL)
				checkHealth(t, set, backend.HealthCheck{Interval: 10 * time.Millisecond, Fall: 1})
				waitState(t, b, backend.Unhealthy)
				return b
			},
			state: backend.Unhealthy, reason: "health check: dial tcp", probed: true, // then the addresses and the refusal
		},
		{
			name: "ejection after failures",
			act: func(t *testing.T, set *backend.Set) *backend.Backend {
				a := set.Snapshot().Lookup("a")
				for range 3 {
					accounting.ReportFailure(a)
				}
				return a
			},
			state: backend.Unhealthy, reason: "ejected: 3 failures in a row", retry: true,
		},
		{
			name: "ejection after failures with their causes",
			act: func(t *testing.T, set *backend.Set) *backend.Backend {
				a := set.Snapshot().Lookup("a")
				accounting.ReportFailureOf(a, accounting.Failure{Cause: "status 502", Client: 1, Reached: true})
				accounting.ReportFailure(a) // no cause: the last one given stands
				accounting.ReportFailureOf(a, accounting.Failure{Cause: "dial tcp 127.0.0.1:9: connect: connection refused", Client: 1})
				return a
			},
			state: backend.Unhealthy, reason: "ejected: 3 failures in a row, the last: dial tcp 127.0.0.1:9: connect: connection refused", retry: true,
		},
		{
			name: "stall",
			act: func(t *testing.T, set *backend.Set) *backend.Backend {
				a := set.Snapshot().Lookup("a")
				var client uint64
				require.Eventually(t, func() bool {
					client++ // each request its own client's
					accounting.ReportAbandoned(a, window, client)
					return a.State() == backend.Unhealthy
				}, checkWait, window/4)
				return a
			},
			state: backend.Unhealthy, reason: "stalled: requests unanswered", retry: true,
		},
		{
			name: "operator SetState unhealthy",
			act: func(t *testing.T, set *backend.Set) *backend.Backend {
				require.NoError(t, set.SetState("a", backend.Unhealthy))
				return set.Snapshot().Lookup("a")
			},
			state: backend.Unhealthy, reason: "operator",
		},
		{
			name: "operator SetState draining",
			act: func(t *testing.T, set *backend.Set) *backend.Backend {
				require.NoError(t, set.SetState("a", backend.Draining))
				return set.Snapshot().Lookup("a")
			},
			state: backend.Draining, reason: "operator",
		},
		{
			name: "drain with a deadline",
			act: func(t *testing.T, set *backend.Set) *backend.Backend {
				_, err := set.Drain("a", timeout)
				require.NoError(t, err)
				return set.Snapshot().Lookup("a")
			},
			state: backend.Draining, reason: "drain", drain: true,
		},
		{
			name: "config says shutting down",
			act: func(t *testing.T, set *backend.Set) *backend.Backend {
				b, err := set.Add(backend.Config{ID: "leaving", URL: "http://127.0.0.1:9", Draining: true})
				require.NoError(t, err)
				return b
			},
			state: backend.Draining, reason: "config: shutting down",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set := threeBackends(t, opts...)
			assert.Equal(t, backend.HealthInfo{State: backend.Healthy}, set.Snapshot().Lookup("a").Health(), "a backend that never changed")
			before := time.Now()
			b := tc.act(t, set)
			after := time.Now()
			h := b.Health()
			assert.Equal(t, tc.state, h.State)
			assert.Contains(t, h.Reason, tc.reason)
			assert.NotContains(t, h.Reason, "http://", "the reason holds the URL")
			assert.False(t, h.Since.Before(before) || h.Since.After(after), "Since %v not within the change", h.Since)
			if tc.retry {
				assert.False(t, h.Retry.Before(before.Add(backoff)) || h.Retry.After(after.Add(backoff)), "Retry %v not the back-off from the change", h.Retry)
			} else {
				assert.Zero(t, h.Retry)
			}
			if tc.drain {
				assert.False(t, h.DrainDeadline.Before(before.Add(timeout)) || h.DrainDeadline.After(after.Add(timeout)), "DrainDeadline %v not the timeout from the change", h.DrainDeadline)
			} else {
				assert.Zero(t, h.DrainDeadline)
			}

			// Back to healthy: no reason left, since the recovery.
			require.NoError(t, set.SetState(b.ID(), backend.Healthy))
			if tc.probed {
				return // the health checks take it out again
			}
			h = b.Health()
			assert.Equal(t, backend.Healthy, h.State)
			assert.Empty(t, h.Reason)
			assert.Zero(t, h.Retry)
			assert.Zero(t, h.DrainDeadline)
			assert.False(t, h.Since.Before(after), "Since %v before the recovery", h.Since)
		})
	}
}
