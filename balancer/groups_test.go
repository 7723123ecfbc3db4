package balancer_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/balancer"
)

// TestConsistentHashGroups checks that a ConsistentHash picking within the
// snapshots of a set's groups keeps a table for each of them, and maps
// each key within the group it is asked for, to the same backend every
// time.
func TestConsistentHashGroups(t *testing.T) {
	var cfgs []backend.Config
	groups := []string{"a", "b", "c", "d"}
	for i, g := range groups {
		for j := range 3 {
			cfgs = append(cfgs, backend.Config{ID: fmt.Sprintf("%s%d", g, j), URL: fmt.Sprintf("http://127.0.0.1:%d", 10*i+j+1), Group: g})
		}
	}
	set, err := backend.NewSet(cfgs)
	require.NoError(t, err)
	snap := set.Snapshot()
	var h balancer.ConsistentHash
	pick := func(g string, key uint64) *backend.Backend {
		b, err := h.Pick(balancer.Info{Snapshot: snap.Group(g), KeyHash: key, Keyed: true})
		require.NoError(t, err)
		return b
	}
	first := map[string]*backend.Backend{}
	for round := range 3 {
		for k := range uint64(200) {
			for _, g := range groups {
				b := pick(g, k)
				assert.Equal(t, g, b.Group(), "key %d within group %s", k, g)
				if round == 0 {
					first[fmt.Sprint(g, k)] = b
				} else {
					assert.Same(t, first[fmt.Sprint(g, k)], b, "key %d of group %s stays", k, g)
				}
			}
		}
	}
	for _, g := range groups {
		assert.True(t, balancer.Built(&h, snap.Group(g)), "the table of group %s is kept", g)
	}
}

// TestRotatingPickersGroups checks that RoundRobin and LeastConnections,
// picking within two groups of two idle backends in turn, rotate within
// each group, and allocate nothing once each group has been picked within.
func TestRotatingPickersGroups(t *testing.T) {
	set, err := backend.NewSet([]backend.Config{
		{ID: "a1", URL: "http://127.0.0.1:1", Group: "a"}, {ID: "a2", URL: "http://127.0.0.1:2", Group: "a"},
		{ID: "b1", URL: "http://127.0.0.1:3", Group: "b"}, {ID: "b2", URL: "http://127.0.0.1:4", Group: "b"},
	})
	require.NoError(t, err)
	snap := set.Snapshot()
	for _, tc := range []struct {
		name string
		p    balancer.Picker
	}{
		{"roundrobin", &balancer.RoundRobin{}},
		{"leastconn", &balancer.LeastConnections{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := map[string]int{}
			for range 20 {
				for _, g := range []string{"a", "b"} {
					b, err := tc.p.Pick(balancer.Info{Snapshot: snap.Group(g)})
					require.NoError(t, err)
					n[b.ID()]++
				}
			}
			assert.Equal(t, map[string]int{"a1": 10, "a2": 10, "b1": 10, "b2": 10}, n)
			allocs := testing.AllocsPerRun(100, func() {
				_, _ = tc.p.Pick(balancer.Info{Snapshot: snap.Group("a")})
				_, _ = tc.p.Pick(balancer.Info{Snapshot: snap.Group("b")})
			})
			assert.Zero(t, allocs)
		})
	}
}
