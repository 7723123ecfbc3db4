package backend_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/internal/accounting"
)

// messages is a slog handler that keeps the messages logged.
type messages struct {
	mu   sync.Mutex
	msgs []string
}

func (m *messages) Enabled(context.Context, slog.Level) bool { return true }
func (m *messages) WithAttrs([]slog.Attr) slog.Handler       { return m }
func (m *messages) WithGroup(string) slog.Handler            { return m }
func (m *messages) Handle(_ context.Context, r slog.Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.msgs = append(m.msgs, r.Message)
	return nil
}

func (m *messages) get() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.msgs...)
}

func TestStall(t *testing.T) {
	const (
		window = 100 * time.Millisecond
		tick   = 10 * time.Millisecond // one request's end every tick
	)
	long := backend.WithEjection(backend.Ejection{After: 5, Base: time.Hour, Max: time.Hour})
	for _, tc := range []struct {
		name  string
		opts  []backend.Option
		step  func(a *backend.Backend, i int) // the traffic at tick i
		eject bool
	}{
		{
			name:  "every request abandoned, none answered: stalled",
			opts:  []backend.Option{long, backend.WithStallTimeout(window)},
			step:  func(a *backend.Backend, i int) { accounting.ReportAbandoned(a, window, uint64(i)) },
			eject: true,
		},
		{
			name:  "two clients abandon every request, none answered: stalled",
			opts:  []backend.Option{long, backend.WithStallTimeout(window)},
			step:  func(a *backend.Backend, i int) { accounting.ReportAbandoned(a, window, uint64(i%2)) },
			eject: true,
		},
		{
			name: "one client abandons every request, none answered: its own",
			opts: []backend.Option{long, backend.WithStallTimeout(window)},
			step: func(a *backend.Backend, _ int) { accounting.ReportAbandoned(a, window, 7) },
		},
		{
			name: "slow: half abandoned, half answered",
			opts: []backend.Option{long, backend.WithStallTimeout(window)},
			step: func(a *backend.Backend, i int) {
				accounting.ReportAbandoned(a, window, uint64(i))
				if i%2 == 0 { // one in two answered: never 3 abandoned in a row
					accounting.ReportSuccess(a)
				}
			},
		},
		{
			name: "impatient clients further apart than the window",
			opts: []backend.Option{long, backend.WithStallTimeout(window)},
			step: func(a *backend.Backend, i int) {
				if i%15 == 0 {
					accounting.ReportAbandoned(a, window, uint64(i))
				}
			},
		},
		{
			name: "clients that hang up at once tell nothing",
			opts: []backend.Option{long, backend.WithStallTimeout(window)},
			step: func(a *backend.Backend, i int) { accounting.ReportAbandoned(a, window/4-time.Millisecond, uint64(i)) },
		},
		{
			name: "answered with failures only: left to Ejection.After",
			opts: []backend.Option{backend.WithEjection(backend.Ejection{After: 1000, Base: time.Hour, Max: time.Hour}), backend.WithStallTimeout(window)},
			step: func(a *backend.Backend, _ int) { accounting.ReportFailure(a) },
		},
		{
			name: "stall detection off",
			opts: []backend.Option{long, backend.WithStallTimeout(0)},
			step: func(a *backend.Backend, i int) { accounting.ReportAbandoned(a, window, uint64(i)) },
		},
		{
			name: "passive ejection off",
			opts: []backend.Option{backend.WithEjection(backend.Ejection{}), backend.WithStallTimeout(window)},
			step: func(a *backend.Backend, i int) { accounting.ReportAbandoned(a, window, uint64(i)) },
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set := threeBackends(t, tc.opts...)
			a := set.Snapshot().Lookup("a")
			i := 0
			if tc.eject {
				require.Eventually(t, func() bool {
					tc.step(a, i)
					i++
					return a.State() == backend.Unhealthy
				}, 10*time.Second, tick)
				assert.Equal(t, []string{"b", "c"}, routableIDs(set.Snapshot()))
				return
			}
			// A bounded wait: six windows of such traffic.
			for end := time.Now().Add(6 * window); time.Now().Before(end); i++ {
				tc.step(a, i)
				time.Sleep(tick)
			}
			assert.Equal(t, backend.Healthy, a.State())
		})
	}
}

func TestStallDefaultsBurstIsNoStall(t *testing.T) {
	set := threeBackends(t)
	a := set.Snapshot().Lookup("a")
	for i := range 10 {
		accounting.ReportAbandoned(a, backend.DefaultStallTimeout, uint64(i)) // all at once: a run shorter than the window
	}
	assert.Equal(t, backend.Healthy, a.State(), "a burst of impatient clients is no stall")
}

