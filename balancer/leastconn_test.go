package balancer_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/balancer"
	"github.com/affinitylb/affinity/internal/accounting"
)

func TestLeastConnections(t *testing.T) {
	tests := []struct {
		name  string
		nodes []node
		picks int
		want  map[string]int
	}{
		{
			name:  "idle backends share evenly",
			nodes: []node{{id: "a"}, {id: "b"}, {id: "c"}},
			picks: 30,
			want:  map[string]int{"a": 10, "b": 10, "c": 10},
		},
		{
			name:  "least loaded always wins",
			nodes: []node{{id: "a", load: 1}, {id: "b"}, {id: "c", load: 1}},
			picks: 20,
			want:  map[string]int{"b": 20},
		},
		{
			name:  "ties among the least loaded share evenly",
			nodes: []node{{id: "a"}, {id: "b", load: 1}, {id: "c"}},
			picks: 20,
			want:  map[string]int{"a": 10, "c": 10},
		},
		{
			name:  "idle ties share by weight",
			nodes: []node{{id: "a", weight: 1}, {id: "b", weight: 3}},
			picks: 40,
			want:  map[string]int{"a": 10, "b": 30},
		},
		{
			name:  "equal load per weight shares by weight",
			nodes: []node{{id: "a", weight: 3, load: 3}, {id: "b", weight: 1, load: 1}},
			picks: 40,
			want:  map[string]int{"a": 30, "b": 10},
		},
		{
			name:  "2 in flight on weight 2 ties 1 on weight 1",
			nodes: []node{{id: "a", weight: 2, load: 2}, {id: "b", weight: 1, load: 1}},
			picks: 30,
			want:  map[string]int{"a": 20, "b": 10},
		},
		{
			name:  "1 in flight on weight 3 beats 1 on weight 1",
			nodes: []node{{id: "a", weight: 1, load: 1}, {id: "b", weight: 3, load: 1}},
			picks: 20,
			want:  map[string]int{"b": 20},
		},
		{
			name: "unhealthy and draining are never picked",
			nodes: []node{
				{id: "a", state: backend.Unhealthy},
				{id: "b", state: backend.Draining},
				{id: "c", load: 5},
			},
			picks: 20,
			want:  map[string]int{"c": 20},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			snap := newSnapshot(t, tt.nodes...)
			got := pickN(t, &balancer.LeastConnections{}, snap, tt.picks)
			assert.Equal(t, tt.want, got)
		})
	}
}

// TestLeastConnectionsAccounted holds every picked request in flight, as the
// handler does, and checks that load ends up proportional to weight.
func TestLeastConnectionsAccounted(t *testing.T) {
	snap := newSnapshot(t,
		node{id: "a", weight: 1},
		node{id: "b", weight: 2},
		node{id: "c", weight: 1, state: backend.Draining},
		node{id: "d", weight: 1},
	)
	var lc balancer.LeastConnections
	for range 40 {
		b, err := lc.Pick(balancer.Info{Snapshot: snap})
		require.NoError(t, err)
		require.True(t, accounting.Acquire(b))
		t.Cleanup(func() { accounting.Release(b) })
	}
	got := make(map[string]int64)
	for _, b := range snap.Backends() {
		got[b.ID()] = b.InFlight()
	}
	assert.Equal(t, map[string]int64{"a": 10, "b": 20, "c": 0, "d": 10}, got)
}

func TestLeastConnectionsSlowStart(t *testing.T) {
	for _, tc := range []struct {
		name      string
		opts      []backend.Option
		wantFewer bool
	}{
		{"without slow start the newcomer takes every new client", nil, false},
		{"with slow start it takes a few", []backend.Option{backend.WithSlowStart(time.Hour)}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set, err := backend.NewSet([]backend.Config{
				{ID: "a", URL: "http://127.0.0.1:1"},
				{ID: "b", URL: "http://127.0.0.1:2"},
				{ID: "c", URL: "http://127.0.0.1:3"},
			}, tc.opts...)
			require.NoError(t, err)
			for _, b := range set.Snapshot().Backends() {
				for range 10 {
					require.True(t, accounting.Acquire(b))
					t.Cleanup(func() { accounting.Release(b) })
				}
			}
			_, err = set.Add(backend.Config{ID: "new", URL: "http://127.0.0.1:4"})
			require.NoError(t, err)

			// Twelve new clients, each held in flight, as under load.
			lc := &balancer.LeastConnections{}
			got := 0
			for range 12 {
				b, err := lc.Pick(balancer.Info{Snapshot: set.Snapshot()})
				require.NoError(t, err)
				require.True(t, accounting.Acquire(b))
				t.Cleanup(func() { accounting.Release(b) })
				if b.ID() == "new" {
					got++
				}
			}
			if tc.wantFewer {
				assert.Positive(t, got, "the newcomer got nothing")
				assert.LessOrEqual(t, got, 5, "the newcomer was flooded")
			} else {
				assert.GreaterOrEqual(t, got, 10)
			}
		})
	}
}

