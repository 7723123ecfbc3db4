package cli

import (
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBackendCA runs the proxy in front of an https backend whose
// certificate a private authority, made by the test, signed: with
// -backend-ca naming that authority the backend is reached, by requests
// and by health checks; without, it cannot be, as if its connection were
// refused: a request alone gets 502, and with another backend it is sent
// there, the failure counted against the https one.
func TestBackendCA(t *testing.T) {
	ca := newTestCA(t)
	caPath := caFile(t, ca, t.TempDir())
	var probes atomic.Int64
	secure := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			probes.Add(1)
		}
		w.Header().Set("X-Served-By", "secure")
		fmt.Fprint(w, "over TLS")
	}))
	secure.TLS = &tls.Config{Certificates: []tls.Certificate{serverCert(t, ca)}}
	secure.Config.ErrorLog = log.New(io.Discard, "", 0) // the handshakes that fail on purpose
	secure.StartTLS()
	t.Cleanup(secure.Close)
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Served-By", "plain")
	}))
	t.Cleanup(plain.Close)
	require.True(t, strings.HasPrefix(secure.URL, "https://127.0.0.1:"), secure.URL)

	t.Run("with -backend-ca", func(t *testing.T) {
		p := startProxy(t, "-backends", "secure="+secure.URL, "-backend-ca", caPath,
			"-health-path", "/health", "-health-interval", "20ms", "-admin", "127.0.0.1:0")
		for range 3 {
			status, by, body := send(t, newClient(t), p.url+"/", nil)
			assert.Equal(t, http.StatusOK, status, body)
			assert.Equal(t, "secure", by)
			assert.Equal(t, "over TLS", body)
		}
		require.Eventually(t, func() bool { return probes.Load() >= 4 }, 10*time.Second, 10*time.Millisecond, "health checks reaching the backend")
		_, _, list := send(t, newClient(t), p.admin+"/backends", nil)
		assert.Contains(t, list, `"state":"healthy"`, "after the health checks")
	})
	t.Run("without: alone", func(t *testing.T) {
		p := startProxy(t, "-backends", "secure="+secure.URL)
		status, _, body := send(t, newClient(t), p.url+"/", nil)
		assert.Equal(t, http.StatusBadGateway, status)
		assert.Equal(t, "502 bad gateway: the backend could not be reached\n", body)
		assert.Contains(t, p.stderr.String(), "certificate signed by unknown authority", "the log says why")
	})
	t.Run("without: retried on another", func(t *testing.T) {
		p := startProxy(t, "-backends", "secure="+secure.URL+",plain="+plain.URL, "-admin", "127.0.0.1:0")
		for range 4 { // cookie-less clients: least connections alternates, half go to secure first
			status, by, body := send(t, newClient(t), p.url+"/", nil)
			assert.Equal(t, http.StatusOK, status, body)
			assert.Equal(t, "plain", by)
		}
		_, _, metrics := send(t, newClient(t), p.admin+"/metrics", nil)
		assert.Contains(t, metrics, "\naffinity_failures_total{backend=\"secure\"} 2\n")
		assert.Contains(t, metrics, "\naffinity_failures_total{backend=\"plain\"} 0\n")
		assert.Contains(t, metrics, "\naffinity_retries_from_total{backend=\"secure\"} 2\n")
	})
}
