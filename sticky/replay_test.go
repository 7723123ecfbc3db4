package sticky_test

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/sticky"
)

// faultPool is three backends on 127.0.0.1 that count every request
// they are sent on /fault and fail it there: by resetting its connection
// ("reset"), or by dying, as a process the request crashed would
// ("crash"). Other paths wait at bar and answer.
type faultPool struct {
	set      *backend.Set
	executed atomic.Int32
}

func newFaultPool(t *testing.T, fault string, bar *barrier, opts ...backend.Option) *faultPool {
	t.Helper()
	fp := &faultPool{}
	var cfgs []backend.Config
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("app%d", i)
		var srv *httptest.Server
		srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/fault" {
				bar.wait()
				w.Header().Set("X-Served-By", name)
				return
			}
			fp.executed.Add(1)
			conn, _, err := http.NewResponseController(w).Hijack()
			if !assert.NoError(t, err) {
				return
			}
			assert.NoError(t, conn.(*net.TCPConn).SetLinger(0)) // close sends RST
			conn.Close()
			if fault == "crash" {
				srv.Listener.Close()
				srv.CloseClientConnections()
			}
		}))
		t.Cleanup(srv.Close)
		cfgs = append(cfgs, backend.Config{ID: name, URL: srv.URL})
	}
	set, err := backend.NewSet(cfgs, opts...)
	require.NoError(t, err)
	fp.set = set
	return fp
}

// warm sends n requests at once through base, so that the handler's
// transport keeps n idle connections, n/3 to each backend.
func warm(t *testing.T, base string, bar *barrier, n int) {
	t.Helper()
	bar.reset(n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			w := get(t, newClient(t, false), base+"/")
			assert.Equal(t, http.StatusOK, w.status)
		})
	}
	wg.Wait()
}

// TestAFailingRequestIsExecutedAtMostTwice checks that a GET that reached
// its backend and failed there is sent to one other backend, once, and to
// no other connection of either: not by the handler's retries, and not by
// net/http's Transport, which replays a GET on each idle connection of
// its pool when a reused one fails under it.
func TestAFailingRequestIsExecutedAtMostTwice(t *testing.T) {
	for _, tc := range []struct {
		fault string
		warm  int // idle connections before the request
		opts  []sticky.Option
		want  int32
	}{
		{"crash", 0, nil, 2},
		{"crash", 60, nil, 2},
		{"reset", 0, nil, 2},
		{"reset", 60, nil, 2},
		// No retries: the GET met a reused connection, and is sent again
		// to its own backend, once, as net/http's Transport would send it.
		{"reset", 60, []sticky.Option{sticky.WithRetries(0, 0)}, 2},
		{"reset", 0, []sticky.Option{sticky.WithRetries(0, 0)}, 1},
	} {
		t.Run(fmt.Sprintf("%s, %d idle connections, %d options", tc.fault, tc.warm, len(tc.opts)), func(t *testing.T) {
			bar := &barrier{}
			fp := newFaultPool(t, tc.fault, bar, backend.WithEjection(backend.Ejection{}))
			h, err := sticky.New(fp.set, newCookie(t), tc.opts...)
			require.NoError(t, err)
			base := front(t, h)
			warm(t, base, bar, tc.warm)

			w := get(t, newClient(t, false), base+"/fault")
			assert.Equal(t, http.StatusBadGateway, w.status)
			assert.Equal(t, tc.want, fp.executed.Load(), "executions of one GET, at all backends")
		})
	}
}

// TestReplaysStayWithinTheBudget checks that a wave of requests failing
// at their backends is replayed within the replay budget, a fifth of the
// requests and a floor of 3, not once per request, and that requests
// that never reached a backend are still resent however spent it is.
func TestReplaysStayWithinTheBudget(t *testing.T) {
	bar := &barrier{}
	fp := newFaultPool(t, "reset", bar, backend.WithEjection(backend.Ejection{}))
	h, err := sticky.New(fp.set, newCookie(t))
	require.NoError(t, err)
	base := front(t, h)

	const wave = 50
	var wg sync.WaitGroup
	for range wave {
		wg.Go(func() {
			assert.Equal(t, http.StatusBadGateway, get(t, newClient(t, false), base+"/fault").status)
		})
	}
	wg.Wait()
	replays := int(fp.executed.Load()) - wave
	assert.LessOrEqual(t, replays, 3+wave/5, "replays of %d failing requests", wave)
	assert.Positive(t, replays, "no request was replayed")
}

// TestResendsSpendNoBudget checks that requests whose backend refused the
// connection are tried on other backends, up to the handler's retries,
// however many of them there are: nothing reached a backend.
func TestResendsSpendNoBudget(t *testing.T) {
	live := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Served-By", "live")
	}))
	t.Cleanup(live.Close)
	refused := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		require.NoError(t, l.Close())
		return "http://" + l.Addr().String()
	}
	set, err := backend.NewSet([]backend.Config{
		{ID: "dead1", URL: refused()}, {ID: "dead2", URL: refused()}, {ID: "live", URL: live.URL},
	}, backend.WithEjection(backend.Ejection{})) // no ejection: every request meets a dead one
	require.NoError(t, err)
	ck := newCookie(t)
	h, err := sticky.New(set, ck)
	require.NoError(t, err)
	base := front(t, h)

	bound := &http.Cookie{Name: ck.Name(), Value: ck.Issue("dead1")}
	for i := range 30 {
		w := get(t, newClient(t, false), base+"/", bound)
		assert.Equal(t, http.StatusOK, w.status, "request %d", i)
		assert.Equal(t, "live", w.server, "request %d", i)
	}
}
