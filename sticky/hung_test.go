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
	"github.com/affinitylb/affinity/internal/demoapp"
	"github.com/affinitylb/affinity/sticky"
)

// try sends one GET with c and returns the status and the server that
// answered, or the error (a client timeout, when the backend hangs).
func try(c *http.Client, u string) (int, string, error) {
	resp, err := c.Get(u)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("X-Served-By"), err
}

// A backend that takes requests and answers none is ejected by the stall
// rule, whether its clients give up or wait, and its clients go
// elsewhere; one that answers within the window stays, as does one whose
// clients hang up before a quarter of it.
func TestHungBackendIsEjectedSlowOneIsNot(t *testing.T) {
	const window = time.Second
	hang := time.Duration(0)
	for _, tc := range []struct {
		name     string
		delay    time.Duration // how long app3 takes to answer once it turns; hang: forever
		every    time.Duration // if set, app3 answers all it holds at once, this often, in place of delay
		window   time.Duration // the set's stall window; 0: the default
		patience time.Duration // the clients' timeout
		eject    bool
	}{
		{"hung; clients give up", hang, 0, window, 300 * time.Millisecond, true},
		{"hung; clients wait", hang, 0, window, time.Minute, true},
		{"hung, with the defaults; clients give up: out within 15 s", hang, 0, 0, 2 * time.Second, true},
		{"hung, with the defaults; clients wait: out within 15 s", hang, 0, 0, time.Minute, true},
		{"slow, with the defaults: answers in 2 s; clients wait", 2 * time.Second, 0, 0, time.Minute, false},
		{"slow: answers in 0.4 windows; clients wait", window * 2 / 5, 0, window, time.Minute, false},
		// The proxy counts a hang-up as waited from when it sent the
		// request to when it sees the client gone; on a loaded machine
		// that can be far more than the client's 100 ms. The default
		// window leaves 1.15 s to a quarter of it.
		{"slow, with the defaults: answers in 1.5 windows; clients hang up before a quarter of one", backend.DefaultStallTimeout * 3 / 2, 0, 0, 100 * time.Millisecond, false},
		// The window must exceed the slowest answer that clients wait for.
		// app3 answers in bursts 1.5 windows apart, and nothing in
		// between: each answer taking its own 1.5 windows would, on a
		// loaded machine, drift apart until some answer came within every
		// window, which is no stall.
		{"answers together every 1.5 windows; clients wait: stalled", 0, window * 3 / 2, window, time.Minute, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := &pool{apps: map[string]*demoapp.App{}, servers: map[string]*httptest.Server{}}
			cfgs := []backend.Config{p.start(t, "app1"), p.start(t, "app2")}
			var turned atomic.Bool
			stop := make(chan struct{})
			release := sync.OnceFunc(func() { close(stop) })
			// With tc.every, app3 holds each request until burst is closed.
			var (
				burstMu sync.Mutex
				burst   = make(chan struct{})
			)
			nextBurst := func() <-chan struct{} {
				burstMu.Lock()
				defer burstMu.Unlock()
				return burst
			}
			app3 := demoapp.New("app3")
			odd := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if turned.Load() {
					var wait <-chan time.Time // nil: hang
					var together <-chan struct{}
					switch {
					case tc.every != 0:
						together = nextBurst()
					case tc.delay != hang:
						wait = time.After(tc.delay)
					}
					select {
					case <-wait:
					case <-together:
					case <-stop:
					}
				}
				app3.ServeHTTP(w, r)
			}))
			t.Cleanup(odd.Close)
			t.Cleanup(release) // before odd.Close, which waits for its handlers
			var opts []backend.Option
			if tc.window != 0 {
				opts = append(opts, backend.WithStallTimeout(tc.window))
			}
			set, err := backend.NewSet(append(cfgs, backend.Config{ID: "app3", URL: odd.URL}), opts...)
			require.NoError(t, err)
			h, err := sticky.New(set, newCookie(t))
			require.NoError(t, err)
			base := front(t, h)

			cs := bindClients(t, base, 30)
			var mine []*stickyClient
			for _, c := range cs {
				c.c.Timeout = tc.patience
				if c.servers[0] == "app3" {
					mine = append(mine, c)
				}
			}
			require.NotEmpty(t, mine, "no client bound to app3")
			app3b := set.Snapshot().Lookup("app3")
			turned.Store(true)
			if tc.every != 0 {
				go func() {
					tk := time.NewTicker(tc.every)
					defer tk.Stop()
					for {
						select {
						case <-tk.C:
							burstMu.Lock()
							close(burst)
							burst = make(chan struct{})
							burstMu.Unlock()
						case <-stop:
							return
						}
					}
				}()
			}

			// Every client keeps sending requests, as users do.
			var done atomic.Bool
			var answered atomic.Int64 // by app3
			var wg sync.WaitGroup
			for _, c := range cs {
				wg.Go(func() {
					for !done.Load() {
						if code, srv, err := try(c.c, base+"/whoami"); err == nil && code == http.StatusOK && srv == "app3" {
							answered.Add(1)
						}
					}
				})
			}
			w := tc.window
			if w == 0 {
				w = backend.DefaultStallTimeout
			}
			if tc.eject {
				// 15 s from the hang: the bound the defaults promise.
				assert.Eventually(t, func() bool { return app3b.State() == backend.Unhealthy },
					15*time.Second, 20*time.Millisecond, "the hung backend is still %v", app3b.State())
			} else {
				time.Sleep(3 * w) // a bounded wait: three windows of traffic
				assert.Equal(t, backend.Healthy, app3b.State())
				if tc.patience > tc.delay {
					assert.NotZero(t, answered.Load(), "the slow backend answered its clients")
				}
			}
			done.Store(true)
			release() // clients still waiting for app3 are answered
			wg.Wait()
			if !tc.eject {
				return
			}

			// Its clients are re-placed, and stay where they were put.
			for i, c := range mine {
				c.c.Timeout = 5 * time.Second
				code, srv, err := try(c.c, base+"/whoami")
				require.NoError(t, err, "client %d", i)
				assert.Equal(t, http.StatusOK, code, "client %d", i)
				assert.Contains(t, []string{"app1", "app2"}, srv, "client %d", i)
				_, again, err := try(c.c, base+"/whoami")
				require.NoError(t, err, "client %d", i)
				assert.Equal(t, srv, again, "client %d moved again", i)
			}
		})
	}
}

