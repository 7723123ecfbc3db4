package backend_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
)

// TestSnapshotLookupAfterChanges checks that every member can be looked up
// by ID, and no one else, through changes of each kind: a snapshot shares
// or patches its predecessor's index rather than building its own.
func TestSnapshotLookupAfterChanges(t *testing.T) {
	set := newSet(t, "a", "b", "c", "d", "e")
	check := func(t *testing.T, want ...string) {
		t.Helper()
		snap := set.Snapshot()
		require.Equal(t, want, ids(snap.Backends()))
		for _, b := range snap.Backends() {
			assert.Same(t, b, snap.Lookup(b.ID()), "lookup %s", b.ID())
		}
		for _, id := range []string{"a", "b", "c", "d", "e", "f", "g"} {
			if !contains(want, id) {
				assert.Nil(t, snap.Lookup(id), "lookup %s", id)
			}
		}
	}
	check(t, "a", "b", "c", "d", "e")

	require.NoError(t, set.SetState("b", backend.Unhealthy))
	check(t, "a", "b", "c", "d", "e")
	_, err := set.Remove("b")
	require.NoError(t, err)
	check(t, "a", "c", "d", "e")
	_, err = set.Remove("a")
	require.NoError(t, err)
	check(t, "c", "d", "e")
	_, err = set.Remove("e")
	require.NoError(t, err)
	check(t, "c", "d")
	_, err = set.Add(backend.Config{ID: "f", URL: "http://127.0.0.1:6"})
	require.NoError(t, err)
	check(t, "c", "d", "f")
	require.NoError(t, set.Update([]backend.Config{
		{ID: "g", URL: "http://127.0.0.1:7"},
		{ID: "d", URL: "http://127.0.0.1:1/d"},
	}))
	check(t, "g", "d")
}

func contains(s []string, x string) bool {
	for _, y := range s {
		if y == x {
			return true
		}
	}
	return false
}

func TestSnapshotRoutes(t *testing.T) {
	set := newSet(t, "a", "b", "c", "d")
	require.NoError(t, set.SetState("b", backend.Unhealthy))
	require.NoError(t, set.SetState("c", backend.Draining))
	old := set.Snapshot()
	a, b, c, d := old.Lookup("a"), old.Lookup("b"), old.Lookup("c"), old.Lookup("d")
	_, err := set.Remove("d")
	require.NoError(t, err)
	snap := set.Snapshot()

	assert.True(t, snap.TakesNew(a))
	assert.False(t, snap.TakesNew(b), "unhealthy")
	assert.False(t, snap.TakesNew(c), "draining")
	assert.False(t, snap.TakesNew(d), "removed")
	assert.True(t, old.TakesNew(d), "routable when old was published")
	assert.Equal(t, int64(1), snap.Weight())
	assert.Equal(t, int64(2), old.Weight())

	require.NoError(t, set.SetState("c", backend.Healthy)) // so that the set does not fail open
	require.NoError(t, set.SetState("a", backend.Unhealthy))
	assert.False(t, snap.TakesNew(a), "a stale snapshot answers for the state now")
	assert.False(t, set.Snapshot().TakesNew(a))

	// Replaced under the same ID: the old backend is no longer routed to.
	require.NoError(t, set.SetState("a", backend.Healthy))
	require.NoError(t, set.Update([]backend.Config{{ID: "a", URL: "http://127.0.0.1:9"}}))
	now := set.Snapshot()
	assert.False(t, now.TakesNew(a))
	assert.True(t, now.TakesNew(now.Lookup("a")))

	t.Run("fail open", func(t *testing.T) {
		set := newSet(t, "a", "b")
		require.NoError(t, set.SetState("a", backend.Unhealthy))
		require.NoError(t, set.SetState("b", backend.Draining))
		snap := set.Snapshot()
		require.True(t, snap.FailOpen())
		assert.True(t, snap.TakesNew(snap.Lookup("a")))
		assert.False(t, snap.TakesNew(snap.Lookup("b")))
	})
}

func TestSnapshotRamping(t *testing.T) {
	t.Run("without slow start", func(t *testing.T) {
		set := newSet(t, "a", "b")
		_, err := set.Add(backend.Config{ID: "c", URL: "http://127.0.0.1:3"})
		require.NoError(t, err)
		assert.False(t, set.Snapshot().Ramping())
	})

	t.Run("with slow start", func(t *testing.T) {
		const window = 200 * time.Millisecond
		set := threeBackends(t, backend.WithSlowStart(window))
		old := set.Snapshot()
		assert.False(t, old.Ramping(), "backends present at start do not ramp")

		d, err := set.Add(backend.Config{ID: "d", URL: "http://127.0.0.1:4"})
		require.NoError(t, err)
		snap := set.Snapshot()
		assert.True(t, snap.Ramping())
		assert.True(t, old.Ramping(), "an old snapshot does not know")
		require.Eventually(t, func() bool { return !snap.Ramping() }, 10*time.Second, time.Millisecond,
			"ramp never ended")
		assert.Equal(t, d.InFlight(), snap.Load(d))

		// d goes down and recovers: it ramps again, and snap, which routes
		// to it, is no longer current.
		require.NoError(t, set.SetState("d", backend.Unhealthy))
		require.NoError(t, set.SetState("d", backend.Healthy))
		assert.True(t, snap.Ramping())
		assert.True(t, set.Snapshot().Ramping())
	})

	t.Run("fail open", func(t *testing.T) {
		set := threeBackends(t, backend.WithSlowStart(time.Hour))
		for _, id := range []string{"a", "b", "c"} {
			require.NoError(t, set.SetState(id, backend.Unhealthy))
		}
		snap := set.Snapshot()
		require.True(t, snap.FailOpen())
		assert.True(t, snap.Ramping(), "a member may recover and ramp at any moment")
	})
}

