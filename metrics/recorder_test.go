package metrics

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/event"
	"github.com/affinitylb/affinity/internal/accounting"
)

// backendOf returns the view of the backend id, failing if there is none.
func backendOf(t *testing.T, v *view, id string) backendView {
	t.Helper()
	for _, b := range v.backends {
		if b.id == id {
			return b
		}
	}
	t.Fatalf("no backend %q in the view", id)
	return backendView{}
}

func TestObserveCounts(t *testing.T) {
	set := newSet(t, "a", "b")
	type counts struct {
		picks, boundHits, binds, redisTo, redisFrom, retriesTo, retriesFrom, drains int64
		toHealthy, toUnhealthy, toDraining                                          int64
	}
	read := func(b backendView) counts {
		return counts{
			b.picks, b.boundHits, b.binds, b.redispatchesTo, b.redispatchesFrom, b.retriesTo, b.retriesFrom, b.drains,
			b.stateChanges[backend.Healthy], b.stateChanges[backend.Unhealthy], b.stateChanges[backend.Draining],
		}
	}
	tests := []struct {
		name   string
		events []event.Event
		a, b   counts
	}{
		{"pick", []event.Event{ev(event.Pick, "a", "")}, counts{picks: 1}, counts{}},
		{"bound hit", []event.Event{ev(event.BoundHit, "b", ""), ev(event.BoundHit, "b", "")}, counts{}, counts{boundHits: 2}},
		{"bind", []event.Event{ev(event.Bind, "a", "")}, counts{binds: 1}, counts{}},
		{"redispatch counts both ends", []event.Event{ev(event.Redispatch, "b", "a")}, counts{redisFrom: 1}, counts{redisTo: 1}},
		{"redispatch from nowhere", []event.Event{ev(event.Redispatch, "b", "")}, counts{}, counts{redisTo: 1}},
		{"retry counts both ends", []event.Event{ev(event.Retry, "a", "b")}, counts{retriesTo: 1}, counts{retriesFrom: 1}},
		{"state changes by destination", []event.Event{
			{Kind: event.StateChange, Backend: "a", From: backend.Healthy, To: backend.Unhealthy},
			{Kind: event.StateChange, Backend: "a", From: backend.Unhealthy, To: backend.Healthy},
			{Kind: event.StateChange, Backend: "b", From: backend.Healthy, To: backend.Draining},
			{Kind: event.StateChange, Backend: "b", To: backend.State(7)}, // not a state: ignored
		}, counts{toHealthy: 1, toUnhealthy: 1}, counts{toDraining: 1}},
		{"drain start", []event.Event{ev(event.DrainStart, "b", "")}, counts{}, counts{drains: 1}},
		{"events without a backend count nowhere", []event.Event{{Kind: event.Pick}, {Kind: event.Bind}}, counts{}, counts{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRecorder(t, set)
			for _, e := range tt.events {
				r.Observe(e)
			}
			v := r.view(false)
			assert.Equal(t, tt.a, read(backendOf(t, v, "a")), "a")
			assert.Equal(t, tt.b, read(backendOf(t, v, "b")), "b")
		})
	}
}

func TestObserveReasons(t *testing.T) {
	r := newRecorder(t, newSet(t))
	for _, reason := range []event.Reason{event.Malformed, event.Forged, event.Forged, event.Expired, event.Unknown, event.Unknown, event.Unknown, event.DrainIdle} {
		r.Observe(event.Event{Kind: event.Rejected, Reason: reason})
	}
	for _, reason := range []event.Reason{event.DrainIdle, event.DrainTimeout, event.DrainUndone, event.DrainRemoved, event.DrainRemoved, 0} {
		r.Observe(event.Event{Kind: event.DrainEnd, Reason: reason})
	}
	r.Observe(event.Event{Kind: event.Panic, Panic: "runtime error: index out of range"})
	v := r.view(false)
	assert.Equal(t, [len(rejectReasons)]int64{1, 2, 1, 3, 1}, v.rejected, "malformed, forged, expired, unknown, other")
	assert.Equal(t, [len(drainReasons)]int64{1, 1, 1, 2, 1}, v.drainEnds, "idle, timeout, undone, removed, other")
	assert.Equal(t, int64(1), v.panics)
	assert.Empty(t, v.backends, "no members, no backend events")
}