// TestStalledBackendHalfOpenTrial checks the half-open trials of a
// backend ejected as stalled. It runs on the fake clock of a synctest
// bubble: the back-off is all that decides when a trial expires or the
// next is admitted, not how long a loaded machine takes between two
// steps.
func TestStalledBackendHalfOpenTrial(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const (
			window = 50 * time.Millisecond
			base   = 200 * time.Millisecond // longer than the window: a trial can hang that long
		)
		logs := &messages{}
		set := threeBackends(t,
			backend.WithEjection(backend.Ejection{After: 5, Base: base, Max: time.Hour}),
			backend.WithStallTimeout(window),
			backend.WithLogger(slog.New(logs)))
		a := set.Snapshot().Lookup("a")
		var client uint64
		require.Eventually(t, func() bool {
			client++
			accounting.ReportAbandoned(a, window, client)
			return a.State() == backend.Unhealthy
		}, 10*time.Second, 5*time.Millisecond)
		assert.Contains(t, logs.get(), "backend stalled: requests unanswered; ejected")

		// Half-open: a trial whose client hangs up soon proves nothing: it
		// expires after the back-off, and the backend is not ejected again.
		require.Eventually(t, func() bool { return accounting.TryTrial(a) }, 10*time.Second, 5*time.Millisecond)
		accounting.ReportAbandoned(a, window/2, 1)
		assert.False(t, accounting.TryTrial(a), "the trial is still out")
		require.Eventually(t, func() bool { return accounting.TryTrial(a) }, 10*time.Second, 5*time.Millisecond, "the trial expired")
		assert.NotContains(t, logs.get(), "trial request failed; backend ejected again")

		// One that hangs for the window fails.
		time.Sleep(window)
		accounting.ReportAbandoned(a, window, 1) // one client's: a trial is anyone's
		assert.Contains(t, logs.get(), "trial request failed; backend ejected again")
		assert.False(t, accounting.TryTrial(a), "ejected again: no trial during the back-off")
		assert.Equal(t, backend.Unhealthy, a.State())

		// The next trial is answered: a is back.
		require.Eventually(t, func() bool { return accounting.TryTrial(a) }, 10*time.Second, 5*time.Millisecond)
		accounting.ReportSuccess(a)
		assert.Equal(t, backend.Healthy, a.State())
	})
}

// TestStallWaiting checks the stall rule on requests still waiting for
// their response header: a backend that answers nothing for the window
// while at least 3 requests from at least two clients wait all that time
// is ejected; answers, requests that do not wait that long, requests that
// are in flight but answered (streams), and one client's requests alone
// keep it in.
func TestStallWaiting(t *testing.T) {
	const window = 100 * time.Millisecond
	long := backend.WithEjection(backend.Ejection{After: 5, Base: time.Hour, Max: time.Hour})
	// waitFrom starts a wait of each client's (a client hash: its low
	// bits sort it among the stall watch's classes).
	waitFrom := func(a *backend.Backend, clients ...uint64) {
		for _, c := range clients {
			require.True(t, accounting.Acquire(a))
			accounting.WaitStarted(a, c)
		}
	}
	wait := func(a *backend.Backend, n int) { // n waits, of clients 0 to n-1
		for c := range n {
			waitFrom(a, uint64(c))
		}
	}
	for _, tc := range []struct {
		name  string
		opts  []backend.Option
		start func(a *backend.Backend)        // before the traffic
		step  func(a *backend.Backend, i int) // every 10 ms
		eject bool
	}{
		{
			name:  "3 requests wait, none answered: stalled",
			opts:  []backend.Option{long, backend.WithStallTimeout(window)},
			start: func(a *backend.Backend) { wait(a, 3) },
			step:  func(*backend.Backend, int) {},
			eject: true,
		},
		{
			name:  "3 requests of one client wait: its own",
			opts:  []backend.Option{long, backend.WithStallTimeout(window)},
			start: func(a *backend.Backend) { waitFrom(a, 6, 6, 6) },
			step:  func(*backend.Backend, int) {},
		},
		{
			name:  "3 requests of two clients wait: stalled",
			opts:  []backend.Option{long, backend.WithStallTimeout(window)},
			start: func(a *backend.Backend) { waitFrom(a, 6, 6, 8) }, // 0b0110, 0b1000: bits 1 to 3 differ
			step:  func(*backend.Backend, int) {},
			eject: true,
		},
		{
			name:  "2 requests wait: too few",
			opts:  []backend.Option{long, backend.WithStallTimeout(window)},
			start: func(a *backend.Backend) { wait(a, 2) },
			step:  func(*backend.Backend, int) {},
		},
		{
			name:  "3 wait, and others are answered",
			opts:  []backend.Option{long, backend.WithStallTimeout(window)},
			start: func(a *backend.Backend) { wait(a, 3) },
			step: func(a *backend.Backend, i int) {
				if i%3 == 0 {
					accounting.ReportSuccess(a)
				}
			},
		},
		{
			name:  "many wait, none for long: a stream of clients that hang up at once",
			opts:  []backend.Option{long, backend.WithStallTimeout(window)},
			start: func(*backend.Backend) {},
			step: func(a *backend.Backend, i int) {
				if i > 0 { // the 5 of the step before give up
					for c := range 5 {
						accounting.WaitEnded(a, uint64(c))
						accounting.Release(a)
					}
				}
				wait(a, 5)
			},
		},
		{
			name: "in flight but answered: long streams",
			opts: []backend.Option{long, backend.WithStallTimeout(window)},
			start: func(a *backend.Backend) {
				wait(a, 10)
				for c := range 10 {
					accounting.ReportSuccess(a)
					accounting.WaitEnded(a, uint64(c)) // the header arrived; the body streams on
				}
			},
			step: func(*backend.Backend, int) {},
		},
		{
			name:  "stall detection off",
			opts:  []backend.Option{long, backend.WithStallTimeout(0)},
			start: func(a *backend.Backend) { wait(a, 3) },
			step:  func(*backend.Backend, int) {},
		},
		{
			name:  "passive ejection off",
			opts:  []backend.Option{backend.WithEjection(backend.Ejection{}), backend.WithStallTimeout(window)},
			start: func(a *backend.Backend) { wait(a, 3) },
			step:  func(*backend.Backend, int) {},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set := threeBackends(t, tc.opts...)
			a := set.Snapshot().Lookup("a")
			tc.start(a)
			// A bounded wait: six windows of such traffic.
			for i := 0; i < 60 && a.State() == backend.Healthy; i++ {
				tc.step(a, i)
				time.Sleep(10 * time.Millisecond)
			}
			if tc.eject {
				assert.Equal(t, backend.Unhealthy, a.State())
				assert.Equal(t, []string{"b", "c"}, routableIDs(set.Snapshot()))
				return
			}
			assert.Equal(t, backend.Healthy, a.State())
		})
	}
}
