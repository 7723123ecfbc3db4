package backend

import (
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestFailRunMeetsTheRuleOncePerRun checks that a run of failures reports
// meeting the ejection rule exactly once, at the failure that first makes
// it meet it, and again only after the run is zeroed (a success): the
// backend is ejected once per run, not at every failure after After.
func TestFailRunMeetsTheRuleOncePerRun(t *testing.T) {
	const after = 3
	type fail struct {
		client    uint64
		unreached bool
	}
	for _, tc := range []struct {
		name  string
		fails []fail
		at    int // the failure (from 1) that meets the rule; 0: none
	}{
		{"one client", []fail{{1, false}, {1, false}, {1, false}, {1, false}, {1, false}}, 0},
		{"two clients, then more", []fail{{1, false}, {2, false}, {1, false}, {2, false}, {1, false}, {3, true}}, 3},
		{"one client, then another late", []fail{{1, false}, {1, false}, {1, false}, {1, false}, {2, false}, {2, false}}, 5},
		{"unreached, then reached", []fail{{1, true}, {1, false}, {1, false}, {1, false}}, 3},
		{"clients whose tags agree: one client", []fail{{1, false}, {1 << 32, false}, {1, false}, {1 << 32, false}}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r failRun
			for round := range 2 { // the same run again, after a success
				at := 0
				for i, f := range tc.fails {
					if r.add(f.client, f.unreached, after) {
						assert.Zero(t, at, "round %d: met twice, at %d and %d", round, at, i+1)
						at = i + 1
					}
				}
				assert.Equal(t, tc.at, at, "round %d", round)
				assert.Equal(t, int32(len(tc.fails)), r.count(), "round %d", round)
				r.w.Store(0)
			}
		})
	}
}

// TestFailRunConcurrentFailuresMeetTheRuleOnce checks that failures
// reported at once from many goroutines meet the rule exactly once.
func TestFailRunConcurrentFailuresMeetTheRuleOnce(t *testing.T) {
	for range 20 {
		var r failRun
		var met atomic.Int32
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				for range 100 {
					if r.add(uint64(g), false, 5) {
						met.Add(1)
					}
				}
			})
		}
		wg.Wait()
		assert.Equal(t, int32(1), met.Load())
		assert.Equal(t, int32(800), r.count())
	}
}
