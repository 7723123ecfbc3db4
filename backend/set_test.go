package backend_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/internal/accounting"
)

// ids returns the IDs of bs, in order.
func ids(bs []*backend.Backend) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = b.ID()
	}
	return out
}

// newSet returns a set of backends with the given IDs.
func newSet(t *testing.T, id ...string) *backend.Set {
	t.Helper()
	cfgs := make([]backend.Config, len(id))
	for i, id := range id {
		cfgs[i] = backend.Config{ID: id, URL: "http://127.0.0.1:1/" + id}
	}
	set, err := backend.NewSet(cfgs)
	require.NoError(t, err)
	return set
}

func TestNewSet(t *testing.T) {
	set := newSet(t, "b", "a", "c")
	snap := set.Snapshot()
	assert.Equal(t, []string{"b", "a", "c"}, ids(snap.Backends()), "configuration order")
	assert.Equal(t, []string{"b", "a", "c"}, ids(snap.Routable()), "all start healthy")
	assert.Equal(t, 3, len(snap.Backends()))
	assert.Equal(t, "a", snap.Lookup("a").ID())
	assert.Nil(t, snap.Lookup("z"))
	assert.Same(t, snap, set.Snapshot(), "no change, same snapshot")
}

func TestDuplicate(t *testing.T) {
	tests := []struct {
		name string
		cfgs []backend.Config
		id   string // the duplicate ID the error names
	}{
		{
			name: "same ID",
			cfgs: []backend.Config{{ID: "a", URL: "http://h1"}, {ID: "a", URL: "http://h2"}},
			id:   "a",
		},
		{
			name: "same URL, digest ID",
			cfgs: []backend.Config{{URL: "http://h1"}, {URL: "HTTP://H1"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, err := backend.NewSet(tt.cfgs)
			assert.True(t, errors.Is(err, backend.ErrDuplicate), "NewSet: err = %v", err)
			assert.Nil(t, set)
			if tt.id != "" {
				assert.ErrorContains(t, err, fmt.Sprintf("%q", tt.id))
			}

			set, err = backend.NewSet(tt.cfgs[:1])
			require.NoError(t, err)
			before := set.Snapshot()
			b, err := set.Add(tt.cfgs[1])
			assert.True(t, errors.Is(err, backend.ErrDuplicate), "Add: err = %v", err)
			assert.Nil(t, b)
			assert.Same(t, before, set.Snapshot(), "a failed Add publishes nothing")
		})
	}
}

func TestNotFound(t *testing.T) {
	set := newSet(t, "a")
	before := set.Snapshot()

	b, err := set.Remove("z")
	assert.True(t, errors.Is(err, backend.ErrNotFound), "Remove: err = %v", err)
	assert.ErrorContains(t, err, `"z"`)
	assert.Nil(t, b)

	err = set.SetState("z", backend.Draining)
	assert.True(t, errors.Is(err, backend.ErrNotFound), "SetState: err = %v", err)
	assert.ErrorContains(t, err, `"z"`)

	_, err = set.Remove("a")
	require.NoError(t, err)
	_, err = set.Remove("a")
	assert.True(t, errors.Is(err, backend.ErrNotFound), "second Remove: err = %v", err)

	assert.Equal(t, before.Version()+1, set.Snapshot().Version(), "only the successful Remove publishes")
}

func TestSetStateInvalid(t *testing.T) {
	set := newSet(t, "a")
	before := set.Snapshot()
	err := set.SetState("a", backend.State(9))
	require.Error(t, err)
	assert.ErrorContains(t, err, "9")
	assert.Equal(t, backend.Healthy, set.Snapshot().Lookup("a").State())
	assert.Same(t, before, set.Snapshot())
}

func TestSnapshotImmutable(t *testing.T) {
	set := newSet(t, "a", "b")
	s1 := set.Snapshot()

	_, err := set.Add(backend.Config{ID: "c", URL: "http://h"})
	require.NoError(t, err)
	s2 := set.Snapshot()
	_, err = set.Remove("a")
	require.NoError(t, err)
	s3 := set.Snapshot()
	require.NoError(t, set.SetState("b", backend.Draining))
	s4 := set.Snapshot()
	require.NoError(t, set.SetState("b", backend.Draining))
	s5 := set.Snapshot()

	assert.Equal(t, []string{"a", "b"}, ids(s1.Backends()))
	assert.Equal(t, []string{"a", "b"}, ids(s1.Routable()))
	assert.NotNil(t, s1.Lookup("a"))
	assert.Nil(t, s1.Lookup("c"))

	assert.Equal(t, []string{"a", "b", "c"}, ids(s2.Backends()))
	assert.Equal(t, []string{"b", "c"}, ids(s3.Backends()))
	assert.Nil(t, s3.Lookup("a"))
	assert.Equal(t, []string{"b", "c"}, ids(s3.Routable()))
	assert.Equal(t, []string{"b", "c"}, ids(s4.Backends()))
	assert.Equal(t, []string{"c"}, ids(s4.Routable()))

	assert.Less(t, s1.Version(), s2.Version())
	assert.Less(t, s2.Version(), s3.Version())
	assert.Less(t, s3.Version(), s4.Version())
	assert.Same(t, s4, s5, "setting the same state is a no-op")
}

func TestRoutable(t *testing.T) {
	set := newSet(t, "a", "b", "c", "d")
	require.NoError(t, set.SetState("a", backend.Unhealthy))
	require.NoError(t, set.SetState("c", backend.Draining))
	snap := set.Snapshot()
	assert.Equal(t, []string{"b", "d"}, ids(snap.Routable()))
	assert.Equal(t, []string{"a", "b", "c", "d"}, ids(snap.Backends()))

	require.NoError(t, set.SetState("a", backend.Healthy))
	assert.Equal(t, []string{"a", "b", "d"}, ids(set.Snapshot().Routable()), "recovered")
}

func TestZeroSet(t *testing.T) {
	var set backend.Set
	snap := set.Snapshot()
	require.NotNil(t, snap)
	assert.Zero(t, len(snap.Backends()))
	assert.Empty(t, snap.Backends())
	assert.Empty(t, snap.Routable())
	assert.Nil(t, snap.Lookup("a"))

	b, err := set.Add(backend.Config{ID: "a", URL: "http://h"})
	require.NoError(t, err)
	assert.Same(t, b, set.Snapshot().Lookup("a"))
	assert.Equal(t, []string{"a"}, ids(set.Snapshot().Routable()))
	assert.Greater(t, set.Snapshot().Version(), snap.Version())
	assert.Zero(t, len(snap.Backends()), "the empty snapshot is unchanged")

	require.NoError(t, set.SetState("a", backend.Draining))
	_, err = set.Remove("a")
	require.NoError(t, err)
	assert.Zero(t, len(set.Snapshot().Backends()))
}

// TestConcurrent runs writers and readers together under the race detector.
// Writers add, drain and remove their own backends and flip the state of
// shared ones; readers check every snapshot they load and count requests in
// flight on whatever it routes to.
func TestConcurrent(t *testing.T) {
	const writers, readers, ops = 4, 4, 500
	shared := []string{"s0", "s1", "s2"}
	set := newSet(t, shared...)
	states := []backend.State{backend.Healthy, backend.Draining, backend.Unhealthy}

	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range ops {
				id := fmt.Sprintf("w%d-%d", w, i)
				b, err := set.Add(backend.Config{ID: id, URL: "http://h/" + id})
				if !assert.NoError(t, err) {
					return
				}
				assert.NoError(t, set.SetState(shared[i%len(shared)], states[(w+i)%len(states)]))
				assert.NoError(t, set.SetState(id, backend.Draining))
				if i%2 == 0 {
					_, err := set.Remove(id)
					assert.NoError(t, err)
					assert.False(t, accounting.Acquire(b), "Acquire after Remove")
				}
			}
		})
	}
	for range readers {
		wg.Go(func() {
			var last uint64
			for range ops {
				snap := set.Snapshot()
				assert.GreaterOrEqual(t, snap.Version(), last, "versions never go back")
				last = snap.Version()
				assert.Equal(t, len(snap.Backends()), len(snap.Backends()))
				for _, b := range snap.Routable() {
					assert.Same(t, b, snap.Lookup(b.ID()))
					if accounting.Acquire(b) {
						accounting.Release(b)
					}
				}
			}
		})
	}
	wg.Wait()

	snap := set.Snapshot()
	assert.Equal(t, len(shared)+writers*ops/2, len(snap.Backends()))
	for _, b := range snap.Backends() {
		assert.Zero(t, b.InFlight(), "backend %s", b)
	}
	var routable []string
	for _, b := range snap.Backends() {
		if b.State() == backend.Healthy {
			routable = append(routable, b.ID())
		}
	}
	assert.Equal(t, routable, ids(snap.Routable()), "the last snapshot matches the final states")
}

