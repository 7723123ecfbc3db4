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
// rule and its clients go elsewhere; one that answers slowly stays.
func TestHungBackendIsEjectedSlowOneIsNot(t *testing.T) {
	const window = time.Second
	for _, tc := range []struct {
		name     string
		odd      func(stop <-chan struct{}) // what app3 does once it turns
		patience time.Duration              // the clients' timeout
		eject    bool
		answers  bool // app3 answers its clients
		defaults bool // the set's default stall window, not window
	}{
		{
			name:     "hung: accepts, reads, never answers; clients give up",
			odd:      func(stop <-chan struct{}) { <-stop },
			patience: 300 * time.Millisecond,
			eject:    true,
		},
		{
			name:     "hung, with the defaults: out within 15 s",
			odd:      func(stop <-chan struct{}) { <-stop },
			patience: 2 * time.Second,
			eject:    true,
			defaults: true,
		},
		{
			name: "slow: answers after longer than the window; clients wait",
			odd: func(stop <-chan struct{}) {
				select {
				case <-time.After(window * 3 / 2):
				case <-stop:
				}
			},
			patience: 5 * time.Second,
			answers:  true,
		},
		{
			name: "slow, and clients hang up before a quarter of the window",
			odd: func(stop <-chan struct{}) {
				select {
				case <-time.After(window * 3 / 2):
				case <-stop:
				}
			},
			patience: 100 * time.Millisecond,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &pool{apps: map[string]*demoapp.App{}, servers: map[string]*httptest.Server{}}
			cfgs := []backend.Config{p.start(t, "app1"), p.start(t, "app2")}
			var turned atomic.Bool
			stop := make(chan struct{})
			app3 := demoapp.New("app3")
			odd := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if turned.Load() {
					tc.odd(stop)
				}
				app3.ServeHTTP(w, r)
			}))
			t.Cleanup(odd.Close)
			t.Cleanup(func() { close(stop) }) // before odd.Close, which waits for its handlers
			var opts []backend.Option
			if !tc.defaults {
				opts = append(opts, backend.WithStallTimeout(window))
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
			if tc.eject {
				// 15 s from the hang: the bound the defaults promise.
				assert.Eventually(t, func() bool { return app3b.State() == backend.Unhealthy },
					15*time.Second, 20*time.Millisecond, "the hung backend is still %v", app3b.State())
			} else {
				time.Sleep(4 * window) // a bounded wait: four windows of traffic
				assert.Equal(t, backend.Healthy, app3b.State())
				if tc.answers {
					assert.NotZero(t, answered.Load(), "the slow backend answered its clients")
				}
			}
			done.Store(true)
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
