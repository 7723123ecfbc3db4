package backend_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
)

// groupNames returns the names and weights of the groups of snap.
func groupNames(snap *backend.Snapshot) map[string]int {
	out := map[string]int{}
	for _, g := range snap.Groups() {
		out[g.Name] = g.Weight
	}
	return out
}

func TestGroups(t *testing.T) {
	set, err := backend.NewSet([]backend.Config{
		{ID: "b1", URL: "http://127.0.0.1:1/b1", Group: "blue"},
		{ID: "g1", URL: "http://127.0.0.1:1/g1", Group: "green"},
		{ID: "b2", URL: "http://127.0.0.1:1/b2", Group: "blue"},
		{ID: "d", URL: "http://127.0.0.1:1/d"},
	}, backend.WithGroupWeights(map[string]int{"blue": 70, "green": 30, "canary": 0}))
	require.NoError(t, err)
	snap := set.Snapshot()
	assert.Equal(t, "blue", snap.Lookup("b1").Group())
	assert.Equal(t, "", snap.Lookup("d").Group())

	gs := snap.Groups()
	require.Len(t, gs, 4)
	assert.Equal(t, []string{"", "blue", "canary", "green"}, []string{gs[0].Name, gs[1].Name, gs[2].Name, gs[3].Name}, "sorted by name")
	assert.Equal(t, []int{backend.DefaultGroupWeight, 70, 0, 30}, []int{gs[0].Weight, gs[1].Weight, gs[2].Weight, gs[3].Weight})
	assert.Equal(t, []string{"b1", "b2"}, ids(gs[1].Backends))
	assert.Empty(t, gs[2].Backends, "a weight without members")

	blue := snap.Group("blue")
	assert.Equal(t, snap.Version(), blue.Version())
	assert.Equal(t, []string{"b1", "b2"}, ids(blue.Routable()))
	assert.Nil(t, blue.Lookup("g1"), "a group's snapshot holds its members alone")
	assert.True(t, blue.TakesNew(snap.Lookup("b1")))
	assert.False(t, blue.TakesNew(snap.Lookup("g1")))
	assert.True(t, blue.KeepsBound(snap.Lookup("b1")))
	assert.False(t, blue.KeepsBound(snap.Lookup("g1")), "not a member of the group")
	assert.True(t, snap.KeepsBound(snap.Lookup("g1")))
	assert.Equal(t, int64(2), blue.Weight())

	for _, name := range []string{"canary", "nosuch"} {
		e := snap.Group(name)
		require.NotNil(t, e, name)
		assert.Empty(t, e.Backends(), name)
		assert.Empty(t, e.Routable(), name)
		assert.Equal(t, snap.Version(), e.Version(), name)
	}
	var nilSnap *backend.Snapshot
	assert.Nil(t, nilSnap.Group("blue"))

	// Fail open within the group: green's only member down.
	require.NoError(t, set.SetState("g1", backend.Unhealthy))
	snap = set.Snapshot()
	green := snap.Group("green")
	assert.True(t, green.FailOpen(), "green has no healthy member")
	assert.False(t, snap.FailOpen(), "the set has healthy members")
	assert.Equal(t, []string{"g1"}, ids(green.Routable()))
	assert.True(t, green.KeepsBound(snap.Lookup("g1")))
}

func TestGroupsNone(t *testing.T) {
	set := newSet(t, "a", "b")
	snap := set.Snapshot()
	gs := snap.Groups()
	require.Len(t, gs, 1)
	assert.Equal(t, backend.Group{Name: "", Weight: backend.DefaultGroupWeight, Backends: snap.Backends()}, gs[0])
	assert.Same(t, snap, snap.Group(""), "the group of every member is the snapshot itself")

	var zero backend.Set
	assert.Empty(t, zero.Snapshot().Groups())
	assert.Empty(t, zero.Snapshot().Group("").Backends())
}