func TestView(t *testing.T) {
	set := newSet(t, "b", "a", "c")
	r := newRecorder(t, set)
	clk := withClock(r)
	r.Observe(ev(event.Pick, "c", ""))

	require.NoError(t, set.SetState("b", backend.Draining))
	b := set.Snapshot().Lookup("a")
	require.True(t, accounting.Acquire(b))
	t.Cleanup(func() { accounting.Release(b) })
	v := r.view(false)
	assert.True(t, start.Equal(v.at), "read at %v", v.at)
	require.Len(t, v.backends, 3)
	assert.Equal(t, []string{"a", "b", "c"}, []string{v.backends[0].id, v.backends[1].id, v.backends[2].id}, "sorted by ID")
	a := backendOf(t, v, "a")
	assert.Equal(t, "http://127.0.0.1:2", a.url)
	assert.Equal(t, int64(1), a.inflight)
	assert.Equal(t, int64(1), a.requests)
	assert.Equal(t, int64(1), a.weight)
	assert.Equal(t, "draining", backendOf(t, v, "b").stateName())
	assert.Equal(t, int64(1), backendOf(t, v, "c").picks)

	_, err := set.Remove("c")
	require.NoError(t, err)
	clk.add(time.Second)
	v = r.view(false)
	assert.Equal(t, "removed", backendOf(t, v, "c").stateName(), "kept, for a while, once it left")
	assert.Equal(t, int64(1), backendOf(t, v, "c").picks)
}

func TestWindows(t *testing.T) {
	set := newSet(t, "a", "b")
	r := newRecorder(t, set)
	clk := withClock(r)
	// Second 0: 3 requests on a, one of them bound; second 2: 1
	// redispatched to b and 1 retried onto a.
	for _, e := range []event.Event{
		ev(event.Pick, "a", ""), ev(event.Pick, "a", ""), ev(event.BoundHit, "a", ""),
		ev(event.Bind, "a", ""), ev(event.Bind, "a", ""),
	} {
		r.Observe(e)
	}
	clk.add(2 * time.Second)
	r.Observe(ev(event.Redispatch, "b", "a"))
	r.Observe(ev(event.Retry, "a", "b"))
	r.Observe(ev(event.Bind, "b", ""))

	clk.add(time.Second) // second 3: seconds 0 to 2 are complete
	v := r.view(true)
	a, b := backendOf(t, v, "a"), backendOf(t, v, "b")
	require.Len(t, a.rps, rpsWindow)
	assert.Equal(t, []int64{3, 0, 1}, a.rps[rpsWindow-3:], "a: the last three whole seconds")
	assert.Equal(t, []int64{0, 0, 1}, b.rps[rpsWindow-3:])
	assert.Equal(t, int64(2), a.bindsLastMinute)
	assert.Equal(t, int64(1), b.bindsLastMinute)
	assert.Equal(t, int64(1), a.errors(), "a: redispatched away once")
	assert.Equal(t, int64(1), b.errors(), "b: retried away once")

	clk.add(58 * time.Second) // second 61: second 0 is out of the minute
	v = r.view(true)
	assert.Zero(t, backendOf(t, v, "a").bindsLastMinute)
	assert.Equal(t, int64(1), backendOf(t, v, "b").bindsLastMinute)
	assert.Equal(t, int64(3), backendOf(t, v, "a").rps[rpsWindow-61], "still in the five minutes")

	clk.add(5 * time.Minute)
	v = r.view(true)
	assert.Equal(t, make([]int64, rpsWindow), backendOf(t, v, "a").rps, "five minutes later, all quiet")
	a = backendOf(t, v, "a")
	assert.Equal(t, [2]int64{2, 1}, [2]int64{a.picks, a.boundHits}, "totals are kept")
}

