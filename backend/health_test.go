package backend_test

import (
	"log/slog"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/event"
	"github.com/affinitylb/affinity/internal/accounting"
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
		opts []backend.Option
		want string // the whole error
	}{
		{"negative ejection threshold", []backend.Option{backend.WithEjection(backend.Ejection{After: -1, Base: time.Second, Max: time.Second})},
			"backend: WithEjection: Ejection.After -1 is negative"},
		{"zero ejection base", []backend.Option{backend.WithEjection(backend.Ejection{After: 3, Max: time.Second})},
			"backend: WithEjection: Ejection.Base 0s must be positive"},
		{"negative ejection base", []backend.Option{backend.WithEjection(backend.Ejection{After: 3, Base: -time.Second, Max: time.Second})},
			"backend: WithEjection: Ejection.Base -1s must be positive"},
		{"max under base", []backend.Option{backend.WithEjection(backend.Ejection{After: 3, Base: time.Second, Max: time.Millisecond})},
			"backend: WithEjection: Ejection.Max 1ms is less than Base 1s"},
		{"ejection threshold past the failure counter", []backend.Option{backend.WithEjection(backend.Ejection{After: math.MaxInt32 + 1, Base: time.Second, Max: time.Second})},
			"backend: WithEjection: Ejection.After 2147483648 is over 2147483647"},
		{"every ejection field reported", []backend.Option{backend.WithEjection(backend.Ejection{After: -1, Base: -time.Second})},
			"backend: WithEjection: Ejection.After -1 is negative\n" +
				"backend: WithEjection: Ejection.Base -1s must be positive"},
		{"threshold and max both out of range", []backend.Option{backend.WithEjection(backend.Ejection{After: math.MaxInt32 + 1, Base: time.Second})},
			"backend: WithEjection: Ejection.After 2147483648 is over 2147483647\n" +
				"backend: WithEjection: Ejection.Max 0s is less than Base 1s"},
		{"negative slow start", []backend.Option{backend.WithSlowStart(-time.Second)},
			"backend: WithSlowStart(-1s): must not be negative"},
		{"zero drain idle", []backend.Option{backend.WithDrainIdle(0)},
			"backend: WithDrainIdle(0s): must be positive"},
		{"negative drain idle", []backend.Option{backend.WithDrainIdle(-time.Second)},
			"backend: WithDrainIdle(-1s): must be positive"},
		{"negative stall timeout", []backend.Option{backend.WithStallTimeout(-time.Second)},
			"backend: WithStallTimeout(-1s): must not be negative"},
		{"all reported together", []backend.Option{
			backend.WithStallTimeout(-time.Second), backend.WithDrainIdle(0), backend.WithSlowStart(-time.Minute),
			backend.WithEjection(backend.Ejection{After: -2, Base: time.Second, Max: time.Second}),
		}, "backend: WithEjection: Ejection.After -2 is negative\n" +
			"backend: WithSlowStart(-1m0s): must not be negative\n" +
			"backend: WithDrainIdle(0s): must be positive\n" +
			"backend: WithStallTimeout(-1s): must not be negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set, err := backend.NewSet(nil, tc.opts...)
			assert.Nil(t, set)
			assert.EqualError(t, err, tc.want)
		})
	}
	for _, tc := range []struct {
		name string
		opt  backend.Option
	}{
		{"Ejection{} turns passive ejection off", backend.WithEjection(backend.Ejection{})},
		{"slow start off", backend.WithSlowStart(0)},
		{"stall detection off", backend.WithStallTimeout(0)},
		{"a positive drain idle time", backend.WithDrainIdle(time.Millisecond)},
		{"no logger", backend.WithLogger(nil)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := backend.NewSet(nil, tc.opt)
			assert.NoError(t, err)
		})
	}
}

func TestPassiveEjection(t *testing.T) {
	const base = 40 * time.Millisecond
	set := threeBackends(t, backend.WithEjection(backend.Ejection{After: 3, Base: base, Max: time.Hour}))
	a := set.Snapshot().Lookup("a")

	// Failures broken by a success do not eject.
	accounting.ReportFailure(a)
	accounting.ReportFailure(a)
	accounting.ReportSuccess(a)
	accounting.ReportFailure(a)
	accounting.ReportFailure(a)
	assert.Equal(t, backend.Healthy, a.State())

	accounting.ReportFailure(a) // the third in a row
	assert.Equal(t, backend.Unhealthy, a.State())
	assert.Equal(t, []string{"b", "c"}, routableIDs(set.Snapshot()))
	assert.True(t, set.Snapshot().KeepsBound(set.Snapshot().Lookup("b")))
	assert.False(t, accounting.TryTrial(a), "a trial admitted during the back-off")

	// After the back-off, half-open: one trial, still unhealthy.
	require.Eventually(t, func() bool { return accounting.TryTrial(a) }, 10*time.Second, time.Millisecond)
	assert.Equal(t, backend.Unhealthy, a.State(), "half-open is shown healthy")
	assert.Equal(t, []string{"b", "c"}, routableIDs(set.Snapshot()), "half-open takes new clients")
	assert.False(t, accounting.TryTrial(a), "a second trial while one is out")

	// The trial succeeds: re-admitted.
	accounting.ReportSuccess(a)
	assert.Equal(t, backend.Healthy, a.State())
	assert.Equal(t, []string{"a", "b", "c"}, routableIDs(set.Snapshot()))
	assert.False(t, accounting.TryTrial(a), "a trial for a healthy backend")
}

