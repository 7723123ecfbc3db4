package sticky_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/sticky"
)

// h2Transport is DefaultTransport, its Proxy kept, trusting srv's certificate.
func h2Transport(srv *httptest.Server) *http.Transport {
	tr := sticky.DefaultTransport()
	tr.TLSClientConfig = srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	return tr
}

// TestHTTP2BackendAtItsStreamLimitIsNotAFailure checks that requests to an
// HTTPS backend speaking HTTP/2 (as DefaultTransport does by default, with
// ForceAttemptHTTP2) that exceed its MaxConcurrentStreams are carried on a
// new connection, as net/http does, rather than failed as replays: none of
// them was sent twice, and the backend answered all it was sent.
func TestHTTP2BackendAtItsStreamLimitIsNotAFailure(t *testing.T) {
	var executed atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		executed.Add(1)
		time.Sleep(200 * time.Millisecond)
		w.Header().Set("X-Proto", r.Proto)
	}))
	srv.EnableHTTP2 = true
	srv.Config.HTTP2 = &http.HTTP2Config{MaxConcurrentStreams: 2}
	srv.StartTLS()
	t.Cleanup(srv.Close)

	set, err := backend.NewSet([]backend.Config{{ID: "app1", URL: srv.URL}})
	require.NoError(t, err)
	h, err := sticky.New(set, newCookie(t), sticky.WithTransport(h2Transport(srv)))
	require.NoError(t, err)
	base := front(t, h)

	// One request first, so that the HTTP/2 connection exists.
	resp, err := http.Get(base + "/")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, "HTTP/2.0", resp.Header.Get("X-Proto"))

	const n = 20
	codes := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			resp, err := http.Get(base + "/")
			if assert.NoError(t, err) {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				codes[i] = resp.StatusCode
			}
		})
	}
	wg.Wait()
	for i, c := range codes {
		assert.Equal(t, http.StatusOK, c, "request %d", i)
	}
	assert.Equal(t, backend.Healthy, set.Snapshot().Lookup("app1").State())
}