func TestSnapshotInFlightCountsTheWholeSet(t *testing.T) {
	set, err := backend.NewSet([]backend.Config{
		{ID: "a", URL: "http://127.0.0.1:1"},
		{ID: "b", URL: "http://127.0.0.1:2"},
	})
	require.NoError(t, err)
	snap := set.Snapshot()
	a, b := snap.Lookup("a"), snap.Lookup("b")
	require.True(t, accounting.Acquire(a))
	require.True(t, accounting.Acquire(a))
	require.True(t, accounting.Acquire(b))
	assert.EqualValues(t, 3, snap.InFlight())

	// A removed backend's requests count until they finish; it admits no more.
	_, err = set.Remove("a")
	require.NoError(t, err)
	assert.EqualValues(t, 3, set.Snapshot().InFlight())
	assert.False(t, accounting.Acquire(a))
	accounting.Release(a)
	accounting.Release(a)
	accounting.Release(b)
	assert.Zero(t, set.Snapshot().InFlight())
	assert.Zero(t, snap.InFlight(), "old snapshots read the live count")

	var zero backend.Set
	assert.Same(t, zero.Snapshot(), zero.Snapshot(), "the zero Set publishes one empty snapshot")
	assert.Zero(t, zero.Snapshot().InFlight())
}

func TestUpdateReconciles(t *testing.T) {
	set, err := backend.NewSet([]backend.Config{
		{ID: "keep", URL: "http://127.0.0.1:1"},
		{ID: "move", URL: "http://127.0.0.1:2"},
		{ID: "heavier", URL: "http://127.0.0.1:3"},
		{ID: "gone", URL: "http://127.0.0.1:4"},
	})
	require.NoError(t, err)
	before := set.Snapshot()
	keep, move, gone := before.Lookup("keep"), before.Lookup("move"), before.Lookup("gone")
	require.True(t, accounting.Acquire(keep))
	t.Cleanup(func() { accounting.Release(keep) })
	require.NoError(t, set.SetState("keep", backend.Draining))

	require.NoError(t, set.Update([]backend.Config{
		{ID: "keep", URL: "http://127.0.0.1:1"},
		{ID: "move", URL: "http://127.0.0.1:22"},
		{ID: "heavier", URL: "http://127.0.0.1:3", Weight: 2},
		{ID: "new", URL: "http://127.0.0.1:5"},
	}))
	after := set.Snapshot()
	assert.Greater(t, after.Version(), before.Version())
	assert.Same(t, keep, after.Lookup("keep"), "unchanged backend replaced")
	assert.EqualValues(t, 1, keep.InFlight(), "unchanged backend's in-flight count disturbed")
	assert.Equal(t, backend.Draining, keep.State(), "unchanged backend's state disturbed")
	assert.NotSame(t, move, after.Lookup("move"))
	assert.Equal(t, "http://127.0.0.1:22", after.Lookup("move").URL().String())
	assert.True(t, move.Removed(), "replaced backend still admits requests")
	assert.EqualValues(t, 2, after.Lookup("heavier").Weight())
	assert.Nil(t, after.Lookup("gone"))
	assert.True(t, gone.Removed())
	assert.NotNil(t, after.Lookup("new"))
	assert.Equal(t, 4, len(after.Backends()))

	t.Run("no change publishes nothing", func(t *testing.T) {
		require.NoError(t, set.Update([]backend.Config{
			{ID: "keep", URL: "http://127.0.0.1:1"},
			{ID: "move", URL: "http://127.0.0.1:22"},
			{ID: "heavier", URL: "http://127.0.0.1:3", Weight: 2},
			{ID: "new", URL: "http://127.0.0.1:5"},
		}))
		assert.Same(t, after, set.Snapshot())
	})
	t.Run("invalid list changes nothing", func(t *testing.T) {
		for _, cfgs := range [][]backend.Config{
			{{ID: "a", URL: "http://127.0.0.1:1"}, {ID: "a", URL: "http://127.0.0.1:2"}},
			{{ID: "a", URL: "ftp://127.0.0.1:1"}},
		} {
			assert.Error(t, set.Update(cfgs))
			assert.Same(t, after, set.Snapshot())
		}
	})
}