// TestHalfOpen checks what a half-open backend admits, and what a report
// or a change of state does to it.
func TestHalfOpen(t *testing.T) {
	const base = 20 * time.Millisecond
	for _, tc := range []struct {
		name string
		// then acts on the half-open backend a, its trial out or not, and
		// checks the outcome.
		then func(t *testing.T, set *backend.Set, a *backend.Backend)
	}{
		{"new clients take the trial", func(t *testing.T, set *backend.Set, a *backend.Backend) {
			snap := set.Snapshot()
			assert.False(t, snap.KeepsBound(a), "half-open serves its clients")
			assert.Same(t, a, accounting.Trial(snap))
			assert.Nil(t, accounting.Trial(snap), "a second trial")
			assert.False(t, accounting.TryTrial(a), "a second trial")
		}},
		{"a failed trial ejects it again", func(t *testing.T, set *backend.Set, a *backend.Backend) {
			require.True(t, accounting.TryTrial(a))
			accounting.ReportFailure(a) // one failure is enough, though After is 3
			assert.Equal(t, backend.Unhealthy, a.State())
			assert.False(t, accounting.TryTrial(a), "a trial right after a failed one")
			assert.Nil(t, accounting.Trial(set.Snapshot()))
			require.Eventually(t, func() bool { return accounting.TryTrial(a) }, 10*time.Second, time.Millisecond, "no trial after the second back-off")
		}},
		{"a trial that never reports expires", func(t *testing.T, set *backend.Set, a *backend.Backend) {
			require.True(t, accounting.TryTrial(a))
			require.Eventually(t, func() bool { return accounting.TryTrial(a) }, 10*time.Second, time.Millisecond, "the trial never expired")
			assert.Equal(t, backend.Unhealthy, a.State())
			accounting.ReportSuccess(a) // the late one, or its successor
			assert.Equal(t, backend.Healthy, a.State())
		}},
		{"any success re-admits it", func(t *testing.T, set *backend.Set, a *backend.Backend) {
			accounting.ReportSuccess(a) // a request admitted before the ejection
			assert.Equal(t, backend.Healthy, a.State())
			assert.False(t, accounting.TryTrial(a))
		}},
		{"operator re-admits it", func(t *testing.T, set *backend.Set, a *backend.Backend) {
			require.NoError(t, set.SetState("a", backend.Healthy))
			assert.Equal(t, backend.Healthy, a.State())
			assert.False(t, accounting.TryTrial(a))
		}},
		{"down: no trial, and no success re-admits it", func(t *testing.T, set *backend.Set, a *backend.Backend) {
			require.NoError(t, set.SetState("a", backend.Unhealthy))
			assert.False(t, accounting.TryTrial(a))
			assert.Nil(t, accounting.Trial(set.Snapshot()))
			accounting.ReportSuccess(a)
			assert.Equal(t, backend.Unhealthy, a.State(), "a success overrode the operator")
		}},
		{"draining: its own clients' trial only", func(t *testing.T, set *backend.Set, a *backend.Backend) {
			require.NoError(t, set.SetState("a", backend.Draining))
			assert.Nil(t, accounting.Trial(set.Snapshot()), "a new client tried a draining backend")
			require.True(t, accounting.TryTrial(a), "no trial for a draining backend's clients")
			accounting.ReportSuccess(a)
			assert.Equal(t, backend.Draining, a.State())
		}},
		{"removed: no trial", func(t *testing.T, set *backend.Set, a *backend.Backend) {
			snap := set.Snapshot()
			_, err := set.Remove("a")
			require.NoError(t, err)
			assert.False(t, accounting.TryTrial(a))
			assert.Nil(t, accounting.Trial(snap), "an older snapshot offered a removed backend's trial")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set := threeBackends(t, backend.WithEjection(backend.Ejection{After: 3, Base: base, Max: time.Hour}))
			a := set.Snapshot().Lookup("a")
			assert.Nil(t, accounting.Trial(set.Snapshot()), "a trial with no backend ejected")
			for range 3 {
				accounting.ReportFailure(a)
			}
			require.Equal(t, backend.Unhealthy, a.State())
			// The end of the back-off publishes a snapshot that offers a's
			// trial to new clients: wait for it without taking the trial.
			ejected := set.Snapshot().Version()
			require.Eventually(t, func() bool { return set.Snapshot().Version() > ejected }, 10*time.Second, time.Millisecond)
			require.Equal(t, backend.Unhealthy, a.State(), "half-open is shown healthy")
			require.Equal(t, []string{"b", "c"}, routableIDs(set.Snapshot()), "half-open takes new clients")
			tc.then(t, set, a)
		})
	}
}