// TestSnapshotIndexAtScale removes and adds backends of a large set and
// checks lookups against the members.
func TestSnapshotIndexAtScale(t *testing.T) {
	const n = 1000
	cfgs := make([]backend.Config, n)
	for i := range cfgs {
		cfgs[i] = backend.Config{ID: fmt.Sprintf("b%d", i), URL: fmt.Sprintf("http://10.0.%d.%d", i/250, i%250)}
	}
	set, err := backend.NewSet(cfgs)
	require.NoError(t, err)
	for i := 0; i < n; i += 7 {
		_, err := set.Remove(fmt.Sprintf("b%d", i))
		require.NoError(t, err)
	}
	for i := 0; i < n; i += 14 {
		_, err := set.Add(cfgs[i])
		require.NoError(t, err)
	}
	snap := set.Snapshot()
	for i, b := range snap.Backends() {
		require.Same(t, b, snap.Lookup(b.ID()), "member %d", i)
		require.True(t, snap.TakesNew(b))
	}
	for i := 7; i < n; i += 14 {
		assert.Nil(t, snap.Lookup(fmt.Sprintf("b%d", i)))
	}
}

// TestSnapshotQuestions checks the two questions a handler asks of a
// backend, TakesNew and KeepsBound, where a backend's own state and the
// snapshot's membership disagree: when the set fails open, and when the
// snapshot is older than the backend's state.
func TestSnapshotQuestions(t *testing.T) {
	type step struct {
		id string
		st backend.State
	}
	tests := []struct {
		name     string
		failOpen bool
		before   []step // states set before the snapshot is taken
		after    []step // and after
		wantOpen bool   // the snapshot fails open
		id       string
		takesNew bool
		keeps    bool
	}{
		{"fail open: unhealthy takes new clients", true, []step{{"a", backend.Unhealthy}, {"b", backend.Unhealthy}}, nil, true, "a", true, true},
		{"fail open: draining keeps its clients only", true, []step{{"a", backend.Unhealthy}, {"b", backend.Draining}}, nil, true, "b", false, true},
		{"fail closed: unhealthy takes nothing", false, []step{{"a", backend.Unhealthy}, {"b", backend.Unhealthy}}, nil, false, "a", false, false},
		{"stale: became unhealthy", true, nil, []step{{"a", backend.Unhealthy}}, false, "a", false, false},
		{"stale: became draining", true, nil, []step{{"a", backend.Draining}}, false, "a", false, true},
		{"stale: became healthy, not listed", true, []step{{"a", backend.Unhealthy}}, []step{{"a", backend.Healthy}}, false, "a", false, true},
		// Whether s fails open is fixed with s: a is still one of its
		// unhealthy members that take new clients.
		{"stale fail open: another became healthy", true, []step{{"a", backend.Unhealthy}, {"b", backend.Unhealthy}}, []step{{"b", backend.Healthy}}, true, "a", true, true},
		{"stale fail open: became healthy", true, []step{{"a", backend.Unhealthy}, {"b", backend.Unhealthy}}, []step{{"a", backend.Healthy}}, true, "a", true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, err := backend.NewSet([]backend.Config{
				{ID: "a", URL: "http://127.0.0.1:1/a"},
				{ID: "b", URL: "http://127.0.0.1:1/b"},
			}, backend.WithFailOpen(tt.failOpen))
			require.NoError(t, err)
			for _, s := range tt.before {
				require.NoError(t, set.SetState(s.id, s.st))
			}
			snap := set.Snapshot()
			require.Equal(t, tt.wantOpen, snap.FailOpen())
			for _, s := range tt.after {
				require.NoError(t, set.SetState(s.id, s.st))
			}
			b := snap.Lookup(tt.id)
			require.NotNil(t, b)
			assert.Equal(t, tt.takesNew, snap.TakesNew(b), "TakesNew(%s), %s", b, b.State())
			assert.Equal(t, tt.keeps, snap.KeepsBound(b), "KeepsBound(%s), %s", b, b.State())
			// A fresh snapshot agrees with the live state.
			now := set.Snapshot()
			assert.Equal(t, b.State() == backend.Healthy || now.FailOpen() && b.State() == backend.Unhealthy, now.TakesNew(b), "fresh TakesNew")
		})
	}
}
