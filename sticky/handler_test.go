package sticky_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/balancer"
	"github.com/affinitylb/affinity/cookie"
	"github.com/affinitylb/affinity/policy"
	"github.com/affinitylb/affinity/sticky"
)

func TestSessionsStick(t *testing.T) {
	const clients, pages = 30, 20
	p := newPool(t, 3)
	h, err := sticky.New(p.set, newCookie(t))
	require.NoError(t, err)
	base := front(t, h)

	var wg sync.WaitGroup
	servers := make([]string, clients)
	for i := range clients {
		wg.Go(func() {
			c := newClient(t, true)
			user := fmt.Sprintf("user%d", i)
			first := get(t, c, base+"/")
			assert.Equal(t, http.StatusOK, first.status)
			login(t, c, base, user)
			for range pages {
				w := get(t, c, base+"/whoami")
				assert.Equal(t, http.StatusOK, w.status)
				assert.Equal(t, user, w.user, "session lost")
				assert.Equal(t, first.server, w.server, "client moved")
			}
			servers[i] = first.server
		})
	}
	wg.Wait()

	perServer := map[string]int{}
	for _, s := range servers {
		perServer[s]++
	}
	assert.Len(t, perServer, 3, "every backend got clients: %v", perServer)
}

func TestNewClientsSpreadEvenly(t *testing.T) {
	for _, tc := range []struct {
		name   string
		jar    bool
		picker balancer.Picker
	}{
		{"new clients with jars, leastconn", true, &balancer.LeastConnections{}},
		{"cookie-less clients, leastconn", false, &balancer.LeastConnections{}},
		{"new clients with jars, roundrobin", true, &balancer.RoundRobin{}},
		{"cookie-less clients, roundrobin", false, &balancer.RoundRobin{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPool(t, 3)
			h, err := sticky.New(p.set, newCookie(t), sticky.WithPicker(tc.picker))
			require.NoError(t, err)
			base := front(t, h)

			perServer := map[string]int{}
			for range 30 {
				w := get(t, newClient(t, tc.jar), base+"/whoami")
				require.Equal(t, http.StatusOK, w.status)
				perServer[w.server]++
			}
			assert.Equal(t, map[string]int{"app1": 10, "app2": 10, "app3": 10}, perServer)
		})
	}
}

func TestBadCookiesAreTreatedAsAbsent(t *testing.T) {
	p := newPool(t, 3)
	clk := &clock{now: time.Now()}
	ck := newCookie(t, cookie.WithClock(clk.Now), cookie.WithTTL(time.Minute))
	h, err := sticky.New(p.set, ck)
	require.NoError(t, err)
	base := front(t, h)

	valid := balancerCookie(get(t, newClient(t, false), base+"/").header, ck.Name())
	require.NotNil(t, valid)

	var cases []struct {
		name  string
		value string
	}
	add := func(name, value string) {
		cases = append(cases, struct{ name, value string }{name, value})
	}
	for i := range len(valid.Value) {
		for _, r := range []byte{'A', '_', '-', '9', '!', '%', ' '} {
			if valid.Value[i] == r {
				continue
			}
			edited := []byte(valid.Value)
			edited[i] = r
			add(fmt.Sprintf("byte %d set to %q", i, r), string(edited))
		}
	}
	for n := range len(valid.Value) {
		add(fmt.Sprintf("truncated to %d", n), valid.Value[:n])
	}
	add("extended", valid.Value+"A")
	add("doubled", valid.Value+valid.Value)
	add("huge", strings.Repeat("A", 8<<10))

	other, err := cookie.New([][]byte{[]byte("another key, 32 bytes long......")})
	require.NoError(t, err)
	otherH, err := sticky.New(p.set, other)
	require.NoError(t, err)
	foreign := balancerCookie(get(t, newClient(t, false), front(t, otherH)+"/").header, other.Name())
	require.NotNil(t, foreign)
	add("signed with another key", foreign.Value)

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := get(t, newClient(t, false), base+"/whoami", &http.Cookie{Name: ck.Name(), Value: tc.value})
			assert.Equal(t, http.StatusOK, w.status)
			fresh := balancerCookie(w.header, ck.Name())
			if assert.NotNil(t, fresh, "no fresh cookie issued") {
				assert.NotEqual(t, tc.value, fresh.Value)
			}
		})
	}

	t.Run("expired", func(t *testing.T) {
		c := newClient(t, true)
		first := get(t, c, base+"/whoami")
		clk.Advance(2 * time.Minute)
		w := get(t, c, base+"/whoami")
		assert.Equal(t, http.StatusOK, w.status)
		assert.NotNil(t, balancerCookie(w.header, ck.Name()), "expired cookie not replaced")
		_ = first
	})

	t.Run("names a backend that left", func(t *testing.T) {
		c := newClient(t, true)
		first := get(t, c, base+"/whoami")
		_, err := p.set.Remove(first.server)
		require.NoError(t, err)
		w := get(t, c, base+"/whoami")
		assert.Equal(t, http.StatusOK, w.status)
		assert.NotEqual(t, first.server, w.server)
		assert.NotNil(t, balancerCookie(w.header, ck.Name()), "no fresh cookie after the backend left")
		again := get(t, c, base+"/whoami")
		assert.Equal(t, w.server, again.server, "not stuck to the new backend")
		assert.Nil(t, balancerCookie(again.header, ck.Name()), "valid cookie re-issued")
	})
}

