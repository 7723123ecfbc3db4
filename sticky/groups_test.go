package sticky_test

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/balancer"
	"github.com/affinitylb/affinity/cookie"
	"github.com/affinitylb/affinity/policy"
	"github.com/affinitylb/affinity/sticky"
)

// groupFront is a handler over backends in groups, served on 127.0.0.1.
type groupFront struct {
	set    *backend.Set
	url    string
	client *http.Client // keeps no cookies: each test client is its cookie
	group  map[string]string
	name   string // the cookie's name
}

// newGroupFront starts the demo apps members names, by group, and a
// handler over them with a cookie policy, the given group weights and
// handler options opts.
func newGroupFront(t *testing.T, members map[string][]string, weights map[string]int, opts ...sticky.Option) *groupFront {
	t.Helper()
	g := &groupFront{group: map[string]string{}}
	var cfgs []backend.Config
	for group, names := range members {
		for _, name := range names {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Served-By", name)
				io.WriteString(w, name)
			}))
			t.Cleanup(srv.Close)
			cfgs = append(cfgs, backend.Config{ID: name, URL: srv.URL, Group: group})
			g.group[name] = group
		}
	}
	set, err := backend.NewSet(cfgs, backend.WithGroupWeights(weights))
	require.NoError(t, err)
	pol := newCookie(t)
	h, err := sticky.New(set, pol, opts...)
	require.NoError(t, err)
	g.set, g.url, g.name = set, front(t, h), pol.Name()
	g.client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	t.Cleanup(g.client.CloseIdleConnections)
	return g
}

// visit sends one request with ck, if not nil, and returns the backend
// that served it and the binding cookie the response set, if any.
func (g *groupFront) visit(t *testing.T, ck *http.Cookie) (string, *http.Cookie) {
	t.Helper()
	return g.visitFrom(t, ck, "")
}

// visitFrom is visit for a client at the address from, which a proxy the
// handler trusts forwards in X-Forwarded-For; none if from is "".
func (g *groupFront) visitFrom(t *testing.T, ck *http.Cookie, from string) (string, *http.Cookie) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, g.url, nil)
	require.NoError(t, err)
	if from != "" {
		req.Header.Set("X-Forwarded-For", from)
	}
	if ck != nil {
		req.AddCookie(ck)
	}
	resp, err := g.client.Do(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusOK, resp.StatusCode)
	return resp.Header.Get("X-Served-By"), balancerCookie(resp.Header, g.name)
}

// groupClient is a client of a groupFront: its cookie and its backend.
type groupClient struct {
	ck      *http.Cookie
	backend string
}

// newClients places n new clients, one after another, and returns them.
func (g *groupFront) newClients(t *testing.T, n int) []*groupClient {
	t.Helper()
	cs := make([]*groupClient, n)
	for i := range cs {
		served, ck := g.visit(t, nil)
		require.NotNil(t, ck, "a new client is bound")
		cs[i] = &groupClient{ck: ck, backend: served}
	}
	return cs
}

// again sends each client's next request, keeping the cookie it is given,
// and returns the backend that served each.
func (g *groupFront) again(t *testing.T, cs []*groupClient) []string {
	t.Helper()
	out := make([]string, len(cs))
	for i, c := range cs {
		served, ck := g.visit(t, c.ck)
		if ck != nil {
			c.ck = ck
		}
		out[i] = served
	}
	return out
}

// byGroup counts the clients of cs by the group of their backend.
func (g *groupFront) byGroup(cs []*groupClient) map[string]int {
	n := map[string]int{}
	for _, c := range cs {
		n[g.group[c.backend]]++
	}
	return n
}

