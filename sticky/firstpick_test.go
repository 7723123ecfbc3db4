package sticky_test

import (
	"fmt"
	"maps"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/sticky"
)

func TestConcurrentFirstRequestsOnOneHTTP2ConnectionShareABinding(t *testing.T) {
	const n = 8
	// Each backend holds its request until all n have arrived, so the n
	// are in flight together, as a browser's first requests are.
	bar := &barrier{}
	bar.reset(n)
	set := heldPool(t, bar)
	h, err := sticky.New(set, newCookie(t))
	require.NoError(t, err)
	lb := frontHTTP2(t, h)
	client := lb.Client() // one HTTP/2 connection, multiplexed

	var wg sync.WaitGroup
	served := make([]string, n)
	for i := range n {
		wg.Go(func() {
			resp, err := client.Get(lb.URL + "/")
			if !assert.NoError(t, err) {
				return
			}
			defer resp.Body.Close()
			assert.Equal(t, 2, resp.ProtoMajor)
			ck := balancerCookie(resp.Header, "affinity")
			if assert.NotNil(t, ck) {
				assert.True(t, ck.Secure, "cookie over TLS not Secure")
			}
			served[i] = resp.Header.Get("X-Served-By")
		})
	}
	wg.Wait()
	for i := range n {
		assert.Equal(t, served[0], served[i], "request %d bound elsewhere", i)
	}
}

// firstRequest is one unbound request of a test of first-pick grouping:
// sent over the connection of client conn, with X-Forwarded-For xff unless
// it is empty.
type firstRequest struct {
	conn int
	xff  string
}

// firstRequests returns n requests over connection conn, the i-th
// forwarded for xff(i), or with no X-Forwarded-For if xff is nil.
func firstRequests(n, conn int, xff func(i int) string) []firstRequest {
	rs := make([]firstRequest, n)
	for i := range rs {
		rs[i].conn = conn
		if xff != nil {
			rs[i].xff = xff(i)
		}
	}
	return rs
}

// serveFirstRequests sends reqs, cookie-less, in parallel through a
// handler made with opts over three backends, app1 to app3, and returns
// which backend served each. Each client connection is one HTTP/2
// connection over TLS to the handler, multiplexing its requests, as a
// browser's or a front proxy's would; the backends hold every request
// until all have arrived, so that all are in flight together.
func serveFirstRequests(t *testing.T, opts []sticky.Option, reqs []firstRequest) []string {
	t.Helper()
	bar := &barrier{}
	bar.reset(len(reqs))
	set := heldPool(t, bar)
	h, err := sticky.New(set, newCookie(t), opts...)
	require.NoError(t, err)

	// The front notes the connections the handler's requests come over,
	// and answers /warm itself: each client opens its connection with it
	// before the test, so that its parallel requests find one open.
	var mu sync.Mutex
	conns := map[string]bool{}
	lb := frontHTTP2(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/warm" {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		mu.Lock()
		conns[r.RemoteAddr] = true
		mu.Unlock()
		h.ServeHTTP(w, r)
	}))

	var clients []*http.Client
	for _, rq := range reqs {
		for len(clients) <= rq.conn {
			c := lb.Client()
			if len(clients) > 0 { // a connection of its own
				c = &http.Client{Transport: c.Transport.(*http.Transport).Clone()}
			}
			resp, err := c.Get(lb.URL + "/warm")
			require.NoError(t, err)
			require.NoError(t, resp.Body.Close())
			require.Equal(t, 2, resp.ProtoMajor)
			clients = append(clients, c)
		}
	}
	t.Cleanup(func() {
		for _, c := range clients {
			c.CloseIdleConnections()
		}
	})

	var wg sync.WaitGroup
	served := make([]string, len(reqs))
	for i, rq := range reqs {
		wg.Go(func() {
			req, err := http.NewRequest(http.MethodGet, lb.URL+"/", nil)
			if !assert.NoError(t, err) {
				return
			}
			if rq.xff != "" {
				req.Header.Set("X-Forwarded-For", rq.xff)
			}
			resp, err := clients[rq.conn].Do(req)
			if !assert.NoError(t, err) {
				return
			}
			defer resp.Body.Close()
			assert.NotNil(t, balancerCookie(resp.Header, "affinity"), "request %d not bound", i)
			served[i] = resp.Header.Get("X-Served-By")
		})
	}
	wg.Wait()
	require.Len(t, conns, len(clients), "requests came over more connections than the clients'")
	return served
}