func TestPassiveEjectionBacksOffForAFlappingBackend(t *testing.T) {
	const base = 20 * time.Millisecond
	set := threeBackends(t, backend.WithEjection(backend.Ejection{After: 1, Base: base, Max: time.Hour}))
	a := set.Snapshot().Lookup("a")

	// Each ejection that follows a failed trial, or comes soon after a
	// re-admission, lasts twice as long as the one before: measure them,
	// from the failure to the next trial, as multiples of the first.
	var lengths []time.Duration
	for i := range 4 {
		start := time.Now()
		accounting.ReportFailure(a) // the first ejects it; the others fail its trial
		require.Equal(t, backend.Unhealthy, a.State())
		require.Eventually(t, func() bool { return accounting.TryTrial(a) }, 10*time.Second, time.Millisecond)
		lengths = append(lengths, time.Since(start))
		if i == 1 {
			accounting.ReportSuccess(a) // re-admitted, and failing again at once
			require.Equal(t, backend.Healthy, a.State())
		}
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
	accounting.ReportFailure(a)
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
			assert.Equal(t, tc.wantOpen, snap.KeepsBound(snap.Lookup("a")))
			assert.True(t, snap.KeepsBound(snap.Lookup("c")))

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
		assert.Equal(t, b.InFlight(), old.Load(b), "backends present at start do not ramp")
		for range 10 {
			require.True(t, accounting.Acquire(b))
			t.Cleanup(func() { accounting.Release(b) })
		}
	}

	d, err := set.Add(backend.Config{ID: "d", URL: "http://127.0.0.1:4"})
	require.NoError(t, err)
	snap := set.Snapshot()
	// 30 in flight over 4 equal backends: a fair share is 7.5. The newcomer
	// starts counting as if it had nearly all of it.
	first := snap.Load(d)
	assert.Zero(t, d.InFlight())
	assert.InDelta(t, 8, first, 1)
	require.Eventually(t, func() bool { return snap.Load(d) == 0 }, 10*time.Second, time.Millisecond,
		"ramp never ended")
	assert.Equal(t, int64(10), snap.Load(snap.Lookup("a")))

	t.Run("recovery ramps too", func(t *testing.T) {
		require.NoError(t, set.SetState("d", backend.Unhealthy))
		require.NoError(t, set.SetState("d", backend.Healthy))
		assert.Positive(t, set.Snapshot().Load(d))
	})
}

func TestHalfOpenLogsAndEvents(t *testing.T) {
	var out syncBuffer
	var mu sync.Mutex
	var events []string
	obs := event.ObserverFunc(func(e event.Event) {
		if e.Kind == event.StateChange {
			mu.Lock()
			defer mu.Unlock()
			events = append(events, e.From.String()+"->"+e.To.String())
		}
	})
	set := threeBackends(t,
		backend.WithLogger(slog.New(slog.NewTextHandler(&out, nil))),
		backend.WithEjection(backend.Ejection{After: 1, Base: 10 * time.Millisecond, Max: time.Hour}))
	set.AddObserver(obs)
	a := set.Snapshot().Lookup("a")

	accounting.ReportFailure(a) // ejected
	require.Eventually(t, func() bool { return accounting.TryTrial(a) }, 10*time.Second, time.Millisecond)
	accounting.ReportFailure(a) // the trial fails: ejected again, for 20ms
	require.Eventually(t, func() bool { return accounting.TryTrial(a) }, 10*time.Second, time.Millisecond)
	accounting.ReportSuccess(a) // the trial succeeds

	logs := out.String()
	for _, want := range []string{
		`level=WARN msg="backend ejected" id=a failures=1 for=10ms ejections=1`,
		`level=INFO msg="backend half-open: its next request is a trial" id=a after=10ms`,
		`level=WARN msg="trial request failed; backend ejected again" id=a for=20ms ejections=2`,
		`level=INFO msg="backend half-open: its next request is a trial" id=a after=20ms`,
		`level=INFO msg="backend re-admitted after a successful request" id=a`,
	} {
		assert.Contains(t, logs, want)
	}
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []string{"healthy->unhealthy", "unhealthy->healthy"}, events,
		"half-open and a failed trial are no change of state")
}