// TestGroupsNewClientsByWeight places 1,000 new clients over groups
// weighted 70/30, then flips the weights to 0/100: every bound client's
// next 20 requests stay on its backend, and new clients go to green.
func TestGroupsNewClientsByWeight(t *testing.T) {
	g := newGroupFront(t,
		map[string][]string{"blue": {"blue1", "blue2"}, "green": {"green1", "green2"}},
		map[string]int{"blue": 70, "green": 30})
	cs := g.newClients(t, 1000)
	n := g.byGroup(cs)
	t.Logf("1,000 new clients at 70/30: blue %d, green %d", n["blue"], n["green"])
	assert.InDelta(t, 700, n["blue"], 20, "within 2%% of 70%%")
	assert.InDelta(t, 300, n["green"], 20, "within 2%% of 30%%")
	for _, name := range []string{"blue1", "blue2", "green1", "green2"} {
		assert.Positive(t, countOn(cs, name), "the picker spreads within the group: %s", name)
	}

	require.NoError(t, g.set.SetGroupWeight("blue", 0))
	require.NoError(t, g.set.SetGroupWeight("green", 100))
	var wg sync.WaitGroup
	const workers = 8
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(cs); i += workers {
				c := cs[i]
				for range 20 {
					served, ck := g.visit(t, c.ck)
					if !assert.Equal(t, c.backend, served, "a bound client stays on its backend") {
						return
					}
					assert.Equal(t, g.group[c.backend], g.group[served], "and its group")
					if ck != nil {
						c.ck = ck
					}
				}
			}
		})
	}
	wg.Wait()

	fresh := g.byGroup(g.newClients(t, 100))
	assert.Equal(t, map[string]int{"green": 100}, fresh, "new clients go by the new weights")
}

// countOn returns how many clients of cs are on backend name.
func countOn(cs []*groupClient, name string) int {
	n := 0
	for _, c := range cs {
		if c.backend == name {
			n++
		}
	}
	return n
}

// TestGroupsBackendRemoved removes the backends of group green one by
// one: the clients of the first move to the other green backend, none to
// another group; once the last has gone they are given a group by a hash
// of their bindings and addresses, in proportion to weight.
func TestGroupsBackendRemoved(t *testing.T) {
	g := newGroupFront(t,
		map[string][]string{"blue": {"blue1"}, "green": {"green1", "green2"}, "red": {"red1"}},
		map[string]int{"blue": 50, "green": 30, "red": 20},
		sticky.WithTrustedProxies(netip.MustParsePrefix("127.0.0.1/32")))
	cs := g.newClients(t, 300)
	var on1 []*groupClient
	for _, c := range cs {
		if c.backend == "green1" {
			on1 = append(on1, c)
		}
	}
	require.NotEmpty(t, on1)

	_, err := g.set.Remove("green1")
	require.NoError(t, err)
	for i, served := range g.again(t, on1) {
		assert.Equal(t, "green2", served, "client %d: re-placed within green", i)
		on1[i].backend = served
	}
	var green []*groupClient
	for _, c := range cs {
		if g.group[c.backend] == "green" {
			green = append(green, c)
		}
	}
	_, err = g.set.Remove("green2")
	require.NoError(t, err)
	n := map[string]int{}
	for i, c := range green {
		// Each from an address of its own: the clients bound in one
		// second from one address carry the same cookie, and go to one
		// group.
		served, _ := g.visitFrom(t, c.ck, fmt.Sprintf("192.0.2.%d", i+1))
		n[g.group[served]]++
	}
	t.Logf("%d clients of green, its last backend gone: %v", len(green), n)
	assert.Zero(t, n["green"])
	// A hash, not a count: within four standard deviations.
	assert.InDelta(t, len(green)*5/7, n["blue"], 4*math.Sqrt(float64(len(green))*10/49), "by weight: blue 50 to red 20")
	assert.InDelta(t, len(green)*2/7, n["red"], 4*math.Sqrt(float64(len(green))*10/49), "by weight: blue 50 to red 20")
}