// sampled returns a LeastConnections that samples two backends from pools of
// any size, as it does from pools larger than balancer.ExactMax.
func sampled() *balancer.LeastConnections { return balancer.NewLeastConnectionsExactUpTo(1) }

// TestLeastConnectionsShares checks the picker's quality as Envoy's
// least_request simulations do: with loads held fixed (nothing acquired
// during the run), each backend's share of 100,000 picks is within one
// percentage point of what the algorithm gives it analytically.
//
// Exact picks go to the least loaded backends only, in proportion to
// weight. Sampled picks draw two distinct backends uniformly: a pair has
// probability 2/(N(N-1)), and a backend is picked when it is drawn and the
// other is more loaded, or as loaded (then in proportion to the weights).
// Loads are compared relative to weight. So with 3 backends loaded 0, 0
// and 1, the idle ones get 1/3 × (1/2 + 1) = 50% each and the busy one
// none (Envoy, which draws with replacement, gives it 1/9); with 10 of
// which 3 are busy, an idle one gets 2/90 × (6 × 1/2 + 3) = 13.33% and a
// busy one 2/90 × (2 × 1/2) = 2.22%.
func TestLeastConnectionsShares(t *testing.T) {
	const picks = 100000
	idle := func(n int) []node {
		nodes := make([]node, n)
		for i := range nodes {
			nodes[i] = node{id: fmt.Sprintf("b%d", i)}
		}
		return nodes
	}
	busy := func(nodes []node, load ...int) []node {
		for i, l := range load {
			nodes[i].load = l
		}
		return nodes
	}
	weighted := func(weight ...int) []node {
		nodes := idle(len(weight))
		for i, w := range weight {
			nodes[i].weight = w
		}
		return nodes
	}
	tests := []struct {
		name  string
		nodes []node
	}{
		{"3 idle", idle(3)},
		{"3, one busy", busy(idle(3), 0, 0, 1)},
		{"10 idle", idle(10)},
		{"10, three busy", busy(idle(10), 1, 1, 1)},
		{"10, loads 0 to 9", busy(idle(10), 9, 8, 7, 6, 5, 4, 3, 2, 1, 0)},
		{"4 idle, weights 1, 1, 2, 4", weighted(1, 1, 2, 4)},
		{"4 loaded, weights 1, 2, 3, 4", busy(weighted(1, 2, 3, 4), 1, 2, 6, 4)},
		{"32, loads 0 to 3", busy(idle(32), repeat([]int{0, 1, 2, 3}, 8)...)},
		{"33, loads 0 to 2", busy(idle(33), repeat([]int{0, 1, 2}, 11)...)},
		{"100, loads 0 to 4", busy(idle(100), repeat([]int{0, 1, 2, 3, 4}, 20)...)},
	}
	for _, tt := range tests {
		snap := newSnapshot(t, tt.nodes...)
		for _, p := range []struct {
			name string
			lc   *balancer.LeastConnections
			want func([]load) []float64
		}{
			{"default", &balancer.LeastConnections{}, defaultShares},
			{"sampled", sampled(), sampledShares},
		} {
			t.Run(tt.name+"/"+p.name, func(t *testing.T) {
				checkShares(t, p.lc, snap, picks, p.want(loads(snap)))
			})
		}
	}
}

// TestLeastConnectionsSampledSlowStart checks that sampled picks weigh a
// backend in slow start by its effective load: joining three backends with
// 0, 15 and 15 requests in flight, the newcomer counts as 8 in flight, so
// it loses to the idle one rather than tying with it.
func TestLeastConnectionsSampledSlowStart(t *testing.T) {
	set, err := backend.NewSet([]backend.Config{
		{ID: "a", URL: "http://127.0.0.1:1"},
		{ID: "b", URL: "http://127.0.0.1:2"},
		{ID: "c", URL: "http://127.0.0.1:3"},
	}, backend.WithSlowStart(time.Hour))
	require.NoError(t, err)
	for _, id := range []string{"b", "c"} {
		for range 15 {
			b := set.Snapshot().Lookup(id)
			require.True(t, accounting.Acquire(b))
			t.Cleanup(func() { accounting.Release(b) })
		}
	}
	_, err = set.Add(backend.Config{ID: "new", URL: "http://127.0.0.1:4"})
	require.NoError(t, err)
	snap := set.Snapshot()
	require.True(t, snap.Ramping())
	ls := loads(snap)
	require.Equal(t, int64(8), ls[3].n, "the newcomer's effective load")
	// a beats every other and gets 1/2; new beats b and c, 1/3; b and c tie,
	// 1/12 each.
	checkShares(t, sampled(), snap, 100000, sampledShares(ls))
}

