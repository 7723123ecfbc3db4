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

// TestReplayBudgetHasAFloor checks the floor WithRetries documents ("every
// request adds a fifth of a replay to (a floor of 3, at most 100 saved)"):
// after a wave of failures has spent the budget, a failing GET is still
// replayed, the budget holding at least 3. The floor is only where the
// budget starts: spent, it allows a replay per 5 requests, and a quiet
// service whose backend crashed fails 4 GETs in 5.
func TestReplayBudgetHasAFloor(t *testing.T) {
	fp := newFaultPool(t, "reset", &barrier{}, backend.WithEjection(backend.Ejection{}))
	h, err := sticky.New(fp.set, newCookie(t))
	require.NoError(t, err)
	base := front(t, h)
	for range 10 { // spends the budget: 3, plus 2 for the 10 requests
		get(t, newClient(t, false), base+"/fault")
	}
	for i := range 3 {
		before := fp.executed.Load()
		assert.Equal(t, http.StatusBadGateway, get(t, newClient(t, false), base+"/fault").status)
		assert.Equal(t, int32(2), fp.executed.Load()-before, "executions of failing GET %d after the wave: not replayed", i)
	}
}