func TestReplicasHonourEachOthersCookies(t *testing.T) {
	p := newPool(t, 3)
	var bases []string
	for range 2 {
		// Each replica has its own set and policy, configured alike.
		set, err := backend.NewSet(p.cfgs)
		require.NoError(t, err)
		h, err := sticky.New(set, newCookie(t))
		require.NoError(t, err)
		bases = append(bases, front(t, h))
	}

	for i := range 6 {
		c := newClient(t, true)
		first := get(t, c, bases[i%2]+"/whoami")
		require.NotEmpty(t, first.server)
		for j := range 10 {
			w := get(t, c, bases[(i+j+1)%2]+"/whoami")
			assert.Equal(t, first.server, w.server)
			assert.Nil(t, balancerCookie(w.header, "affinity"), "replica re-issued a valid cookie")
		}
	}
}

func TestUnroutableBindingIsRedispatched(t *testing.T) {
	for _, tc := range []struct {
		state   backend.State
		wantNew bool
	}{
		{backend.Unhealthy, true},
		{backend.Draining, false},
	} {
		t.Run(tc.state.String(), func(t *testing.T) {
			p := newPool(t, 3)
			h, err := sticky.New(p.set, newCookie(t))
			require.NoError(t, err)
			base := front(t, h)
			c := newClient(t, true)
			first := get(t, c, base+"/whoami")
			require.NoError(t, p.set.SetState(first.server, tc.state))

			w := get(t, c, base+"/whoami")
			assert.Equal(t, http.StatusOK, w.status)
			assert.Equal(t, tc.wantNew, w.server != first.server)
			assert.Equal(t, tc.wantNew, balancerCookie(w.header, "affinity") != nil)
			if tc.wantNew {
				assert.Equal(t, w.server, get(t, c, base+"/whoami").server, "re-routed client not stuck again")
			}
		})
	}
}

func TestDrainingBackendTakesNoNewClients(t *testing.T) {
	p := newPool(t, 3)
	require.NoError(t, p.set.SetState("app2", backend.Draining))
	h, err := sticky.New(p.set, newCookie(t))
	require.NoError(t, err)
	base := front(t, h)
	for range 20 {
		assert.NotEqual(t, "app2", get(t, newClient(t, false), base+"/whoami").server)
	}
}

