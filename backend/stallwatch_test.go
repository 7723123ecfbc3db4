package backend_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/internal/accounting"
)

// TestStallWatchFirstArm checks that a backend's first wait arms its watch
// without a data race, and without the first tick finding no timer, for
// any valid stall window, however short: the first tick may run at once.
func TestStallWatchFirstArm(t *testing.T) {
	for _, w := range []time.Duration{time.Nanosecond, time.Microsecond, 2 * time.Millisecond} {
		t.Run(w.String(), func(t *testing.T) {
			var cfgs []backend.Config
			for i := range 50 {
				cfgs = append(cfgs, backend.Config{ID: fmt.Sprintf("app%d", i), URL: fmt.Sprintf("http://127.0.0.1:%d", 10000+i)})
			}
			set, err := backend.NewSet(cfgs, backend.WithStallTimeout(w))
			require.NoError(t, err)
			var wg sync.WaitGroup
			for _, b := range set.Snapshot().Backends() {
				wg.Go(func() {
					accounting.WaitStarted(b, 1)
					time.Sleep(3 * w)
					accounting.WaitEnded(b, 1)
				})
			}
			wg.Wait()
			time.Sleep(10 * time.Millisecond) // the last ticks
		})
	}
}
