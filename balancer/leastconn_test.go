package balancer_test

import (
	"time"

	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/balancer"
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
		require.True(t, b.Acquire())
		t.Cleanup(b.Release)
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
					require.True(t, b.Acquire())
					t.Cleanup(b.Release)
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
				require.True(t, b.Acquire())
				t.Cleanup(b.Release)
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
