package backend_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
)

func threeBackends(t *testing.T, opts ...backend.Option) *backend.Set {
	t.Helper()
	set, err := backend.NewSet([]backend.Config{
		{ID: "a", URL: "http://127.0.0.1:1"},
		{ID: "b", URL: "http://127.0.0.1:2"},
		{ID: "c", URL: "http://127.0.0.1:3"},
	}, opts...)
	require.NoError(t, err)
	return set
}

func routableIDs(s *backend.Snapshot) []string {
	var ids []string
	for _, b := range s.Routable() {
		ids = append(ids, b.ID())
	}
	return ids
}

func TestSetOptionsAreValidated(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  backend.Option
		want string
	}{
		{"negative ejection threshold", backend.WithEjection(backend.Ejection{After: -1}), "Ejection.After -1"},
		{"zero ejection base", backend.WithEjection(backend.Ejection{After: 3, Max: time.Second}), "Ejection.Base 0s"},
		{"max under base", backend.WithEjection(backend.Ejection{After: 3, Base: time.Second, Max: time.Millisecond}), "Ejection.Max 1ms"},
		{"negative slow start", backend.WithSlowStart(-time.Second), "slow start window -1s"},
		{"zero drain idle", backend.WithDrainIdle(0), "drain idle time 0s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set, err := backend.NewSet(nil, tc.opt)
			assert.Nil(t, set)
			assert.ErrorContains(t, err, tc.want)
		})
	}
	_, err := backend.NewSet(nil, backend.WithEjection(backend.Ejection{}))
	assert.NoError(t, err, "Ejection{} turns passive ejection off")
}

func TestPassiveEjection(t *testing.T) {
	const base = 40 * time.Millisecond
	set := threeBackends(t, backend.WithEjection(backend.Ejection{After: 3, Base: base, Max: time.Hour}))
	a := set.Snapshot().Lookup("a")

	// Failures broken by a success do not eject.
	a.ReportFailure()
	a.ReportFailure()
	a.ReportSuccess()
	a.ReportFailure()
	a.ReportFailure()
	assert.Equal(t, backend.Healthy, a.State())

	a.ReportFailure() // the third in a row
	assert.Equal(t, backend.Unhealthy, a.State())
	assert.Equal(t, []string{"b", "c"}, routableIDs(set.Snapshot()))
	assert.True(t, set.Snapshot().Serves(set.Snapshot().Lookup("b")))

	// Re-admitted after the back-off, on its own.
	require.Eventually(t, func() bool { return a.State() == backend.Healthy }, 10*time.Second, time.Millisecond)
	assert.Equal(t, []string{"a", "b", "c"}, routableIDs(set.Snapshot()))
}

func TestPassiveEjectionBacksOffForAFlappingBackend(t *testing.T) {
	const base = 20 * time.Millisecond
	set := threeBackends(t, backend.WithEjection(backend.Ejection{After: 1, Base: base, Max: time.Hour}))
	a := set.Snapshot().Lookup("a")

	// Each ejection that follows soon after a re-admission lasts twice as
	// long as the one before: measure them as multiples of the first.
	var lengths []time.Duration
	for range 3 {
		start := time.Now()
		a.ReportFailure()
		require.Equal(t, backend.Unhealthy, a.State())
		require.Eventually(t, func() bool { return a.State() == backend.Healthy }, 10*time.Second, time.Millisecond)
		lengths = append(lengths, time.Since(start))
	}
	// Timers fire no earlier than asked: the n-th ejection lasts at least
	// base × 2^n. (No upper bound: a loaded machine may be late.)
	for i, d := range lengths {
		assert.GreaterOrEqual(t, d, base<<i, "ejection %d", i)
	}
}

func TestActiveOperatorOverridesEjection(t *testing.T) {
	set := threeBackends(t, backend.WithEjection(backend.Ejection{After: 1, Base: time.Hour, Max: time.Hour}))
	a := set.Snapshot().Lookup("a")
	a.ReportFailure()
	require.Equal(t, backend.Unhealthy, a.State())
	require.NoError(t, set.SetState("a", backend.Healthy))
	assert.Equal(t, backend.Healthy, a.State(), "SetState(Healthy) did not end the ejection")
}

func TestStatesCombine(t *testing.T) {
	set := threeBackends(t)
	a := set.Snapshot().Lookup("a")
	require.NoError(t, set.SetState("a", backend.Draining))
	require.NoError(t, set.SetState("a", backend.Unhealthy))
	assert.Equal(t, backend.Unhealthy, a.State(), "down and draining is unhealthy")
	require.NoError(t, set.SetState("a", backend.Healthy))
	assert.Equal(t, backend.Healthy, a.State(), "Healthy clears down and draining alike")
}

func TestFailOpen(t *testing.T) {
	for _, tc := range []struct {
		name     string
		opts     []backend.Option
		wantOpen bool
	}{
		{"default fails open", nil, true},
		{"fail closed", []backend.Option{backend.WithFailOpen(false)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set := threeBackends(t, tc.opts...)
			require.NoError(t, set.SetState("a", backend.Unhealthy))
			require.NoError(t, set.SetState("b", backend.Unhealthy))
			require.NoError(t, set.SetState("c", backend.Draining))
			snap := set.Snapshot()
			assert.Equal(t, tc.wantOpen, snap.FailOpen())
			if tc.wantOpen {
				assert.Equal(t, []string{"a", "b"}, routableIDs(snap), "draining backends take no new clients even failing open")
			} else {
				assert.Empty(t, snap.Routable())
			}
			assert.Equal(t, tc.wantOpen, snap.Serves(snap.Lookup("a")))
			assert.True(t, snap.Serves(snap.Lookup("c")))

			require.NoError(t, set.SetState("b", backend.Healthy))
			assert.False(t, set.Snapshot().FailOpen())
			assert.Equal(t, []string{"b"}, routableIDs(set.Snapshot()))
		})
	}
}

func TestSlowStartInflatesANewcomersLoad(t *testing.T) {
	const window = 400 * time.Millisecond
	set := threeBackends(t, backend.WithSlowStart(window))
	old := set.Snapshot()
	for _, b := range old.Backends() {
		assert.Equal(t, b.InFlight(), old.EffectiveInFlight(b), "backends present at start do not ramp")
		for range 10 {
			require.True(t, b.Acquire())
			t.Cleanup(b.Release)
		}
	}

	d, err := set.Add(backend.Config{ID: "d", URL: "http://127.0.0.1:4"})
	require.NoError(t, err)
	snap := set.Snapshot()
	// 30 in flight over 4 equal backends: a fair share is 7.5. The newcomer
	// starts counting as if it had nearly all of it.
	first := snap.EffectiveInFlight(d)
	assert.Zero(t, d.InFlight())
	assert.InDelta(t, 8, first, 1)
	require.Eventually(t, func() bool { return snap.EffectiveInFlight(d) == 0 }, 10*time.Second, time.Millisecond,
		"ramp never ended")
	assert.Equal(t, int64(10), snap.EffectiveInFlight(snap.Lookup("a")))

	t.Run("recovery ramps too", func(t *testing.T) {
		require.NoError(t, set.SetState("d", backend.Unhealthy))
		require.NoError(t, set.SetState("d", backend.Healthy))
		assert.Positive(t, set.Snapshot().EffectiveInFlight(d))
	})
}