// TestGroupsWeightZero checks that a group at weight 0 takes no new
// clients, keeps those bound to it, and re-places them within itself when
// their backend leaves.
func TestGroupsWeightZero(t *testing.T) {
	g := newGroupFront(t,
		map[string][]string{"blue": {"blue1"}, "green": {"green1", "green2"}},
		map[string]int{"blue": 1, "green": 1})
	cs := g.newClients(t, 40)
	require.NoError(t, g.set.SetGroupWeight("green", 0))

	assert.Equal(t, map[string]int{"blue": 50}, g.byGroup(g.newClients(t, 50)), "no new client for green")
	for i, served := range g.again(t, cs) {
		assert.Equal(t, cs[i].backend, served, "client %d keeps its backend", i)
	}

	_, err := g.set.Remove("green1")
	require.NoError(t, err)
	for i, served := range g.again(t, cs) {
		want := cs[i].backend
		if want == "green1" {
			want = "green2"
		}
		assert.Equal(t, want, served, "client %d: green1's clients stay in green, at weight 0", i)
	}
}

// TestGroupsAllWeightsZero checks that new clients are still served when
// no group of positive weight can take them: by the whole set.
func TestGroupsAllWeightsZero(t *testing.T) {
	g := newGroupFront(t,
		map[string][]string{"blue": {"blue1"}, "green": {"green1"}},
		map[string]int{"blue": 0, "green": 0})
	n := g.byGroup(g.newClients(t, 10))
	assert.Equal(t, 10, n["blue"]+n["green"])
}

// TestGroupsUnhealthyBackend checks that the clients of a backend that is
// unhealthy, still a member, are re-placed within its group.
func TestGroupsUnhealthyBackend(t *testing.T) {
	g := newGroupFront(t,
		map[string][]string{"blue": {"blue1", "blue2"}, "green": {"green1"}},
		map[string]int{"blue": 1, "green": 1000})
	cs := g.newClients(t, 2003)
	var on []*groupClient
	for _, c := range cs {
		if c.backend == "blue1" {
			on = append(on, c)
		}
	}
	require.NotEmpty(t, on)
	require.NoError(t, g.set.SetState("blue1", backend.Unhealthy))
	for i, served := range g.again(t, on) {
		assert.Equal(t, "blue2", served, "client %d", i)
	}
}

// TestGroupsKeys checks that keyed requests hash within the group their
// key is assigned to, and that moving weight from one group to the other
// moves keys only that way.
func TestGroupsKeys(t *testing.T) {
	var cfgs []backend.Config
	group := map[string]string{}
	for _, m := range []struct{ id, group string }{{"a1", "a"}, {"a2", "a"}, {"b1", "b"}, {"b2", "b"}} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Served-By", m.id)
		}))
		t.Cleanup(srv.Close)
		cfgs = append(cfgs, backend.Config{ID: m.id, URL: srv.URL, Group: m.group})
		group[m.id] = m.group
	}
	set, err := backend.NewSet(cfgs, backend.WithGroupWeights(map[string]int{"a": 50, "b": 50}))
	require.NoError(t, err)
	pol, err := policy.HeaderKey("X-User")
	require.NoError(t, err)
	h, err := sticky.New(set, pol)
	require.NoError(t, err)
	base := front(t, h)
	client := &http.Client{}
	t.Cleanup(client.CloseIdleConnections)

	const keys = 600
	place := func() []string {
		out := make([]string, keys)
		for k := range keys {
			req, err := http.NewRequest(http.MethodGet, base, nil)
			require.NoError(t, err)
			req.Header.Set("X-User", fmt.Sprintf("user-%d", k))
			resp, err := client.Do(req)
			require.NoError(t, err)
			require.NoError(t, resp.Body.Close())
			out[k] = resp.Header.Get("X-Served-By")
		}
		return out
	}
	count := func(served []string) map[string]int {
		n := map[string]int{}
		for _, s := range served {
			n[group[s]]++
		}
		return n
	}
	before := place()
	assert.Equal(t, before, place(), "a key stays where it is")
	n := count(before)
	t.Logf("%d keys at 50/50: %v", keys, n)
	assert.InDelta(t, keys/2, n["a"], keys/10)

	require.NoError(t, set.SetGroupWeight("a", 20))
	require.NoError(t, set.SetGroupWeight("b", 80))
	after := place()
	n = count(after)
	t.Logf("%d keys at 20/80: %v", keys, n)
	assert.InDelta(t, keys/5, n["a"], keys/10)
	moved := 0
	for k := range keys {
		if before[k] != after[k] {
			moved++
			assert.Equal(t, "a", group[before[k]], "key %d moved from %s, not from group a", k, before[k])
			assert.Equal(t, "b", group[after[k]], "key %d moved to %s, not to group b", k, after[k])
		}
	}
	assert.InDelta(t, keys*3/10, moved, keys/10, "about the 30%% of the keys that must move")
}

