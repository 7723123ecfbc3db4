package backend_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/event"
	"github.com/affinitylb/affinity/internal/accounting"
)

// lines is an observer that keeps the events it receives as short strings.
type lines struct {
	mu  sync.Mutex
	got []string
}

func (l *lines) Observe(e event.Event) {
	line := e.Kind.String() + " " + e.Backend
	if e.Kind == event.StateChange {
		line += " " + e.From.String() + "->" + e.To.String()
	}
	if e.Reason != 0 {
		line += " " + e.Reason.String()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.got = append(l.got, line)
}

func (l *lines) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	got := l.got
	l.got = nil
	return got
}

func TestSetObserverSeesStateChangesAndDrains(t *testing.T) {
	obs := &lines{}
	set := threeBackends(t, backend.WithDrainIdle(10*time.Millisecond),
		backend.WithEjection(backend.Ejection{After: 1, Base: time.Hour, Max: time.Hour}))
	set.AddObserver(obs)
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

	assert.Equal(t, []string{
		"state_change a healthy->unhealthy",
		"state_change a unhealthy->healthy",
		"state_change a healthy->unhealthy",
		"state_change b healthy->draining",
		"drain_start b",
		"drain_end b idle",
	}, obs.take())
	assert.Equal(t, "unknown", event.Kind(0).String())
}

// TestAddObserver checks who receives what: observers added later get the
// events from then on, each observer every event, nil is ignored, and the
// zero Set takes observers too.
func TestAddObserver(t *testing.T) {
	first, second := &lines{}, &lines{}
	set := threeBackends(t)
	require.NoError(t, set.SetState("a", backend.Draining)) // before any observer
	set.AddObserver(first)
	set.AddObserver(nil) // ignored
	require.NoError(t, set.SetState("b", backend.Unhealthy))
	set.AddObserver(second)
	require.NoError(t, set.SetState("c", backend.Draining))
	assert.Equal(t, []string{"state_change b healthy->unhealthy", "state_change c healthy->draining"}, first.take())
	assert.Equal(t, []string{"state_change c healthy->draining"}, second.take())

	var zero backend.Set
	zero.AddObserver(first)
	_, err := zero.Add(backend.Config{ID: "z", URL: "http://127.0.0.1:9"})
	require.NoError(t, err)
	require.NoError(t, zero.SetState("z", backend.Unhealthy))
	assert.Equal(t, []string{"state_change z healthy->unhealthy"}, first.take())
}

// TestAddObserverConcurrently adds observers while the set changes state
// under them, for the race detector: every observer added before a change
// receives it.
func TestAddObserverConcurrently(t *testing.T) {
	set := threeBackends(t)
	const adders, changes = 4, 200
	var wg sync.WaitGroup
	obs := make([]*lines, adders)
	for i := range obs {
		obs[i] = &lines{}
		wg.Go(func() { set.AddObserver(obs[i]) })
	}
	wg.Go(func() {
		for i := range changes {
			st := backend.Unhealthy
			if i%2 == 1 {
				st = backend.Healthy
			}
			assert.NoError(t, set.SetState("a", st))
		}
	})
	wg.Wait()
	require.NoError(t, set.SetState("b", backend.Draining))
	for i, o := range obs {
		got := o.take()
		require.NotEmpty(t, got, "observer %d", i)
		assert.Equal(t, "state_change b healthy->draining", got[len(got)-1], "observer %d", i)
		assert.LessOrEqual(t, len(got), changes+1, fmt.Sprintf("observer %d: no event twice", i))
	}
}

func TestEmitAllocatesNothing(t *testing.T) {
	set := threeBackends(t)
	set.AddObserver(event.ObserverFunc(func(event.Event) {}))
	set.AddObserver(event.ObserverFunc(func(event.Event) {}))
	e := event.Event{Kind: event.StateChange, Backend: "a", From: backend.Healthy, To: backend.Unhealthy}
	assert.Zero(t, testing.AllocsPerRun(100, func() { backend.Emit(set, e) }), "an event to two observers")
}
