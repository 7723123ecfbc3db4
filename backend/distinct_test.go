package backend_test

import (
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/internal/accounting"
)

// report is one request's outcome, for TestEjectionNeedsTwoClientsOrAnUnreachedFailure:
// a failure of client (reached or not), or a success (ok).
type report struct {
	client  uint64
	reached bool
	ok      bool
}

// Outcomes of clients 1 and 2 (hashes, as the handler's clientID makes).
var (
	okay     = report{ok: true}
	reached1 = report{client: 0x9e3779b97f4a7c15, reached: true}
	reached2 = report{client: 0xbf58476d1ce4e5b9, reached: true}
	refused1 = report{client: 0x9e3779b97f4a7c15}
)

// TestEjectionNeedsTwoClientsOrAnUnreachedFailure checks the ejection
// rule of Ejection.After: a run of consecutive failures ejects its backend
// once it holds After of them and one did not reach the backend, or they
// came from at least two clients; a success ends the run, its clients
// with it.
func TestEjectionNeedsTwoClientsOrAnUnreachedFailure(t *testing.T) {
	rep := func(r report, n int) []report {
		var rs []report
		for range n {
			rs = append(rs, r)
		}
		return rs
	}
	cat := func(parts ...[]report) []report {
		var rs []report
		for _, p := range parts {
			rs = append(rs, p...)
		}
		return rs
	}
	for _, tc := range []struct {
		name    string
		reports []report
		ejectAt int // the report (from 1) after which the backend is ejected; 0: never
	}{
		{"one client's reached failures: never", rep(reached1, 20), 0},
		{"two clients, in turn: at After", cat(rep(reached1, 1), rep(reached2, 1), rep(reached1, 1), rep(reached2, 1), rep(reached1, 1)), 5},
		{"one client's, then another's at the fifth", cat(rep(reached1, 4), rep(reached2, 1)), 5},
		{"one client's ten, then another's: at the eleventh", cat(rep(reached1, 10), rep(reached2, 1)), 11},
		{"another client's first, then one's: at After", cat(rep(reached2, 1), rep(reached1, 9)), 5},
		{"unreached failures of one client: at After, as a dead backend's", rep(refused1, 5), 5},
		{"one unreached among one client's reached: at After", cat(rep(reached1, 2), rep(refused1, 1), rep(reached1, 2)), 5},
		{"one unreached after many reached: at once", cat(rep(reached1, 7), rep(refused1, 1)), 8},
		{"too few: four of two clients", cat(rep(reached1, 2), rep(reached2, 2)), 0},
		{"a success resets the count", cat(rep(reached1, 2), rep(reached2, 2), rep(okay, 1), rep(reached1, 2), rep(reached2, 2)), 0},
		{"a success resets the run's clients", cat(rep(reached2, 3), rep(okay, 1), rep(reached1, 10)), 0},
		{"a success resets an unreached failure", cat(rep(refused1, 1), rep(okay, 1), rep(reached1, 10)), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs := &messages{}
			set := threeBackends(t, backend.WithEjection(backend.Ejection{After: 5, Base: time.Hour, Max: time.Hour}),
				backend.WithLogger(slog.New(logs)))
			a := set.Snapshot().Lookup("a")
			for i, r := range tc.reports {
				if r.ok {
					accounting.ReportSuccess(a)
				} else {
					accounting.ReportFailureOf(a, accounting.Failure{Cause: "test", Client: r.client, Reached: r.reached})
				}
				want := backend.Healthy
				if tc.ejectAt != 0 && i+1 >= tc.ejectAt {
					want = backend.Unhealthy
				}
				require.Equal(t, want, a.State(), "after report %d", i+1)
			}
			n := 0
			for _, m := range logs.get() {
				if m == "backend ejected" {
					n++
				}
			}
			if tc.ejectAt != 0 {
				assert.Equal(t, 1, n, "ejections")
				assert.Contains(t, a.Health().Reason, "failures in a row")
			} else {
				assert.Zero(t, n, "ejections")
			}
		})
	}
}

// TestEjectionRuleUnderConcurrentReports checks the rule with failures
// reported concurrently: those of one client alone never eject its
// backend, however many; those of several do.
func TestEjectionRuleUnderConcurrentReports(t *testing.T) {
	for _, tc := range []struct {
		name    string
		clients int
		eject   bool
	}{
		{"one client", 1, false},
		{"eight clients", 8, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs := &messages{}
			set := threeBackends(t, backend.WithEjection(backend.Ejection{After: 5, Base: time.Hour, Max: time.Hour}),
				backend.WithLogger(slog.New(logs)))
			a := set.Snapshot().Lookup("a")
			var wg sync.WaitGroup
			for g := range 8 {
				client := uint64(g%tc.clients)*0x9e3779b97f4a7c15 + 1
				wg.Go(func() {
					for range 200 {
						accounting.ReportFailureOf(a, accounting.Failure{Client: client, Reached: true})
					}
				})
			}
			wg.Wait()
			if !tc.eject {
				assert.Equal(t, backend.Healthy, a.State())
				return
			}
			assert.Equal(t, backend.Unhealthy, a.State())
			n := 0
			for _, m := range logs.get() {
				if m == "backend ejected" {
					n++
				}
			}
			assert.Equal(t, 1, n, "ejections")
		})
	}
}

// TestRequestPathReportsAllocateNothing checks that reporting a failure
// with its client, a success, and a wait, as the handler does for every
// request, allocates nothing.
func TestRequestPathReportsAllocateNothing(t *testing.T) {
	set := threeBackends(t, backend.WithStallTimeout(time.Hour))
	a := set.Snapshot().Lookup("a")
	allocs := testing.AllocsPerRun(100, func() {
		accounting.WaitStarted(a, 0x9e3779b97f4a7c15)
		accounting.WaitEnded(a, 0x9e3779b97f4a7c15)
		accounting.ReportFailureOf(a, accounting.Failure{Client: 0x9e3779b97f4a7c15, Reached: true})
		accounting.ReportSuccess(a)
	})
	assert.Zero(t, allocs)
}
