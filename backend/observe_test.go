package backend_test

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/internal/accounting"
)

func TestSetObserverSeesStateChangesAndDrains(t *testing.T) {
	var mu sync.Mutex
	var got []backend.Event
	obs := backend.ObserverFunc(func(e backend.Event) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, e)
	})
	set := threeBackends(t, backend.WithObserver(obs), backend.WithDrainIdle(10*time.Millisecond),
		backend.WithEjection(backend.Ejection{After: 1, Base: time.Hour, Max: time.Hour}))
	a := set.Snapshot().Lookup("a")

	require.NoError(t, set.SetState("a", backend.Unhealthy))
	require.NoError(t, set.SetState("a", backend.Unhealthy)) // no change, no event
	require.NoError(t, set.SetState("a", backend.Healthy))
	accounting.ReportFailure(a) // ejected
	done, err := set.Drain("b", time.Hour)
	require.NoError(t, err)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("drain did not end")
	}

	mu.Lock()
	defer mu.Unlock()
	var lines []string
	for _, e := range got {
		line := e.Kind.String() + " " + e.Backend.ID()
		if e.Kind == backend.EventStateChange {
			line += " " + e.From.String() + "->" + e.To.String()
		}
		if e.Reason != "" {
			line += " " + e.Reason
		}
		lines = append(lines, line)
	}
	assert.Equal(t, []string{
		"state_change a healthy->unhealthy",
		"state_change a unhealthy->healthy",
		"state_change a healthy->unhealthy",
		"state_change b healthy->draining",
		"drain_start b",
		"drain_end b idle",
	}, lines)
	assert.Equal(t, "unknown", backend.EventKind(0).String())
}
