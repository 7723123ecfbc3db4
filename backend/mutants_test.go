package backend_test

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/internal/accounting"
)

// TestHealthCheckCountsExactly checks that a backend goes down on exactly
// its Fall-th failed probe in a row and comes back on exactly its Rise-th
// passing one: probes are sequential, each recorded before the next is
// sent, so the state each probe finds on arrival tells what the probes
// before it made of the backend. The test's ticks, two intervals apart,
// pace the probes, and a probe may take as long as the whole test waits:
// every probe the server answers counts as it answered, however slowly
// the machine runs it.
func TestHealthCheckCountsExactly(t *testing.T) {
	for _, tc := range []struct{ rise, fall int }{
		{1, 1}, {2, 3}, {3, 2}, {0, 0}, // zero: the defaults, 2 and 3
	} {
		rise, fall := tc.rise, tc.fall
		if rise == 0 {
			rise, fall = 2, 3
		}
		t.Run(fmt.Sprintf("rise %d fall %d", tc.rise, tc.fall), func(t *testing.T) {
			set, err := backend.NewSet(nil)
			require.NoError(t, err)
			state := func() backend.State { return set.Snapshot().Lookup("a").State() }
			// Probe n (from 1) fails for the first fall+2 probes (two
			// more than it takes to go down), then passes.
			var (
				probes atomic.Int64
				found  [32]atomic.Int32 // the state probe n found, plus 1
			)
			srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
				n := probes.Add(1)
				if n < int64(len(found)) {
					found[n].Store(int32(state()) + 1)
				}
				if n <= int64(fall)+2 {
					w.WriteHeader(http.StatusServiceUnavailable)
				}
			})
			addBackend(t, set, "a", srv.URL)
			ticks := make(chan time.Time)
			backend.SetCheckTicks(set, ticks)
			checkHealth(t, set, backend.HealthCheck{Interval: checkWait, Timeout: checkWait, Rise: tc.rise, Fall: tc.fall})

			last := fall + 2 + rise + 2 // two probes after it should be back
			deadline := time.After(checkWait)
			// found[last] is stored once the probes before it are recorded.
			for at := time.Now(); found[last].Load() == 0; at = at.Add(2 * checkWait) {
				select {
				case ticks <- at: // a turn for a, unless its last probe is still out
				case <-deadline:
					require.FailNow(t, "too few probes", "%d of %d", probes.Load(), last)
				}
				time.Sleep(time.Millisecond)
			}
			for n := 1; n <= last; n++ {
				want := backend.Healthy
				// After probe fall it is down, until probe fall+2+rise.
				if n > fall && n <= fall+2+rise {
					want = backend.Unhealthy
				}
				assert.Equal(t, want, backend.State(found[n].Load()-1), "the state probe %d found (fall %d, rise %d)", n, fall, rise)
			}
		})
	}
}

// TestDrainIdleTime checks, on a clock of the test's, that a draining
// backend leaves the set once it has been idle for exactly the drain idle
// time: not a moment before, and that a request in flight or one admitted
// between two looks starts the idle time over.
func TestDrainIdleTime(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []backend.Option
		idle time.Duration
	}{
		{"30s", []backend.Option{backend.WithDrainIdle(30 * time.Second)}, 30 * time.Second},
		{"default", nil, backend.DefaultDrainIdle},
		{"1ms", []backend.Option{backend.WithDrainIdle(time.Millisecond)}, time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set := threeBackends(t, tc.opts...)
			ticks := make(chan time.Time) // unbuffered: a tick sent is a tick the watcher took
			backend.SetDrainTicks(set, ticks)
			a := set.Snapshot().Lookup("a")
			done, err := set.Drain("a", time.Hour)
			require.NoError(t, err)

			// tick has the watcher look at a at time at, and reports
			// whether it was still watching: it had not ended the drain
			// at the look before.
			tick := func(at time.Time) bool {
				select {
				case ticks <- at:
					return true
				case <-done:
					return false
				case <-time.After(10 * time.Second):
					t.Fatal("the drain's watcher took no tick and did not end")
					return false
				}
			}
			// Each message is about the look before the tick it comes with.
			t0 := time.Now()
			require.True(t, tick(t0))
			require.True(t, accounting.Acquire(a), "a bound request, between two looks")
			accounting.Release(a)
			require.True(t, tick(t0.Add(tc.idle-time.Nanosecond)), "left the set before being idle for %v", tc.idle)
			require.True(t, tick(t0.Add(tc.idle)), "left the set though a request was admitted since the look before")
			require.True(t, accounting.Acquire(a), "a bound request, in flight at the next look")
			require.True(t, tick(t0.Add(2*tc.idle)), "left the set before being idle for %v", tc.idle)
			accounting.Release(a)
			t1 := t0.Add(3 * tc.idle)
			require.True(t, tick(t1), "left the set with a request in flight")
			require.True(t, tick(t1.Add(tc.idle/2)), "left the set before being idle for %v", tc.idle)
			require.True(t, tick(t1.Add(tc.idle-time.Nanosecond)), "left the set before being idle for %v", tc.idle)
			require.True(t, tick(t1.Add(tc.idle)), "left the set before being idle for %v", tc.idle)
			require.False(t, tick(t1.Add(tc.idle)), "still in the set after being idle for %v", tc.idle)
			assert.True(t, a.Removed())
			assert.Nil(t, set.Snapshot().Lookup("a"))
		})
	}
}
