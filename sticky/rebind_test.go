package sticky_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/cookie"
	"github.com/affinitylb/affinity/sticky"
)

// TestParallelRequestsOfAMovedClientAgreeOnItsNewBackend checks that the
// requests a client sends together (a page's, over several connections)
// while its backend is dead are re-routed to one backend between them: it
// is re-bound once, not to each backend that answered one of them, with
// the last Set-Cookie winning. The dead backend is still a member, its
// failures not counted, as before a health check or ejection notices.
func TestParallelRequestsOfAMovedClientAgreeOnItsNewBackend(t *testing.T) {
	const parallel = 4
	for _, tc := range []struct {
		name string
		gone func(t *testing.T, set *backend.Set) // what becomes of "old", the client's backend
	}{
		{"dead, not yet noticed", func(*testing.T, *backend.Set) {}},
		{"unhealthy", func(t *testing.T, set *backend.Set) { require.NoError(t, set.SetState("old", backend.Unhealthy)) }},
		{"removed", func(t *testing.T, set *backend.Set) {
			_, err := set.Remove("old")
			require.NoError(t, err)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var bar barrier
			cfgs := []backend.Config{{ID: "old", URL: deadURL(t)}}
			for i := 1; i <= 3; i++ {
				name := fmt.Sprintf("app%d", i)
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					bar.wait() // all the page's requests are in flight together
					w.Header().Set("X-Served-By", name)
				}))
				t.Cleanup(srv.Close)
				cfgs = append(cfgs, backend.Config{ID: name, URL: srv.URL})
			}
			set, err := backend.NewSet(cfgs, backend.WithEjection(backend.Ejection{}))
			require.NoError(t, err)
			pol := newCookie(t)
			h, err := sticky.New(set, pol)
			require.NoError(t, err)
			base := front(t, h)
			bound := &http.Cookie{Name: pol.Name(), Value: pol.Issue("old")}
			tc.gone(t, set)

			for round := range 3 {
				bar.reset(parallel)
				var mu sync.Mutex
				servers, bindings := map[string]bool{}, map[string]bool{}
				var wg sync.WaitGroup
				for range parallel {
					wg.Go(func() {
						w := get(t, newClient(t, false), base+"/", bound)
						mu.Lock()
						defer mu.Unlock()
						servers[w.server] = true
						if ck := balancerCookie(w.header, pol.Name()); ck != nil {
							bindings[ck.Value] = true
						}
					})
				}
				wg.Wait()
				assert.Len(t, servers, 1, "round %d: the client's requests went to %v", round, servers)
				assert.Len(t, bindings, 1, "round %d: the client was bound to several backends at once", round)
			}
		})
	}
}

// TestMovedClientsBehindOneAddressSpread checks that the clients of a
// backend that no longer serves them are spread over the others even
// when they all come from one address (a NAT, or a front proxy the
// handler does not trust): by their bindings' seeds, the times they were
// bound, not all to one backend.
func TestMovedClientsBehindOneAddressSpread(t *testing.T) {
	p := newPool(t, 3)
	require.NoError(t, p.set.SetState("app2", backend.Draining)) // the clients are all bound to app1
	require.NoError(t, p.set.SetState("app3", backend.Draining))
	clk := &clock{now: time.Unix(1_800_000_000, 0)}
	h, err := sticky.New(p.set, newCookie(t, cookie.WithClock(clk.Now)))
	require.NoError(t, err)
	base := front(t, h)

	const clients = 32
	var bound []*http.Cookie
	for range clients {
		r := get(t, newClient(t, false), base+"/whoami")
		require.Equal(t, "app1", r.server)
		ck := balancerCookie(r.header, "affinity")
		require.NotNil(t, ck)
		bound = append(bound, ck)
		clk.Advance(time.Second) // each client bound in a second of its own
	}
	require.NoError(t, p.set.SetState("app1", backend.Unhealthy))
	require.NoError(t, p.set.SetState("app2", backend.Healthy))
	require.NoError(t, p.set.SetState("app3", backend.Healthy))

	moved := map[string]int{}
	for _, ck := range bound {
		first := get(t, newClient(t, false), base+"/whoami", ck)
		again := get(t, newClient(t, false), base+"/whoami", ck)
		require.Equal(t, first.server, again.server, "one client's requests agree on its new backend")
		moved[first.server]++
	}
	assert.Len(t, moved, 2, "app1's clients, all from 127.0.0.1, spread over app2 and app3: %v", moved)
	assert.Zero(t, moved["app1"])
}

// TestMovedClientWhoseGroupEmptiedAgreesOnItsNewBackend checks that a
// client whose backend no longer serves it, and whose group has no other
// backend taking new clients, is re-placed on one backend by all its
// requests, as within a group: not on a group each request is dealt in
// turn, which re-binds it on every request.
func TestMovedClientWhoseGroupEmptiedAgreesOnItsNewBackend(t *testing.T) {
	var cfgs []backend.Config
	for _, m := range []struct{ id, group string }{{"old", "blue"}, {"g1", "green"}, {"r1", "red"}, {"y1", "yellow"}} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Served-By", m.id)
		}))
		t.Cleanup(srv.Close)
		cfgs = append(cfgs, backend.Config{ID: m.id, URL: srv.URL, Group: m.group})
	}
	set, err := backend.NewSet(cfgs, backend.WithEjection(backend.Ejection{}))
	require.NoError(t, err)
	for _, id := range []string{"g1", "r1", "y1"} {
		require.NoError(t, set.SetState(id, backend.Draining)) // the client is bound to old, in blue
	}
	pol := newCookie(t)
	h, err := sticky.New(set, pol)
	require.NoError(t, err)
	base := front(t, h)
	first := get(t, newClient(t, false), base+"/")
	require.Equal(t, "old", first.server)
	bound := balancerCookie(first.header, pol.Name())
	require.NotNil(t, bound)
	for _, id := range []string{"g1", "r1", "y1"} {
		require.NoError(t, set.SetState(id, backend.Healthy))
	}
	_, err = set.Remove("old") // its group, blue, is gone with it
	require.NoError(t, err)

	servers := map[string]int{}
	for range 6 {
		servers[get(t, newClient(t, false), base+"/", bound).server]++
	}
	assert.Len(t, servers, 1, "one client's requests went to %v", servers)
	assert.Zero(t, servers["old"])
}
