package cli

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestEndToEndStallTimeout checks that -stall-timeout sets the stall
// window: a backend that answers none of three waiting requests, from
// three client addresses, for 200ms is ejected as hung, which the default
// window (5s) would not do so soon.
func TestEndToEndStallTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-release
		}
	}))
	t.Cleanup(srv.Close)
	p := startProxy(t, "-key", testKey, "-backends", "app="+srv.URL, "-admin", "127.0.0.1:0", "-stall-timeout", "200ms")
	t.Cleanup(func() { close(release) }) // first: the proxy's shutdown and srv.Close wait for the requests
	require.Equal(t, "healthy", backendState(t, p, "app"))

	for i := range 3 {
		c := newClientFrom(t, 2+i)
		go func() {
			if res, err := c.Get(p.url + "/slow"); err == nil {
				res.Body.Close()
			}
		}()
	}
	assert.Eventually(t, func() bool { return backendState(t, p, "app") == "unhealthy" },
		4*time.Second, 20*time.Millisecond, "not ejected as hung")
}
