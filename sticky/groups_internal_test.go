package sticky

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/policy"
)

// groupSet returns a set of one backend in each of groups, weighted as
// weights says.
func groupSet(t *testing.T, weights map[string]int, groups ...string) *backend.Set {
	t.Helper()
	var cfgs []backend.Config
	for i, g := range groups {
		cfgs = append(cfgs, backend.Config{ID: g, URL: fmt.Sprintf("http://127.0.0.1:%d", i+1), Group: g})
	}
	set, err := backend.NewSet(cfgs, backend.WithGroupWeights(weights))
	require.NoError(t, err)
	return set
}

// keyGroups returns the group of each of n keys under set's weights.
func keyGroups(set *backend.Set, n int) []string {
	var g groups
	out := make([]string, n)
	snap := set.Snapshot()
	for k := range out {
		sub := g.snapshot(snap, policy.Binding{Status: policy.Keyed, KeyHash: policy.HashKey(fmt.Sprint("key-", k))}, nil, 0)
		out[k] = sub.Backends()[0].Group()
	}
	return out
}

func TestRendezvousSplit(t *testing.T) {
	const n = 100_000
	tests := []struct {
		name    string
		weights map[string]int
	}{
		{"70/30", map[string]int{"a": 70, "b": 30}},
		{"50/30/20", map[string]int{"a": 50, "b": 30, "c": 20}},
		{"1/1/1/1", map[string]int{"a": 1, "b": 1, "c": 1, "d": 1}},
		{"999/1", map[string]int{"a": 999, "b": 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var names []string
			total := 0
			for g, w := range tt.weights {
				names = append(names, g)
				total += w
			}
			count := map[string]int{}
			for _, g := range keyGroups(groupSet(t, tt.weights, names...), n) {
				count[g]++
			}
			for g, w := range tt.weights {
				assert.InDelta(t, float64(n*w)/float64(total), count[g], 0.01*n, "group %s", g)
			}
		})
	}
}

// TestRendezvousMoves checks which keys move when weights change: moving
// weight from a to b moves keys from a to b only; with a third group, a
// change of one group's weight moves keys only to it (it grows) or from
// it (it shrinks).
func TestRendezvousMoves(t *testing.T) {
	const n = 50_000
	tests := []struct {
		name     string
		from, to map[string]int
		changed  string // the group whose weight changes, "" for a move between a and b
	}{
		{"a to b", map[string]int{"a": 70, "b": 30}, map[string]int{"a": 40, "b": 60}, ""},
		{"a to b, all", map[string]int{"a": 70, "b": 30}, map[string]int{"a": 0, "b": 100}, ""},
		{"c grows", map[string]int{"a": 50, "b": 30, "c": 20}, map[string]int{"a": 50, "b": 30, "c": 60}, "c"},
		{"c shrinks", map[string]int{"a": 50, "b": 30, "c": 20}, map[string]int{"a": 50, "b": 30, "c": 5}, "c"},
		{"c to 0", map[string]int{"a": 50, "b": 30, "c": 20}, map[string]int{"a": 50, "b": 30, "c": 0}, "c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var names []string
			for g := range tt.from {
				names = append(names, g)
			}
			before := keyGroups(groupSet(t, tt.from, names...), n)
			after := keyGroups(groupSet(t, tt.to, names...), n)
			moved := 0
			for k := range n {
				if before[k] == after[k] {
					continue
				}
				moved++
				if tt.changed == "" {
					require.Equal(t, "a", before[k], "key %d", k)
					require.Equal(t, "b", after[k], "key %d", k)
					continue
				}
				grew := tt.to[tt.changed] > tt.from[tt.changed]
				if grew {
					require.Equal(t, tt.changed, after[k], "key %d: moved %s to %s", k, before[k], after[k])
				} else {
					require.Equal(t, tt.changed, before[k], "key %d: moved %s to %s", k, before[k], after[k])
				}
			}
			assert.Positive(t, moved)
		})
	}
}

func TestSmoothWRR(t *testing.T) {
	tests := []struct {
		ws   []int
		want []uint16
	}{
		{[]int{70, 30}, []uint16{0, 1, 0, 0, 0, 1, 0, 0, 1, 0}},
		{[]int{5, 1, 1}, []uint16{0, 0, 1, 0, 2, 0, 0}}, // nginx's example
		{[]int{1000}, []uint16{0}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.ws), func(t *testing.T) {
			assert.Equal(t, tt.want, smoothWRR(tt.ws))
		})
	}
}