func TestMembershipChangesUnderLoad(t *testing.T) {
	p := newPool(t, 3)
	h, err := sticky.New(p.set, newCookie(t))
	require.NoError(t, err)
	base := front(t, h)

	var stop atomic.Bool
	var failures atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			c := newClient(t, true)
			for n := 0; n < 2000 && !stop.Load(); n++ {
				if w := get(t, c, base+"/whoami"); w.status != http.StatusOK {
					failures.Add(1)
				}
			}
		})
	}
	t.Cleanup(func() { stop.Store(true); wg.Wait() })

	for round := range 5 {
		name := fmt.Sprintf("extra%d", round)
		_, err := p.set.Add(p.start(t, name))
		require.NoError(t, err)

		removed, err := p.set.Remove(name)
		require.NoError(t, err)
		// Requests admitted before Remove returned may still finish.
		require.Eventually(t, func() bool { return removed.InFlight() == 0 }, 10*time.Second, time.Millisecond)
		served := p.apps[name].Requests()
		for range 50 {
			get(t, newClient(t, false), base+"/whoami")
		}
		assert.Equal(t, served, p.apps[name].Requests(), "%s got requests after its removal", name)
	}
	stop.Store(true)
	wg.Wait()
	assert.Zero(t, failures.Load(), "non-200 answers under membership changes")
	for _, b := range p.set.Snapshot().Backends() {
		assert.Zero(t, b.InFlight(), "%s in-flight count leaked", b.ID())
	}
}

func TestNoBackendAnswers503(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(*testing.T, *pool)
	}{
		{"empty set", func(t *testing.T, p *pool) {
			for _, c := range p.cfgs {
				_, err := p.set.Remove(c.ID)
				require.NoError(t, err)
			}
		}},
		{"all unhealthy", func(t *testing.T, p *pool) {
			for _, c := range p.cfgs {
				require.NoError(t, p.set.SetState(c.ID, backend.Unhealthy))
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPool(t, 2, backend.WithFailOpen(false))
			tc.setup(t, p)
			h, err := sticky.New(p.set, newCookie(t))
			require.NoError(t, err)
			w := get(t, newClient(t, false), front(t, h)+"/")
			assert.Equal(t, http.StatusServiceUnavailable, w.status)
			assert.NotEmpty(t, w.header.Get("Retry-After"), "503 without Retry-After")
			assert.Nil(t, balancerCookie(w.header, "affinity"))
		})
	}
}

func TestAllUnhealthyFailsOpen(t *testing.T) {
	p := newPool(t, 3) // failing open is the default
	h, err := sticky.New(p.set, newCookie(t))
	require.NoError(t, err)
	base := front(t, h)
	c := newClient(t, true)
	first := get(t, c, base+"/whoami")
	for _, cfg := range p.cfgs {
		require.NoError(t, p.set.SetState(cfg.ID, backend.Unhealthy))
	}
	require.True(t, p.set.Snapshot().FailOpen())

	for range 5 {
		w := get(t, c, base+"/whoami")
		assert.Equal(t, http.StatusOK, w.status)
		assert.Equal(t, first.server, w.server, "bound client moved though every backend is unhealthy")
	}
	assert.Equal(t, http.StatusOK, get(t, newClient(t, false), base+"/whoami").status, "new client refused")
}

func TestDeadBackendAnswers502(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dead := "http://" + l.Addr().String()
	require.NoError(t, l.Close())

	set, err := backend.NewSet([]backend.Config{{ID: "dead", URL: dead}})
	require.NoError(t, err)
	h, err := sticky.New(set, newCookie(t))
	require.NoError(t, err)
	resp, err := http.Get(front(t, h) + "/")
	require.NoError(t, err)
	defer resp.Body.Close()
	body := make([]byte, 512)
	n, _ := resp.Body.Read(body)

	assert.Equal(t, http.StatusBadGateway, resp.StatusCode)
	assert.NotContains(t, string(body[:n]), "dead", "error body names the backend")
	assert.NotContains(t, string(body[:n]), "127.0.0.1", "error body names the address")
	assert.Empty(t, resp.Cookies(), "a failed request was bound")
	assert.Zero(t, set.Snapshot().Lookup("dead").InFlight())
}

// hijacking returns a backend that takes each request's connection and
// does f with it instead of answering.
func hijacking(t *testing.T, f func(net.Conn)) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if !assert.NoError(t, err) {
			return
		}
		f(conn)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestBackendFailuresSayWhatHappened checks that the answer to a request