func TestForget(t *testing.T) {
	tests := []struct {
		name    string
		member  bool          // "a" is a member of the set at first
		remove  bool          // remove "a" from the set
		wait    time.Duration // after the last event
		forgets bool
	}{
		{"member, idle for long", true, false, time.Hour, false},
		{"left the set, recently", true, true, DefaultForgetAfter - time.Second, false},
		{"left the set, long ago", true, true, DefaultForgetAfter + time.Second, true},
		{"never a member, seen recently", false, false, DefaultForgetAfter - time.Second, false},
		{"never a member, not seen for long", false, false, DefaultForgetAfter + time.Second, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ids := []string{"b"}
			if tt.member {
				ids = append(ids, "a")
			}
			set := newSet(t, ids...)
			r := newRecorder(t, set)
			clk := withClock(r)
			r.Observe(ev(event.Pick, "a", ""))
			if tt.remove {
				_, err := set.Remove("a")
				require.NoError(t, err)
			}
			clk.add(tt.wait)
			r.view(false)
			_, kept := (*r.byID.Load())["a"]
			assert.Equal(t, !tt.forgets, kept)
		})
	}
}

func TestMaxBackends(t *testing.T) {
	r := newRecorder(t, newSet(t), WithMaxBackends(2), WithForgetAfter(time.Minute)) // none a member
	clk := withClock(r)
	for _, id := range []string{"a", "b", "c", "c"} {
		r.Observe(ev(event.Pick, id, ""))
	}
	v := r.view(false)
	assert.Len(t, v.backends, 2, "capped")
	assert.Equal(t, int64(2), v.untracked, "the events about c")

	clk.add(30 * time.Second)
	r.Observe(ev(event.Pick, "b", "")) // a is idle, b is not
	clk.add(31 * time.Second)
	r.Observe(ev(event.Pick, "c", "")) // a is forgotten to make room
	v = r.view(false)
	assert.Equal(t, []string{"b", "c"}, []string{v.backends[0].id, v.backends[1].id})
	assert.Equal(t, int64(1), backendOf(t, v, "c").picks)
	assert.Equal(t, int64(2), v.untracked)
}

func TestNewValidates(t *testing.T) {
	tests := []struct {
		name string
		set  *backend.Set
		opts []Option
		want string // the whole error
	}{
		{"nil set", nil, nil, "metrics: nil backend set"},
		{"zero cap", newSet(t), []Option{WithMaxBackends(0)}, "metrics: WithMaxBackends(0): must be at least 1"},
		{"negative cap", newSet(t), []Option{WithMaxBackends(-3)}, "metrics: WithMaxBackends(-3): must be at least 1"},
		{"zero forget", newSet(t), []Option{WithForgetAfter(0)}, "metrics: WithForgetAfter(0s): must be positive"},
		{"negative forget", newSet(t), []Option{WithForgetAfter(-time.Second)}, "metrics: WithForgetAfter(-1s): must be positive"},
		{"all reported together", nil, []Option{WithMaxBackends(0), WithForgetAfter(-time.Second)},
			"metrics: nil backend set\n" +
				"metrics: WithMaxBackends(0): must be at least 1\n" +
				"metrics: WithForgetAfter(-1s): must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := New(tt.set, tt.opts...)
			assert.Nil(t, r)
			assert.EqualError(t, err, tt.want)
		})
	}
}

func TestOptionValues(t *testing.T) {
	r := newRecorder(t, newSet(t))
	assert.Equal(t, DefaultMaxBackends, r.maxBackends)
	assert.Equal(t, DefaultForgetAfter, r.forgetAfter)
	r = newRecorder(t, newSet(t), WithMaxBackends(5), WithForgetAfter(time.Second))
	assert.Equal(t, 5, r.maxBackends)
	assert.Equal(t, time.Second, r.forgetAfter)
}

// TestNewObservesTheSet checks that New makes the Recorder an observer of
// its set: the set's state changes and drains are counted with no other
// wiring.
func TestNewObservesTheSet(t *testing.T) {
	set := newSet(t, "a", "b")
	require.NoError(t, set.SetState("a", backend.Unhealthy)) // before New: not counted
	r := newRecorder(t, set)
	require.NoError(t, set.SetState("a", backend.Healthy))
	require.NoError(t, set.SetState("b", backend.Draining))
	v := r.view(false)
	a, b := backendOf(t, v, "a"), backendOf(t, v, "b")
	assert.Equal(t, [len(states)]int64{1, 0, 0}, a.stateChanges, "a: healthy once")
	assert.Equal(t, [len(states)]int64{0, 0, 1}, b.stateChanges, "b: draining once")
}
