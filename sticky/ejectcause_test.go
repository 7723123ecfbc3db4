package sticky_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/sticky"
)

// TestEjectionSaysTheLastFailure checks that a backend ejected by the
// handler's failure reports says why in its health: the last failed
// request's transport error, or the status counted as a failure.
func TestEjectionSaysTheLastFailure(t *testing.T) {
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(failing.Close)
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close() // connection refused

	for _, tc := range []struct {
		name, url, want string
	}{
		{"a failing status", failing.URL, "ejected: 2 failures in a row, the last: status 503"},
		{"an unreachable backend", gone.URL, "connection refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set, err := backend.NewSet([]backend.Config{{ID: "a", URL: tc.url}},
				backend.WithEjection(backend.Ejection{After: 2, Base: time.Hour, Max: time.Hour}))
			require.NoError(t, err)
			h, err := sticky.New(set, newCookie(t), sticky.WithRetries(0, 0),
				sticky.WithFailureStatus(func(code int) bool { return code >= 500 }))
			require.NoError(t, err)
			base := front(t, h)
			a := set.Snapshot().Lookup("a")
			for i := range 2 { // from two clients: one client's failures that reached a alone eject nothing
				resp, err := peerClient(t, false, 1+i).Get(base + "/")
				require.NoError(t, err)
				resp.Body.Close()
			}
			require.Equal(t, backend.Unhealthy, a.State())
			info := a.Health()
			assert.Contains(t, info.Reason, tc.want)
			assert.NotContains(t, info.Reason, "http://", "the reason holds the URL")
		})
	}
}