// TestSlowUploadsDoNotStall checks that the time a client takes to send
// its body is not counted as its backend's: clients uploading slowly, for
// longer than the stall window, to a backend that answers nobody else,
// leave it healthy.
func TestSlowUploadsDoNotStall(t *testing.T) {
	const window = 500 * time.Millisecond
	received := make(chan int, 5)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		assert.NoError(t, err)
		received <- int(n)
	}))
	t.Cleanup(srv.Close)
	set, err := backend.NewSet([]backend.Config{{ID: "app1", URL: srv.URL}}, backend.WithStallTimeout(window))
	require.NoError(t, err)
	h, err := sticky.New(set, newCookie(t))
	require.NoError(t, err)
	base := front(t, h)

	var wg sync.WaitGroup
	for i := range 5 { // of five clients: one client's requests alone never stall
		c := peerClient(t, false, 1+i)
		wg.Go(func() {
			pr, pw := io.Pipe()
			go func() {
				for range 30 { // 3 windows, a byte every tenth of one
					time.Sleep(window / 10)
					pw.Write([]byte{'x'})
				}
				pw.Close()
			}()
			resp, err := c.Post(base+"/upload", "application/octet-stream", pr)
			if assert.NoError(t, err) {
				resp.Body.Close()
				assert.Equal(t, http.StatusOK, resp.StatusCode)
			}
		})
	}
	wg.Wait()
	for range 5 {
		assert.Equal(t, 30, <-received, "bytes received")
	}
	assert.Equal(t, backend.Healthy, set.Snapshot().Lookup("app1").State(), "slow uploads stalled their backend")
}
