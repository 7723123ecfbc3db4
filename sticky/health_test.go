package sticky_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/internal/accounting"
	"github.com/affinitylb/affinity/sticky"
)

// stickyClient is a client with a cookie jar and the servers it was sent to.
type stickyClient struct {
	c       *http.Client
	servers []string
	rebinds int // responses that set the balancer cookie
}

func (sc *stickyClient) do(t *testing.T, base string) whoami {
	w := get(t, sc.c, base+"/whoami")
	sc.servers = append(sc.servers, w.server)
	if balancerCookie(w.header, "affinity") != nil {
		sc.rebinds++
	}
	return w
}

// moves counts how often the client changed servers.
func (sc *stickyClient) moves() int {
	n := 0
	for i := 1; i < len(sc.servers); i++ {
		if sc.servers[i] != sc.servers[i-1] {
			n++
		}
	}
	return n
}

// bindClients makes n clients and sends one request each, binding them.
func bindClients(t *testing.T, base string, n int) []*stickyClient {
	cs := make([]*stickyClient, n)
	for i := range cs {
		cs[i] = &stickyClient{c: peerClient(t, true, nextPeer())} // each from an address of its own, as clients are
		w := cs[i].do(t, base)
		require.Equal(t, http.StatusOK, w.status)
	}
	return cs
}

// rounds has every client send requests, concurrently, and fails on any
// answer other than 200; during runs at the start of the given round.
func rounds(t *testing.T, base string, cs []*stickyClient, n int, during map[int]func()) {
	t.Helper()
	for r := range n {
		if f := during[r]; f != nil {
			f()
		}
		var wg sync.WaitGroup
		for _, c := range cs {
			wg.Go(func() {
				w := c.do(t, base)
				assert.Equal(t, http.StatusOK, w.status, "round %d", r)
			})
		}
		wg.Wait()
	}
}

func TestKilledBackendsClientsMoveOnceAndNobodyElseMoves(t *testing.T) {
	p := newPool(t, 3)
	h, err := sticky.New(p.set, newCookie(t))
	require.NoError(t, err)
	base := front(t, h)
	cs := bindClients(t, base, 30)
	victim := cs[0].servers[0]

	// Kill while traffic flows: the kill lands between the requests of one
	// round, some of them in flight.
	rounds(t, base, cs, 10, map[int]func(){
		3: func() { go p.kill(t, victim) },
	})

	for i, c := range cs {
		if c.servers[0] == victim {
			assert.Equal(t, 1, c.moves(), "client %d of the killed backend: %v", i, c.servers)
			assert.Equal(t, 2, c.rebinds, "client %d re-bound more than once", i)
			assert.NotEqual(t, victim, c.servers[len(c.servers)-1])
		} else {
			assert.Zero(t, c.moves(), "client %d moved: %v", i, c.servers)
			assert.Equal(t, 1, c.rebinds, "client %d re-bound", i)
		}
	}
}

func TestScaleUpKeepsSessionsAndTheNewcomerGetsNewOnes(t *testing.T) {
	p := newPool(t, 3)
	h, err := sticky.New(p.set, newCookie(t))
	require.NoError(t, err)
	base := front(t, h)
	cs := bindClients(t, base, 30)

	rounds(t, base, cs, 6, map[int]func(){
		2: func() {
			_, err := p.set.Add(p.start(t, "app4"))
			require.NoError(t, err)
		},
	})
	for i, c := range cs {
		assert.Zero(t, c.moves(), "client %d moved: %v", i, c.servers)
	}
	fresh := bindClients(t, base, 8)
	n := 0
	for _, c := range fresh {
		if c.servers[0] == "app4" {
			n++
		}
	}
	assert.Positive(t, n, "no new session reached the new backend")
}

func TestDrainKeepsSessionsThenMovesThem(t *testing.T) {
	p := newPool(t, 3, backend.WithDrainIdle(50*time.Millisecond))
	h, err := sticky.New(p.set, newCookie(t))
	require.NoError(t, err)
	base := front(t, h)
	cs := bindClients(t, base, 30)
	const drained = "app2"

	// A request held in flight keeps the drain from ending, however slow
	// the rounds, until it is released.
	held := p.set.Snapshot().Lookup(drained)
	require.True(t, accounting.Acquire(held))
	done, err := p.set.Drain(drained, time.Hour)
	require.NoError(t, err)
	rounds(t, base, cs, 5, nil)
	for i, c := range cs {
		assert.Zero(t, c.moves(), "client %d moved during the drain: %v", i, c.servers)
	}
	for _, c := range bindClients(t, base, 10) {
		assert.NotEqual(t, drained, c.servers[0], "draining backend took a new client")
	}

	// Idle, it leaves; its clients move, once.
	accounting.Release(held)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("drain did not end")
	}
	rounds(t, base, cs, 3, nil)
	for i, c := range cs {
		want := 0
		if c.servers[0] == drained {
			want = 1
		}
		assert.Equal(t, want, c.moves(), "client %d: %v", i, c.servers)
	}
}