// TestLeastConnectionsSampledAccounted holds every picked request in flight,
// as the handler does, and checks that sampling keeps the busiest of 200
// backends close to the mean: two choices leave it O(log log N) above.
func TestLeastConnectionsSampledAccounted(t *testing.T) {
	const n, perBackend = 200, 10
	nodes := make([]node, n)
	for i := range nodes {
		nodes[i] = node{id: fmt.Sprintf("b%d", i)}
	}
	snap := newSnapshot(t, nodes...)
	lc := sampled()
	for range n * perBackend {
		b, err := lc.Pick(balancer.Info{Snapshot: snap})
		require.NoError(t, err)
		require.True(t, accounting.Acquire(b))
		t.Cleanup(func() { accounting.Release(b) })
	}
	most := int64(0)
	for _, b := range snap.Backends() {
		most = max(most, b.InFlight())
	}
	t.Logf("busiest backend: %d in flight, mean %d", most, perBackend)
	assert.LessOrEqual(t, most, int64(perBackend+4))
}

// load is a routable backend's effective load and weight, as pickers see them.
type load struct {
	id   string
	n, w int64
}

func loads(snap *backend.Snapshot) []load {
	var ls []load
	for _, b := range snap.Routable() {
		ls = append(ls, load{b.ID(), snap.Load(b), b.Weight()})
	}
	return ls
}

// defaultShares returns the share of picks each backend gets from a
// LeastConnections zero value: exact up to balancer.ExactMax routable
// backends, sampled past it.
func defaultShares(ls []load) []float64 {
	if len(ls) <= balancer.ExactMax {
		return exactShares(ls)
	}
	return sampledShares(ls)
}

// exactShares returns the share of exact picks each backend gets: the least
// loaded share in proportion to weight.
func exactShares(ls []load) []float64 {
	least := ls[0]
	for _, l := range ls {
		if l.n*least.w < least.n*l.w {
			least = l
		}
	}
	var total float64
	shares := make([]float64, len(ls))
	for i, l := range ls {
		if l.n*least.w == least.n*l.w {
			shares[i] = float64(l.w)
			total += float64(l.w)
		}
	}
	for i := range shares {
		shares[i] /= total
	}
	return shares
}

// sampledShares returns the share of sampled picks each backend gets: over
// every pair it may be drawn in, the chance of the pair times the chance it
// wins.
func sampledShares(ls []load) []float64 {
	pair := 2 / float64(len(ls)*(len(ls)-1))
	shares := make([]float64, len(ls))
	for i, a := range ls {
		for j, b := range ls {
			switch l, r := a.n*b.w, b.n*a.w; {
			case i == j || l > r:
			case l < r:
				shares[i] += pair
			default:
				shares[i] += pair * float64(a.w) / float64(a.w+b.w)
			}
		}
	}
	return shares
}

// checkShares makes picks from snap, whose loads do not change meanwhile,
// and checks that each routable backend's share of them is within one
// percentage point of want.
func checkShares(t *testing.T, lc *balancer.LeastConnections, snap *backend.Snapshot, picks int, want []float64) {
	t.Helper()
	got := pickN(t, lc, snap, picks)
	var report []string
	for i, b := range snap.Routable() {
		share := 100 * float64(got[b.ID()]) / float64(picks)
		report = append(report, fmt.Sprintf("%s %.2f%% (want %.2f%%)", b.ID(), share, 100*want[i]))
		assert.InDelta(t, 100*want[i], share, 1, "backend %s", b.ID())
	}
	if len(report) > 12 {
		report = append(report[:12], "...")
	}
	t.Logf("%s", strings.Join(report, ", "))
}

// repeat returns s repeated n times.
func repeat(s []int, n int) []int {
	var out []int
	for range n {
		out = append(out, s...)
	}
	return out
}
