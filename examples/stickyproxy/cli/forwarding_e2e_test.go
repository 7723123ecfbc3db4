package cli

import (
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestEndToEndUntrustedForwardingHeaders checks that a client outside
// -trusted-proxies cannot pass forwarding headers of its own to the
// backend: the README says "Everyone else's forwarding headers are
// replaced", and application frameworks believe more than the four the
// proxy rewrites (Rack's ssl? reads X-Forwarded-Ssl and
// X-Forwarded-Scheme, Tomcat's RemoteIpValve and Symfony read
// X-Forwarded-Port, nginx's realip and many apps read X-Real-IP), trusting
// them because they come from the proxy's address. Each header the client
// sends must reach the backend removed or replaced, never as the client
// wrote it.
func TestEndToEndUntrustedForwardingHeaders(t *testing.T) {
	var mu sync.Mutex
	var seen http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		seen = r.Header.Clone()
	}))
	t.Cleanup(srv.Close)
	p := startProxy(t, "-key", testKey, "-backends", "app="+srv.URL, "-trusted-proxies", "127.0.0.2/32")

	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.3")}}
	tr := &http.Transport{DialContext: d.DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	for _, tc := range []struct{ header, forged string }{
		{"X-Forwarded-Port", "443"},
		{"X-Forwarded-Ssl", "on"},
		{"X-Forwarded-Scheme", "https"},
		{"X-Real-Ip", "198.51.100.7"},
	} {
		t.Run(tc.header, func(t *testing.T) {
			req := get(t, p.url+"/")
			req.Header.Set(tc.header, tc.forged)
			resp := do(t, &http.Client{Transport: tr}, req)
			require.Equal(t, http.StatusOK, resp.status)

			mu.Lock()
			defer mu.Unlock()
			assert.NotEqual(t, tc.forged, seen.Get(tc.header), "%s from an untrusted client reached the backend", tc.header)
		})
	}
}
