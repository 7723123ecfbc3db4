package balancer_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/balancer"
)

func TestRoundRobin(t *testing.T) {
	tests := []struct {
		name  string
		nodes []node
		want  []string // IDs of successive picks
	}{
		{
			name:  "rotates in order",
			nodes: []node{{id: "a"}, {id: "b"}, {id: "c"}},
			want:  []string{"a", "b", "c", "a", "b", "c", "a"},
		},
		{
			name: "skips backends that are not routable",
			nodes: []node{
				{id: "a"},
				{id: "b", state: backend.Unhealthy},
				{id: "c"},
				{id: "d", state: backend.Draining},
			},
			want: []string{"a", "c", "a", "c"},
		},
		{
			name:  "ignores weight and load",
			nodes: []node{{id: "a", weight: 5}, {id: "b", load: 7}},
			want:  []string{"a", "b", "a", "b"},
		},
		{
			name:  "single backend",
			nodes: []node{{id: "a"}},
			want:  []string{"a", "a", "a"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			snap := newSnapshot(t, tt.nodes...)
			var rr balancer.RoundRobin
			var got []string
			for range tt.want {
				b, err := rr.Pick(balancer.Info{Snapshot: snap})
				require.NoError(t, err)
				got = append(got, b.ID())
			}
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestRoundRobinEven(t *testing.T) {
	snap := newSnapshot(t, node{id: "a"}, node{id: "b"}, node{id: "c"})
	got := pickN(t, &balancer.RoundRobin{}, snap, 30)
	assert.Equal(t, map[string]int{"a": 10, "b": 10, "c": 10}, got)
}
