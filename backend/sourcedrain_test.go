package backend_test

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/event"
)

// TestUpdateDraining checks Config.Draining as a source gives it to
// Update: the backend keeps its bound clients and takes no new ones, the
// whole list is one new snapshot, and the set's own states (an operator's
// drain, health checks) are not overwritten by a list that says nothing.
func TestUpdateDraining(t *testing.T) {
	list := func(drainB bool, extra ...backend.Config) []backend.Config {
		return append([]backend.Config{
			{ID: "a", URL: "http://127.0.0.1:1"},
			{ID: "b", URL: "http://127.0.0.1:2", Draining: drainB},
			{ID: "c", URL: "http://127.0.0.1:3"},
		}, extra...)
	}
	newSet := func(t *testing.T) (*backend.Set, *[]event.Event) {
		set, err := backend.NewSet(list(false))
		require.NoError(t, err)
		var (
			mu     sync.Mutex
			events []event.Event
		)
		set.AddObserver(event.ObserverFunc(func(e event.Event) {
			mu.Lock()
			defer mu.Unlock()
			events = append(events, e)
		}))
		return set, &events
	}

	t.Run("drained and undrained by the list, in one snapshot each", func(t *testing.T) {
		set, events := newSet(t)
		before := set.Snapshot()
		b := before.Lookup("b")
		// One change: b drains, d joins draining, c leaves.
		require.NoError(t, set.Update([]backend.Config{
			{ID: "a", URL: "http://127.0.0.1:1"},
			{ID: "b", URL: "http://127.0.0.1:2", Draining: true},
			{ID: "d", URL: "http://127.0.0.1:4", Draining: true},
		}))
		snap := set.Snapshot()
		assert.Equal(t, before.Version()+1, snap.Version(), "one new snapshot")
		assert.Same(t, b, snap.Lookup("b"), "kept, not replaced")
		assert.Equal(t, backend.Draining, b.State())
		assert.False(t, snap.TakesNew(b), "a draining backend takes no new clients")
		assert.True(t, snap.KeepsBound(b), "a draining backend keeps its bound clients")
		d := snap.Lookup("d")
		require.NotNil(t, d)
		assert.Equal(t, backend.Draining, d.State(), "added draining")
		assert.True(t, snap.KeepsBound(d))
		assert.False(t, snap.TakesNew(d))
		assert.Nil(t, snap.Lookup("c"))
		assert.Equal(t, []*backend.Backend{snap.Lookup("a")}, snap.Routable())
		assert.Equal(t, []event.Event{{Kind: event.StateChange, Backend: "b", From: backend.Healthy, To: backend.Draining}}, *events)

		require.NoError(t, set.Update([]backend.Config{
			{ID: "a", URL: "http://127.0.0.1:1"},
			{ID: "b", URL: "http://127.0.0.1:2"},
			{ID: "d", URL: "http://127.0.0.1:4", Draining: true},
		}))
		assert.Equal(t, snap.Version()+1, set.Snapshot().Version(), "one new snapshot")
		assert.Equal(t, backend.Healthy, b.State(), "the list took its drain back")
		assert.True(t, set.Snapshot().TakesNew(b))

		again := set.Snapshot()
		require.NoError(t, set.Update([]backend.Config{
			{ID: "a", URL: "http://127.0.0.1:1"},
			{ID: "b", URL: "http://127.0.0.1:2"},
			{ID: "d", URL: "http://127.0.0.1:4", Draining: true},
		}))
		assert.Same(t, again, set.Snapshot(), "the same list publishes nothing")
	})

	t.Run("an operator's drain is not taken back by a list", func(t *testing.T) {
		set, _ := newSet(t)
		require.NoError(t, set.SetState("b", backend.Draining))
		require.NoError(t, set.Update(list(true)))
		require.NoError(t, set.Update(list(false)))
		assert.Equal(t, backend.Draining, set.Snapshot().Lookup("b").State())
	})

	t.Run("a health check's verdict outlasts the list's drain", func(t *testing.T) {
		set, _ := newSet(t)
		require.NoError(t, set.SetState("b", backend.Unhealthy)) // down, as a failed check marks it
		require.NoError(t, set.Update(list(true)))
		b := set.Snapshot().Lookup("b")
		assert.Equal(t, backend.Unhealthy, b.State(), "down wins over draining")
		require.NoError(t, set.Update(list(false)))
		assert.Equal(t, backend.Unhealthy, b.State(), "a list with no drain says nothing of health")
	})

	t.Run("an operator's Healthy lasts until the list says draining again", func(t *testing.T) {
		set, _ := newSet(t)
		require.NoError(t, set.Update(list(true)))
		b := set.Snapshot().Lookup("b")
		require.NoError(t, set.SetState("b", backend.Healthy))
		assert.Equal(t, backend.Healthy, b.State())
		require.NoError(t, set.Update(list(true, backend.Config{ID: "e", URL: "http://127.0.0.1:5"})))
		assert.Equal(t, backend.Draining, b.State())
	})

	t.Run("added with Add or NewSet", func(t *testing.T) {
		set, err := backend.NewSet([]backend.Config{{ID: "a", URL: "http://127.0.0.1:1", Draining: true}})
		require.NoError(t, err)
		assert.Equal(t, backend.Draining, set.Snapshot().Lookup("a").State())
		b, err := set.Add(backend.Config{ID: "b", URL: "http://127.0.0.1:2", Draining: true})
		require.NoError(t, err)
		assert.Equal(t, backend.Draining, b.State())
		assert.Empty(t, set.Snapshot().Routable(), "nobody takes new clients")
	})
}
