package main

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/balancer"
	"github.com/affinitylb/affinity/internal/accounting"
)

// fakeClock is a settable clock for the picker's staleness.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// newZoneSet returns app1 and app2 in zone eu, app3 in us, as -zones does
// by default; none of them reachable, which a picker never notices.
func newZoneSet(t *testing.T) *backend.Set {
	t.Helper()
	set, err := backend.NewSet([]backend.Config{
		{ID: "app1", URL: "http://10.0.0.1", Metadata: map[string]string{"zone": "eu"}},
		{ID: "app2", URL: "http://10.0.0.2", Metadata: map[string]string{"zone": "eu"}},
		{ID: "app3", URL: "http://10.0.1.1", Metadata: map[string]string{"zone": "us"}},
	}, backend.WithFailOpen(false)) // none healthy: none routable
	require.NoError(t, err)
	return set
}

func newTestPicker() (*zonePicker, *fakeClock) {
	c := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	p := newZonePicker("eu")
	p.now = c.Now
	return p, c
}

func pick(t *testing.T, p balancer.Picker, set *backend.Set, tried ...string) string {
	t.Helper()
	info := balancer.Info{Snapshot: set.Snapshot()}
	for _, id := range tried {
		info.Tried = append(info.Tried, set.Snapshot().Lookup(id))
	}
	b, err := p.Pick(info)
	require.NoError(t, err)
	return b.ID()
}

// done tells p that a request it placed on id answered after d.
func done(p *zonePicker, set *backend.Set, id string, d time.Duration) {
	p.Done(balancer.DoneInfo{Backend: set.Snapshot().Lookup(id), StatusCode: 200, Latency: d})
}

// busy counts n requests in flight on id until the test ends.
func busy(t *testing.T, set *backend.Set, id string, n int) {
	t.Helper()
	b := set.Snapshot().Lookup(id)
	for range n {
		require.True(t, accounting.Acquire(b))
		t.Cleanup(func() { accounting.Release(b) })
	}
}

func TestZonePicker(t *testing.T) {
	t.Run("prefers the zone: the least loaded of it while unmeasured", func(t *testing.T) {
		set := newZoneSet(t)
		p, _ := newTestPicker()
		assert.Equal(t, "app1", pick(t, p, set))
		busy(t, set, "app1", 1)
		assert.Equal(t, "app2", pick(t, p, set))
		busy(t, set, "app2", 2)
		assert.Equal(t, "app1", pick(t, p, set), "left the zone, or not the least loaded")
	})

	t.Run("moves new clients off a slow backend", func(t *testing.T) {
		set := newZoneSet(t)
		p, _ := newTestPicker()
		done(p, set, "app1", 300*time.Millisecond)
		done(p, set, "app2", time.Millisecond)
		busy(t, set, "app2", 5) // five times as loaded, still a fiftieth as slow
		for range 10 {
			assert.Equal(t, "app2", pick(t, p, set))
		}
	})

	t.Run("the load weighs the latency", func(t *testing.T) {
		set := newZoneSet(t)
		p, _ := newTestPicker()
		done(p, set, "app1", 10*time.Millisecond)
		done(p, set, "app2", 2*time.Millisecond)
		busy(t, set, "app2", 9) // 2ms × 10 > 10ms × 1
		assert.Equal(t, "app1", pick(t, p, set))
	})

	t.Run("a failed attempt counts as slow", func(t *testing.T) {
		set := newZoneSet(t)
		p, _ := newTestPicker()
		p.Done(balancer.DoneInfo{Backend: set.Snapshot().Lookup("app1"), Err: errors.New("connection refused")})
		done(p, set, "app2", time.Second)
		assert.Equal(t, "app2", pick(t, p, set))
	})

	t.Run("a latency not renewed is measured again", func(t *testing.T) {
		set := newZoneSet(t)
		p, clock := newTestPicker()
		done(p, set, "app1", 300*time.Millisecond)
		done(p, set, "app2", time.Millisecond)
		require.Equal(t, "app2", pick(t, p, set))
		clock.Advance(staleAfter)
		done(p, set, "app2", time.Millisecond) // app2 keeps answering; app1 got nothing to answer
		assert.Equal(t, "app1", pick(t, p, set), "a backend slow once is never tried again")
	})

	t.Run("skips the backends the request failed on", func(t *testing.T) {
		set := newZoneSet(t)
		p, _ := newTestPicker()
		assert.Equal(t, "app2", pick(t, p, set, "app1"))
		assert.Equal(t, "app3", pick(t, p, set, "app1", "app2"), "the other zone when the zone's have failed it")
		_, err := p.Pick(balancer.Info{Snapshot: set.Snapshot(), Tried: set.Snapshot().Backends()})
		assert.ErrorIs(t, err, balancer.ErrNoBackend)
	})

	t.Run("another zone when the zone has no backend taking new clients", func(t *testing.T) {
		set := newZoneSet(t)
		p, _ := newTestPicker()
		require.NoError(t, set.SetState("app1", backend.Unhealthy))
		require.NoError(t, set.SetState("app2", backend.Draining))
		assert.Equal(t, "app3", pick(t, p, set))
	})

	t.Run("not a backend the snapshot no longer sends new clients to", func(t *testing.T) {
		set := newZoneSet(t)
		p, _ := newTestPicker()
		snap := set.Snapshot()
		require.NoError(t, set.SetState("app1", backend.Draining)) // snap still lists it
		b, err := p.Pick(balancer.Info{Snapshot: snap})
		require.NoError(t, err)
		assert.Equal(t, "app2", b.ID())
	})

	t.Run("ErrNoBackend when none is routable", func(t *testing.T) {
		set := newZoneSet(t)
		p, _ := newTestPicker()
		for _, b := range set.Snapshot().Backends() {
			require.NoError(t, set.SetState(b.ID(), backend.Unhealthy))
		}
		_, err := p.Pick(balancer.Info{Snapshot: set.Snapshot()})
		assert.ErrorIs(t, err, balancer.ErrNoBackend)
	})
}

func TestZonePickerAllocatesNothing(t *testing.T) {
	set := newZoneSet(t)
	p, _ := newTestPicker()
	for _, b := range set.Snapshot().Backends() {
		done(p, set, b.ID(), time.Millisecond) // each backend's record is made once
	}
	info := balancer.Info{Snapshot: set.Snapshot()}
	d := balancer.DoneInfo{Backend: set.Snapshot().Lookup("app1"), StatusCode: 200, Latency: time.Millisecond}
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := p.Pick(info); err != nil {
			t.Fatal(err)
		}
		p.Done(d)
	})
	assert.Zero(t, allocs)
}
