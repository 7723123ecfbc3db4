package backend_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/internal/accounting"
)

// wait fails the test if ch is not closed in time: a guard against a hang.
func wait(t *testing.T, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("drain did not end")
	}
}

func TestDrain(t *testing.T) {
	t.Run("leaves once idle", func(t *testing.T) {
		set := threeBackends(t, backend.WithDrainIdle(30*time.Millisecond))
		a := set.Snapshot().Lookup("a")
		require.True(t, accounting.Acquire(a))
		done, err := set.Drain("a", time.Hour)
		require.NoError(t, err)
		assert.Equal(t, backend.Draining, a.State())
		assert.Equal(t, []string{"b", "c"}, routableIDs(set.Snapshot()), "draining backend takes new clients")
		assert.True(t, set.Snapshot().KeepsBound(a), "draining backend dropped its clients")

		// Busy: it stays for as long as requests keep coming.
		for range 5 {
			time.Sleep(20 * time.Millisecond)
			require.True(t, accounting.Acquire(a), "draining backend refused a bound client")
			accounting.Release(a)
		}
		assert.False(t, a.Removed())
		accounting.Release(a) // idle from now on
		wait(t, done)
		assert.True(t, a.Removed())
		assert.Nil(t, set.Snapshot().Lookup("a"))
	})

	t.Run("leaves at the timeout however busy", func(t *testing.T) {
		set := threeBackends(t, backend.WithDrainIdle(time.Hour))
		a := set.Snapshot().Lookup("a")
		require.True(t, accounting.Acquire(a))
		t.Cleanup(func() { accounting.Release(a) })
		done, err := set.Drain("a", 30*time.Millisecond)
		require.NoError(t, err)
		wait(t, done)
		assert.True(t, a.Removed())
		assert.EqualValues(t, 1, a.InFlight(), "a request in flight is not cut off")
		assert.False(t, accounting.Acquire(a))
	})

	t.Run("undone by SetState Healthy", func(t *testing.T) {
		set := threeBackends(t, backend.WithDrainIdle(time.Hour))
		done, err := set.Drain("a", time.Hour)
		require.NoError(t, err)
		require.NoError(t, set.SetState("a", backend.Healthy))
		wait(t, done)
		a := set.Snapshot().Lookup("a")
		require.NotNil(t, a)
		assert.False(t, a.Removed())
		assert.Equal(t, backend.Healthy, a.State())
	})

	t.Run("errors", func(t *testing.T) {
		set := threeBackends(t)
		_, err := set.Drain("nope", time.Second)
		assert.ErrorIs(t, err, backend.ErrNotFound)
		_, err = set.Drain("a", 0)
		assert.ErrorContains(t, err, "timeout 0s must be positive")
	})
}
