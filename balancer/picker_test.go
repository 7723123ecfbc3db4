package balancer_test

import (
	"errors"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/balancer"
	"github.com/affinitylb/affinity/internal/accounting"
)

// node describes a test backend: its ID, weight, requests in flight and state.
type node struct {
	id     string
	weight int
	load   int
	state  backend.State
}

// newSnapshot builds a set from nodes, puts each node's load in flight until
// the test ends, and returns the set's snapshot. The set fails closed, so
// that its Routable backends are exactly the healthy nodes.
func newSnapshot(t testing.TB, nodes ...node) *backend.Snapshot {
	t.Helper()
	cfgs := make([]backend.Config, len(nodes))
	for i, n := range nodes {
		cfgs[i] = backend.Config{ID: n.id, URL: "http://127.0.0.1:1/" + n.id, Weight: n.weight}
	}
	set, err := backend.NewSet(cfgs, backend.WithFailOpen(false))
	require.NoError(t, err)
	for _, n := range nodes {
		require.NoError(t, set.SetState(n.id, n.state))
		b := set.Snapshot().Lookup(n.id)
		for range n.load {
			require.True(t, accounting.Acquire(b))
			t.Cleanup(func() { accounting.Release(b) })
		}
	}
	return set.Snapshot()
}

// pickN picks n times from snap and counts the picks per backend ID.
func pickN(t *testing.T, p balancer.Picker, snap *backend.Snapshot, n int) map[string]int {
	t.Helper()
	got := make(map[string]int)
	for range n {
		b, err := p.Pick(balancer.Info{Snapshot: snap})
		require.NoError(t, err)
		got[b.ID()]++
	}
	return got
}

// pickers returns a fresh instance of every picker in the package.
func pickers() map[string]balancer.Picker {
	return map[string]balancer.Picker{
		"LeastConnections":         &balancer.LeastConnections{},
		"LeastConnections/sampled": sampled(),
		"RoundRobin":               &balancer.RoundRobin{},
		"ConsistentHash":           &balancer.ConsistentHash{},
	}
}

func TestPickerNoBackend(t *testing.T) {
	tests := []struct {
		name string
		snap func(t *testing.T) *backend.Snapshot
	}{
		{"zero set", func(*testing.T) *backend.Snapshot { return new(backend.Set).Snapshot() }},
		{"no members", func(t *testing.T) *backend.Snapshot { return newSnapshot(t) }},
		{"none routable", func(t *testing.T) *backend.Snapshot {
			return newSnapshot(t,
				node{id: "a", state: backend.Unhealthy},
				node{id: "b", state: backend.Draining},
			)
		}},
	}
	for pname, p := range pickers() {
		for _, tt := range tests {
			t.Run(pname+"/"+tt.name, func(t *testing.T) {
				b, err := p.Pick(balancer.Info{Snapshot: tt.snap(t)})
				assert.True(t, errors.Is(err, balancer.ErrNoBackend), "err = %v", err)
				assert.Nil(t, b)
			})
		}
	}
}

func TestPickerConcurrent(t *testing.T) {
	const goroutines, picks = 8, 1000
	for pname, p := range pickers() {
		t.Run(pname, func(t *testing.T) {
			snap := newSnapshot(t,
				node{id: "a", weight: 2},
				node{id: "b", load: 3},
				node{id: "c", state: backend.Unhealthy},
				node{id: "d", state: backend.Draining},
				node{id: "e", weight: 5, load: 1},
			)
			var wg sync.WaitGroup
			for range goroutines {
				wg.Go(func() {
					for range picks {
						b, err := p.Pick(balancer.Info{Snapshot: snap})
						if !assert.NoError(t, err) {
							return
						}
						assert.Equal(t, backend.Healthy, b.State(), "picked %s, which is %s", b, b.State())
						if assert.True(t, accounting.Acquire(b), "picked %s, which is removed", b) {
							accounting.Release(b)
						}
					}
				})
			}
			wg.Wait()
			for _, b := range snap.Backends() {
				want := map[string]int64{"b": 3, "e": 1}[b.ID()]
				assert.Equal(t, want, b.InFlight(), "backend %s", b)
			}
		})
	}
}