// TestGroupsCookieReplicas checks that two replicas, each with its own
// set and cookie policy over the same configs and keys, agree on every
// client's binding, its group included, even once its backend has left.
func TestGroupsCookieReplicas(t *testing.T) {
	members := map[string][]string{"blue": {"blue1", "blue2"}, "green": {"green1", "green2"}}
	weights := map[string]int{"blue": 50, "green": 50}
	var cfgs []backend.Config
	group := map[string]string{}
	for g, names := range members {
		for _, name := range names {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Served-By", name)
			}))
			t.Cleanup(srv.Close)
			cfgs = append(cfgs, backend.Config{ID: name, URL: srv.URL, Group: g})
			group[name] = g
		}
	}
	var replicas [2]*groupFront
	for i := range replicas {
		set, err := backend.NewSet(cfgs, backend.WithGroupWeights(weights))
		require.NoError(t, err)
		pol, err := cookie.New([][]byte{testKey})
		require.NoError(t, err)
		h, err := sticky.New(set, pol)
		require.NoError(t, err)
		replicas[i] = &groupFront{set: set, url: front(t, h), client: &http.Client{}, group: group, name: pol.Name()}
		t.Cleanup(replicas[i].client.CloseIdleConnections)
	}
	cs := replicas[0].newClients(t, 100)
	for i, served := range replicas[1].again(t, cs) {
		assert.Equal(t, cs[i].backend, served, "client %d: the other replica agrees", i)
	}
	for _, r := range replicas {
		_, err := r.set.Remove("green1")
		require.NoError(t, err)
	}
	for i, served := range replicas[1].again(t, cs) {
		want := cs[i].backend
		if want == "green1" {
			want = "green2"
		}
		assert.Equal(t, want, served, "client %d: its group read by the other replica", i)
		cs[i].backend = served
	}
	for i, served := range replicas[0].again(t, cs) {
		assert.Equal(t, cs[i].backend, served, "client %d: back on the first replica", i)
	}
}

// TestGroupsPickerSpreadsWithinEachGroup places 40 new clients, one after
// another on idle backends, over two groups of two weighted 50/50, with
// each of the module's pickers that rotate: the groups alternate, and
// within each group the picker rotates through its members, 10 clients
// each, whatever the other group's picks.
func TestGroupsPickerSpreadsWithinEachGroup(t *testing.T) {
	for _, tc := range []struct {
		name   string
		picker balancer.Picker
	}{
		{"leastconn", &balancer.LeastConnections{}},
		{"roundrobin", &balancer.RoundRobin{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGroupFront(t,
				map[string][]string{"blue": {"blue1", "blue2"}, "green": {"green1", "green2"}},
				map[string]int{"blue": 50, "green": 50}, sticky.WithPicker(tc.picker))
			cs := g.newClients(t, 40)
			n := map[string]int{}
			for _, c := range cs {
				n[c.backend]++
			}
			assert.Equal(t, map[string]int{"blue1": 10, "blue2": 10, "green1": 10, "green2": 10}, n)
		})
	}
}
