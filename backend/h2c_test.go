package backend_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
)

// serveH2C starts a loopback backend that runs h and speaks only HTTP/2
// without TLS, as a gRPC server does, until the test ends.
func serveH2C(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

func TestHealthCheckH2C(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		want   backend.State
	}{
		{"passing", http.StatusOK, backend.Healthy},
		{"failing", http.StatusServiceUnavailable, backend.Unhealthy},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var probes, http1 atomic.Int64
			srv := serveH2C(t, func(w http.ResponseWriter, r *http.Request) {
				if r.ProtoMajor != 2 {
					http1.Add(1)
				}
				probes.Add(1)
				w.WriteHeader(tc.status)
			})
			set, err := backend.NewSet(nil)
			require.NoError(t, err)
			b := addBackend(t, set, "a", "h2c://"+strings.TrimPrefix(srv.URL, "http://"))
			checkHealth(t, set, backend.HealthCheck{Interval: fastInterval, Fall: 2})

			waitCount(t, &probes, 4, "probes answered")
			waitState(t, b, tc.want)
			assert.Zero(t, http1.Load(), "probes that were not HTTP/2")
		})
	}
}

func TestHealthCheckHTTPToH2COnlyFails(t *testing.T) {
	srv := serveH2C(t, func(w http.ResponseWriter, r *http.Request) {})
	set, err := backend.NewSet(nil)
	require.NoError(t, err)
	b := addBackend(t, set, "a", srv.URL) // http://: HTTP/1.1, which the server does not speak
	checkHealth(t, set, backend.HealthCheck{Interval: fastInterval, Fall: 2})
	waitState(t, b, backend.Unhealthy, "an HTTP/1.1 probe of a server that speaks only h2c")
}