// count returns how many of served each backend served.
func count(served []string) map[string]int {
	c := map[string]int{}
	for _, s := range served {
		c[s]++
	}
	return c
}

func TestFirstPickGrouping(t *testing.T) {
	trustLocal := []sticky.Option{sticky.WithTrustedProxies(netip.MustParsePrefix("127.0.0.1/32"))}
	users := func(i int) string { return fmt.Sprintf("192.0.2.%d", i+1) }
	// A connection's first 16 unbound requests share a backend; the rest
	// are picked one by one, by least connections.
	const pageLoad = 16
	connectionRule := func(t *testing.T, served []string) {
		c := count(served)
		require.Len(t, c, 3, "backends used: %v", c)
		rest := len(served) - pageLoad
		for id, k := range c {
			if k != pageLoad {
				assert.GreaterOrEqual(t, k, rest/2-1, "%s got too few: %v", id, c)
			}
		}
		assert.Contains(t, slices.Collect(maps.Values(c)), pageLoad, "no backend got the first %d: %v", pageLoad, c)
	}
	tests := []struct {
		name  string
		opts  []sticky.Option
		reqs  []firstRequest
		check func(t *testing.T, served []string)
	}{
		{
			// A CDN or an L7 balancer multiplexes its users over one
			// connection: each user is placed by least connections.
			name: "trusted front: 50 users over one connection are spread",
			opts: trustLocal,
			reqs: firstRequests(50, 0, users),
			check: func(t *testing.T, served []string) {
				c := count(served)
				for _, id := range []string{"app1", "app2", "app3"} {
					assert.GreaterOrEqual(t, c[id], 50/3-1, "%s got too few: %v", id, c)
				}
			},
		},
		{
			name: "trusted front: a browser's burst of 7 among 50 users shares one backend",
			opts: trustLocal,
			reqs: append(firstRequests(50, 0, users), firstRequests(7, 0, func(int) string { return "198.51.100.7" })...),
			check: func(t *testing.T, served []string) {
				burst := served[50:]
				for i := range burst {
					assert.Equal(t, burst[0], burst[i], "burst request %d bound elsewhere", i)
				}
				c := count(served[:50])
				for _, id := range []string{"app1", "app2", "app3"} {
					assert.GreaterOrEqual(t, c[id], 10, "%s got too few of the users: %v", id, c)
				}
			},
		},
		{
			// A front keeps several connections to the handler, and one
			// browser's requests may come over any of them.
			name: "trusted front: one browser's burst over two connections shares one backend",
			opts: trustLocal,
			reqs: append(firstRequests(4, 0, func(int) string { return "198.51.100.7" }),
				firstRequests(4, 1, func(int) string { return "198.51.100.7" })...),
			check: func(t *testing.T, served []string) {
				for i := range served {
					assert.Equal(t, served[0], served[i], "request %d bound elsewhere", i)
				}
			},
		},
		{
			name:  "untrusted peer: 40 over one connection",
			reqs:  firstRequests(40, 0, users), // X-Forwarded-For not believed
			check: connectionRule,
		},
		{
			name:  "trusted front, no forwarded address: 40 over one connection",
			opts:  trustLocal,
			reqs:  firstRequests(40, 0, nil),
			check: connectionRule,
		},
		{
			name:  "trusted front, only trusted hops forwarded: 40 over one connection",
			opts:  trustLocal,
			reqs:  firstRequests(40, 0, func(int) string { return "127.0.0.1" }),
			check: connectionRule,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.check(t, serveFirstRequests(t, tt.opts, tt.reqs))
		})
	}
}