// whose backend did not answer tells the client whether the backend could
// not be reached, failed, or took too long, without naming it.
func TestBackendFailuresSayWhatHappened(t *testing.T) {
	for _, tc := range []struct {
		name     string
		backend  func(t *testing.T) string // its URL
		opts     []sticky.Option
		wantCode int
		wantText string
	}{
		{"connection refused", func(t *testing.T) string {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			require.NoError(t, l.Close())
			return "http://" + l.Addr().String()
		}, nil, http.StatusBadGateway, "the backend could not be reached"},
		{"closed before answering", func(t *testing.T) string {
			return hijacking(t, func(c net.Conn) { c.Close() })
		}, nil, http.StatusBadGateway, "the backend failed"},
		{"reset", func(t *testing.T) string {
			return hijacking(t, func(c net.Conn) {
				assert.NoError(t, c.(*net.TCPConn).SetLinger(0)) // close sends RST
				c.Close()
			})
		}, nil, http.StatusBadGateway, "the backend failed"},
		{"closed in the middle of the header", func(t *testing.T) string {
			return hijacking(t, func(c net.Conn) {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Le")
				c.Close()
			})
		}, nil, http.StatusBadGateway, "the backend failed"},
		{"malformed response", func(t *testing.T) string {
			return hijacking(t, func(c net.Conn) {
				io.WriteString(c, "HTTP/1.1 two hundred\r\n\r\n")
				c.Close()
			})
		}, nil, http.StatusBadGateway, "the backend failed"},
		{"no response header in time", func(t *testing.T) string {
			release := make(chan struct{})
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				select {
				case <-r.Context().Done():
				case <-release:
				}
			}))
			t.Cleanup(srv.Close)
			t.Cleanup(func() { close(release) }) // before srv.Close
			return srv.URL
		}, []sticky.Option{sticky.WithTransport(func() http.RoundTripper {
			tr := sticky.DefaultTransport()
			tr.ResponseHeaderTimeout = 200 * time.Millisecond // a configuration, not a measurement
			return tr
		}())}, http.StatusGatewayTimeout, "the backend did not answer in time"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := tc.backend(t)
			set, err := backend.NewSet([]backend.Config{{ID: "app1", URL: u}})
			require.NoError(t, err)
			h, err := sticky.New(set, newCookie(t), append([]sticky.Option{sticky.WithRetries(0, 0)}, tc.opts...)...)
			require.NoError(t, err)
			w := get(t, newClient(t, false), front(t, h)+"/")
			assert.Equal(t, tc.wantCode, w.status)
			assert.Contains(t, w.body, tc.wantText)
			assert.NotContains(t, w.body, "app1", "the answer names the backend")
			assert.NotContains(t, w.body, strings.TrimPrefix(u, "http://"), "the answer names its address")
			assert.Nil(t, balancerCookie(w.header, "affinity"), "a failed request was bound")
		})
	}
}

func TestNewRejectsBadConfiguration(t *testing.T) {
	set, err := backend.NewSet(nil)
	require.NoError(t, err)
	pol := newCookie(t)
	for _, tc := range []struct {
		name string
		set  *backend.Set
		pol  policy.Policy
		opts []sticky.Option
		want string
	}{
		{"nil set", nil, pol, nil, "nil backend set"},
		{"nil policy", set, nil, nil, "nil policy"},
		{"nil picker", set, pol, []sticky.Option{sticky.WithPicker(nil)}, "nil picker"},
		{"nil transport", set, pol, []sticky.Option{sticky.WithTransport(nil)}, "nil transport"},
		{"empty Via name", set, pol, []sticky.Option{sticky.WithVia("")}, `WithVia("")`},
		{"Via name with a blank", set, pol, []sticky.Option{sticky.WithVia("edge 1")}, `WithVia("edge 1")`},
		{"Via name with a comma", set, pol, []sticky.Option{sticky.WithVia("a,b")}, `WithVia("a,b")`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := sticky.New(tc.set, tc.pol, tc.opts...)
			assert.Nil(t, h)
			assert.ErrorContains(t, err, tc.want)
		})
	}
}

