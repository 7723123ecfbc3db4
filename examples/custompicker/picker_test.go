package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/balancer"
	"github.com/affinitylb/affinity/internal/accounting"
)

func newZoneSet(t *testing.T) *backend.Set {
	t.Helper()
	set, err := backend.NewSet([]backend.Config{
		{ID: "eu-1", URL: "http://10.0.0.1"},
		{ID: "us-1", URL: "http://10.0.1.1"},
		{ID: "eu-2", URL: "http://10.0.0.2"},
	}, backend.WithFailOpen(false)) // none healthy: none routable
	require.NoError(t, err)
	return set
}

func pick(t *testing.T, p balancer.Picker, set *backend.Set) string {
	t.Helper()
	b, err := p.Pick(balancer.Info{Snapshot: set.Snapshot()})
	require.NoError(t, err)
	return b.ID()
}

func TestZonePicker(t *testing.T) {
	p := zonePicker("eu")

	t.Run("the zone's backends share new clients", func(t *testing.T) {
		set := newZoneSet(t)
		got := map[string]int{}
		for range 100 {
			got[pick(t, p, set)]++
		}
		assert.Zero(t, got["us-1"], "picked outside the zone")
		assert.Positive(t, got["eu-1"])
		assert.Positive(t, got["eu-2"])
	})

	t.Run("the least loaded of the zone", func(t *testing.T) {
		set := newZoneSet(t)
		busy := set.Snapshot().Lookup("eu-1")
		require.True(t, accounting.Acquire(busy))
		t.Cleanup(func() { accounting.Release(busy) })
		for range 10 {
			assert.Equal(t, "eu-2", pick(t, p, set))
		}
	})

	t.Run("another zone when the zone has no routable backend", func(t *testing.T) {
		set := newZoneSet(t)
		require.NoError(t, set.SetState("eu-1", backend.Unhealthy))
		require.NoError(t, set.SetState("eu-2", backend.Draining))
		assert.Equal(t, "us-1", pick(t, p, set))
	})

	t.Run("ErrNoBackend when none is routable", func(t *testing.T) {
		set := newZoneSet(t)
		for _, b := range set.Snapshot().Backends() {
			require.NoError(t, set.SetState(b.ID(), backend.Unhealthy))
		}
		_, err := p.Pick(balancer.Info{Snapshot: set.Snapshot()})
		assert.ErrorIs(t, err, balancer.ErrNoBackend)
	})
}

func TestZonePickerAllocatesNothing(t *testing.T) {
	set, p := newZoneSet(t), zonePicker("eu")
	info := balancer.Info{Snapshot: set.Snapshot()}
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := p.Pick(info); err != nil {
			t.Fatal(err)
		}
	})
	assert.Zero(t, allocs)
}