func TestSetGroupWeight(t *testing.T) {
	set, err := backend.NewSet([]backend.Config{
		{ID: "b1", URL: "http://127.0.0.1:1/b1", Group: "blue"},
		{ID: "g1", URL: "http://127.0.0.1:1/g1", Group: "green"},
	})
	require.NoError(t, err)
	before := set.Snapshot()
	assert.Equal(t, map[string]int{"blue": 1, "green": 1}, groupNames(before))

	require.NoError(t, set.SetGroupWeight("green", 0))
	after := set.Snapshot()
	assert.Greater(t, after.Version(), before.Version(), "a new snapshot")
	assert.Equal(t, map[string]int{"blue": 1, "green": 0}, groupNames(after))
	assert.Equal(t, map[string]int{"blue": 1, "green": 1}, groupNames(before), "the old snapshot is unchanged")

	require.NoError(t, set.SetGroupWeight("green", 0))
	assert.Same(t, after, set.Snapshot(), "the same weight publishes nothing")

	require.NoError(t, set.SetGroupWeight("next", 5))
	assert.Equal(t, map[string]int{"blue": 1, "green": 0, "next": 5}, groupNames(set.Snapshot()), "a group with no member yet")

	var zero backend.Set
	require.NoError(t, zero.SetGroupWeight("x", 3))
	assert.Equal(t, map[string]int{"x": 3}, groupNames(zero.Snapshot()))

	tests := []struct {
		group string
		w     int
		err   string
	}{
		{"green", -1, `backend: SetGroupWeight("green", -1): weight -1 out of range 0..1000`},
		{"green", 1001, `backend: SetGroupWeight("green", 1001): weight 1001 out of range 0..1000`},
		{"a b", 1, `backend: SetGroupWeight("a b", 1): group "a b": character ' ' not allowed`},
	}
	for _, tt := range tests {
		t.Run(tt.err, func(t *testing.T) {
			v := set.Snapshot().Version()
			assert.ErrorContains(t, set.SetGroupWeight(tt.group, tt.w), tt.err)
			assert.Equal(t, v, set.Snapshot().Version(), "nothing published")
		})
	}
}

func TestGroupValidation(t *testing.T) {
	tests := []struct {
		name string
		cfgs []backend.Config
		opts []backend.Option
		errs []string
	}{
		{
			name: "bad group",
			cfgs: []backend.Config{{ID: "a", URL: "http://h", Group: "x/y"}},
			errs: []string{`backend: a: group "x/y": character '/' not allowed`},
		},
		{
			name: "long group",
			cfgs: []backend.Config{{ID: "a", URL: "http://h", Group: "g0123456789012345678901234567890123456789012345678901234567890123"}},
			errs: []string{"longer than 64 characters"},
		},
		{
			name: "weights",
			opts: []backend.Option{backend.WithGroupWeights(map[string]int{"a": -1, "b": 1001, "c d": 1, "ok": 1000, "": 0})},
			errs: []string{
				`backend: WithGroupWeights("a"=-1): weight -1 out of range 0..1000`,
				`backend: WithGroupWeights("b"=1001): weight 1001 out of range 0..1000`,
				`backend: WithGroupWeights("c d"=1): group "c d": character ' ' not allowed`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, err := backend.NewSet(tt.cfgs, tt.opts...)
			require.Error(t, err)
			assert.Nil(t, set)
			for _, e := range tt.errs {
				assert.ErrorContains(t, err, e)
			}
		})
	}
}

func TestUpdateGroupChangeReplaces(t *testing.T) {
	set, err := backend.NewSet([]backend.Config{{ID: "a", URL: "http://h", Group: "blue"}})
	require.NoError(t, err)
	a := set.Snapshot().Lookup("a")
	require.NoError(t, set.Update([]backend.Config{{ID: "a", URL: "http://h", Group: "blue"}}))
	assert.Same(t, a, set.Snapshot().Lookup("a"), "same group: kept")
	require.NoError(t, set.Update([]backend.Config{{ID: "a", URL: "http://h", Group: "green"}}))
	b := set.Snapshot().Lookup("a")
	assert.NotSame(t, a, b, "another group: replaced")
	assert.True(t, a.Removed())
	assert.Equal(t, "green", b.Group())
	assert.Equal(t, map[string]int{"green": 1}, groupNames(set.Snapshot()))
}