func TestKeyRotation(t *testing.T) {
	oldKey := []byte("the old key, 32 bytes long......")
	newKey := []byte("the new key, 32 bytes long......")
	p := newPool(t, 3)
	serve := func(keys ...[]byte) string {
		ck, err := cookie.New(keys)
		require.NoError(t, err)
		h, err := sticky.New(p.set, ck)
		require.NoError(t, err)
		return front(t, h)
	}
	before := serve(oldKey)         // the fleet before the rotation
	during := serve(newKey, oldKey) // new key signs, old still verifies
	after := serve(newKey)          // old key retired

	c := newClient(t, true)
	first := get(t, c, before+"/whoami")
	oldCookie := balancerCookie(first.header, "affinity")
	require.NotNil(t, oldCookie)

	w := get(t, c, during+"/whoami")
	assert.Equal(t, first.server, w.server, "old-key cookie not honoured")
	resigned := balancerCookie(w.header, "affinity")
	require.NotNil(t, resigned, "old-key cookie not re-signed")
	assert.NotEqual(t, oldCookie.Value, resigned.Value)
	assert.Nil(t, balancerCookie(get(t, c, during+"/whoami").header, "affinity"), "re-signed cookie re-signed again")

	// The re-signed cookie outlives the old key.
	assert.Equal(t, first.server, get(t, c, after+"/whoami").server)

	// A cookie only the retired key signed is treated as absent.
	stale := get(t, newClient(t, false), after+"/whoami", oldCookie)
	assert.Equal(t, http.StatusOK, stale.status)
	assert.NotNil(t, balancerCookie(stale.header, "affinity"), "retired-key cookie not replaced")
}

// TestConcurrentRequestsKeepTheirOwnRouting sends, at once, requests bound
// to each backend, requests bound to a dead one (retried elsewhere and
// bound again) and requests without a binding. Each must be answered as
// its own binding says, and every binding set must name the backend that
// answered: the handler reuses its per-request state, and none of it may
// leak from one request into another.
func TestConcurrentRequestsKeepTheirOwnRouting(t *testing.T) {
	p := newPool(t, 4, backend.WithEjection(backend.Ejection{})) // requests keep meeting the dead one
	pol := newCookie(t)
	h, err := sticky.New(p.set, pol)
	require.NoError(t, err)
	base := front(t, h)
	p.kill(t, "app4")

	bound := func(id string) *http.Cookie { return &http.Cookie{Name: pol.Name(), Value: pol.Issue(id)} }
	for _, tc := range []struct {
		name    string
		cookie  *http.Cookie // nil: none
		want    string       // the backend that answers; "": any live one, binding anew
		rebinds bool
	}{
		{"bound to app1", bound("app1"), "app1", false},
		{"bound to app2", bound("app2"), "app2", false},
		{"bound to app3", bound("app3"), "app3", false},
		{"bound to the dead app4", bound("app4"), "", true},
		{"unbound", nil, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newClient(t, false)
			for range 100 {
				var cookies []*http.Cookie
				if tc.cookie != nil {
					cookies = append(cookies, tc.cookie)
				}
				w := get(t, c, base+"/whoami", cookies...)
				require.Equal(t, http.StatusOK, w.status)
				set := balancerCookie(w.header, pol.Name())
				if !tc.rebinds {
					require.Equal(t, tc.want, w.server)
					require.Nil(t, set, "a binding that needed none")
					continue
				}
				require.NotEqual(t, "app4", w.server)
				require.NotNil(t, set, "no binding for a request that needed one")
				again := get(t, c, base+"/whoami", set)
				require.Equal(t, w.server, again.server, "the binding set names another backend than the one that answered")
			}
		})
	}
	t.Cleanup(func() {
		for _, b := range p.set.Snapshot().Backends() {
			assert.Zero(t, b.InFlight(), "%s in-flight count leaked", b.ID())
		}
	})
}
