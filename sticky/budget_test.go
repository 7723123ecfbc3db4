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

// tlsTransport is DefaultTransport, its Proxy kept, trusting srv's
// certificate.
func tlsTransport(srv *httptest.Server) *http.Transport {
	tr := sticky.DefaultTransport()
	tr.TLSClientConfig = srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	return tr
}

// TestHTTPSBackendsGetHTTP1 checks that DefaultTransport speaks HTTP/1.1
// to an https:// backend that offers HTTP/2, where net/http's HTTP/2
// would resend requests on its own, and that many requests at once, more
// than the backend's HTTP/2 stream limit, are all answered and fail
// nothing.
func TestHTTPSBackendsGetHTTP1(t *testing.T) {
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
	h, err := sticky.New(set, newCookie(t), sticky.WithTransport(tlsTransport(srv)))
	require.NoError(t, err)
	base := front(t, h)

	const n = 20
	protos := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			resp, err := http.Get(base + "/")
			if assert.NoError(t, err) {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				assert.Equal(t, http.StatusOK, resp.StatusCode, "request %d", i)
				protos[i] = resp.Header.Get("X-Proto")
			}
		})
	}
	wg.Wait()
	for i, p := range protos {
		assert.Equal(t, "HTTP/1.1", p, "request %d", i)
	}
	assert.Equal(t, int32(n), executed.Load(), "executions")
	assert.Equal(t, backend.Healthy, set.Snapshot().Lookup("app1").State())
}

// TestReplayBudgetAfterAWave checks the replay budget's arithmetic: it
// starts with 3 replays, each request adds a fifth of one, so once a wave
// of failures has spent it, one failing GET in 5 is replayed.
func TestReplayBudgetAfterAWave(t *testing.T) {
	fp := newFaultPool(t, "reset", &barrier{}, backend.WithEjection(backend.Ejection{}))
	h, err := sticky.New(fp.set, newCookie(t))
	require.NoError(t, err)
	base := front(t, h)
	replayed := func(n int) (r []int) {
		for i := range n {
			before := fp.executed.Load()
			assert.Equal(t, http.StatusBadGateway, get(t, newClient(t, false), base+"/fault").status)
			if fp.executed.Load()-before == 2 {
				r = append(r, i)
			}
		}
		return r
	}
	// 3 to start, 1 more for the fifths of requests 1 to 5, 1 for 6 to 10.
	assert.Equal(t, []int{0, 1, 2, 4, 9}, replayed(10), "the wave's replays")
	assert.Equal(t, []int{4}, replayed(5), "after the wave: a replay per 5 requests")
}