// TestStrictBinding checks that a strict binding to a backend that may
// come back (unhealthy, or ejected after failing) answers 503 with
// Retry-After and keeps the binding, and that a client whose backend left
// the set is placed anew and bound again, once, reported as a redispatch.
func TestStrictBinding(t *testing.T) {
	tests := []struct {
		name string
		// fail takes the client's backend away; it reports whether the
		// backend may come back.
		fail func(t *testing.T, p *pool, id string) (comesBack bool)
	}{
		{"unhealthy", func(t *testing.T, p *pool, id string) bool {
			require.NoError(t, p.set.SetState(id, backend.Unhealthy))
			return true
		}},
		{"ejected", func(t *testing.T, p *pool, id string) bool {
			p.kill(t, id) // the next request fails and ejects it
			return true
		}},
		{"removed", func(t *testing.T, p *pool, id string) bool {
			_, err := p.set.Remove(id)
			require.NoError(t, err)
			return false
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPool(t, 3, backend.WithEjection(backend.Ejection{After: 1, Base: time.Hour, Max: time.Hour}))
			rec := &recorder{}
			tr := sticky.DefaultTransport()
			t.Cleanup(tr.CloseIdleConnections)
			h, err := sticky.New(p.set, newCookie(t), sticky.WithStrictBinding(true), sticky.WithObserver(rec), sticky.WithTransport(tr))
			require.NoError(t, err)
			base := front(t, h)
			c := newClient(t, true)
			first := get(t, c, base+"/whoami")
			require.Equal(t, http.StatusOK, first.status)

			if tt.fail(t, p, first.server) {
				if tt.name == "ejected" {
					// No idle connection to the dead backend: the request is
					// refused, which ejects it whoever sent it (a failure
					// that reached it would need a second client's too).
					tr.CloseIdleConnections()
					assert.Equal(t, http.StatusBadGateway, get(t, c, base+"/whoami").status, "the failing request")
					require.Equal(t, backend.Unhealthy, p.set.Snapshot().Lookup(first.server).State(), "not ejected")
				}
				for range 3 {
					w := get(t, c, base+"/whoami")
					assert.Equal(t, http.StatusServiceUnavailable, w.status)
					assert.NotEmpty(t, w.header.Get("Retry-After"), "503 without Retry-After")
					assert.Contains(t, w.body, "server holding this session is unavailable")
					assert.Nil(t, balancerCookie(w.header, "affinity"), "strict binding re-bound the client")
				}
				assert.Equal(t, http.StatusOK, get(t, newClient(t, false), base+"/whoami").status, "new clients refused")
				return
			}

			rec.take()
			w := get(t, c, base+"/whoami")
			require.Equal(t, http.StatusOK, w.status, "client of a removed backend locked out")
			assert.NotEqual(t, first.server, w.server)
			assert.NotNil(t, balancerCookie(w.header, "affinity"), "client of a removed backend not bound again")
			assert.Equal(t, []string{"redispatch " + w.server, "bind " + w.server}, rec.take())
			for range 5 {
				again := get(t, c, base+"/whoami")
				assert.Equal(t, w.server, again.server, "moved more than once")
				assert.Nil(t, balancerCookie(again.header, "affinity"), "bound again and again")
			}
		})
	}
}

func TestRetries(t *testing.T) {
	for _, tc := range []struct {
		name        string
		method      string
		body        string
		opts        []sticky.Option
		wantRetried bool
	}{
		{"GET is retried", http.MethodGet, "", nil, true},
		{"POST without a body is retried: the connection was refused", http.MethodPost, "", nil, true},
		{"POST with a body is retried: the connection was refused, its body not read", http.MethodPost, "name=x", nil, true},
		{"retries off", http.MethodGet, "", []sticky.Option{sticky.WithRetries(0, 0)}, false},
		{"strict binding", http.MethodGet, "", []sticky.Option{sticky.WithStrictBinding(true)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPool(t, 2, backend.WithEjection(backend.Ejection{})) // no ejection: requests keep meeting the dead one
			p.kill(t, "app1")
			h, err := sticky.New(p.set, newCookie(t), tc.opts...)
			require.NoError(t, err)
			base := front(t, h)
			badGateways := 0
			for range 4 { // least connections alternates: half go to app1 first
				req, err := http.NewRequest(tc.method, base+"/login", strings.NewReader(tc.body))
				require.NoError(t, err)
				if tc.body == "" {
					req.Body, req.ContentLength = http.NoBody, 0
				}
				resp, err := http.DefaultClient.Do(req)
				require.NoError(t, err)
				require.NoError(t, resp.Body.Close())
				if resp.StatusCode == http.StatusBadGateway {
					badGateways++
				} else {
					assert.Equal(t, "app2", resp.Header.Get("X-Served-By"))
				}
			}
			if tc.wantRetried {
				assert.Zero(t, badGateways, "a request was not retried")
			} else {
				assert.Equal(t, 2, badGateways, "requests to the dead backend")
			}
		})
	}
}

func TestPassiveEjectionOfAFailingBackend(t *testing.T) {
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Served-By", "bad")
		http.Error(w, "boom", http.StatusInternalServerError)
	}))
	t.Cleanup(bad.Close)
	p := newPool(t, 1, backend.WithEjection(backend.Ejection{After: 3, Base: time.Hour, Max: time.Hour}))
	_, err := p.set.Add(backend.Config{ID: "bad", URL: bad.URL})
	require.NoError(t, err)
	ck := newCookie(t)
	h, err := sticky.New(p.set, ck, sticky.WithFailureStatus(func(code int) bool { return code >= 500 }))
	require.NoError(t, err)
	base := front(t, h)

	boundToBad := &http.Cookie{Name: ck.Name(), Value: ck.Issue("bad")}
	for i := range 3 { // of three clients: one client's 500s alone eject nothing
		w := get(t, peerClient(t, false, 1+i), base+"/whoami", boundToBad)
		require.Equal(t, "bad", w.server, "request %d", i)
		assert.Equal(t, http.StatusInternalServerError, w.status, "the backend's own 5xx passes through")
	}
	assert.Equal(t, backend.Unhealthy, p.set.Snapshot().Lookup("bad").State(), "three 500s in a row did not eject")

	w := get(t, newClient(t, false), base+"/whoami", boundToBad)
	assert.Equal(t, http.StatusOK, w.status)
	assert.Equal(t, "app1", w.server)
	assert.NotNil(t, balancerCookie(w.header, ck.Name()), "redispatched client not re-bound")
}
