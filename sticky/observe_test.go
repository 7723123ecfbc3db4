package sticky_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/balancer"
	"github.com/affinitylb/affinity/event"
	"github.com/affinitylb/affinity/policy"
	"github.com/affinitylb/affinity/sticky"
)

// recorder is an observer that keeps events as short strings, but for
// Done events, which facts_test.go checks.
type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) Observe(e event.Event) {
	if e.Kind == event.Done {
		return
	}
	s := e.Kind.String()
	if e.Prev != "" {
		s += " " + e.Prev + "->"
	} else if e.Backend != "" {
		s += " "
	}
	s += e.Backend
	if e.Reason != 0 {
		s += " (" + e.Reason.String() + ")"
	}
	if e.Panic != nil {
		s += " (" + fmt.Sprint(e.Panic) + ")"
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, s)
}

// take returns the events so far and forgets them.
func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	ev := r.events
	r.events = nil
	return ev
}

func TestObserverSeesWhatHappens(t *testing.T) {
	p := newPool(t, 2, backend.WithEjection(backend.Ejection{}))
	rec := &recorder{}
	h, err := sticky.New(p.set, newCookie(t), sticky.WithObserver(rec),
		sticky.WithPicker(&balancer.RoundRobin{}))
	require.NoError(t, err)
	base := front(t, h)
	c := newClient(t, true)

	get(t, c, base+"/whoami")
	assert.Equal(t, []string{"pick app1", "bind app1"}, rec.take(), "new client")

	get(t, c, base+"/whoami")
	assert.Equal(t, []string{"bound_hit app1"}, rec.take(), "bound client")

	get(t, newClient(t, false), base+"/whoami", &http.Cookie{Name: "affinity", Value: "garbage"})
	assert.Equal(t, []string{"rejected (malformed)", "pick app2", "bind app2"}, rec.take(), "bad cookie")

	require.NoError(t, p.set.SetState("app1", backend.Unhealthy))
	get(t, c, base+"/whoami")
	assert.Equal(t, []string{"redispatch app1->app2", "bind app2"}, rec.take(), "bound to an unhealthy backend")
	require.NoError(t, p.set.SetState("app1", backend.Healthy))

	p.kill(t, "app1")
	for range 2 { // round robin: one of the two meets app1 first
		get(t, newClient(t, false), base+"/whoami")
	}
	ev := rec.take()
	assert.Contains(t, ev, "failure app1 (transport)", "unreachable backend")
	assert.Contains(t, ev, "retry app1->app2", "unreachable backend")
}

func TestPanickingPickerAnswers500(t *testing.T) {
	p := newPool(t, 2)
	rec := &recorder{}
	h, err := sticky.New(p.set, newCookie(t), sticky.WithObserver(rec),
		sticky.WithPicker(balancer.PickerFunc(func(balancer.Info) (*backend.Backend, error) {
			panic("picker bug")
		})))
	require.NoError(t, err)
	base := front(t, h)

	w := get(t, newClient(t, false), base+"/whoami")
	assert.Equal(t, http.StatusInternalServerError, w.status)
	assert.True(t, slices.Contains(rec.take(), "panic (picker bug)"))
	// The handler goes on serving: bound clients never reach the picker.
	ck := newCookie(t)
	w = get(t, newClient(t, false), base+"/whoami", &http.Cookie{Name: "affinity", Value: ck.Issue("app1")})
	assert.Equal(t, http.StatusOK, w.status)
}

// TestSeveralObservers gives the handler two observers: each receives
// every event.
func TestSeveralObservers(t *testing.T) {
	p := newPool(t, 2, backend.WithEjection(backend.Ejection{}))
	first, second := &recorder{}, &recorder{}
	h, err := sticky.New(p.set, newCookie(t), sticky.WithObserver(first),
		sticky.WithObserver(second), sticky.WithPicker(&balancer.RoundRobin{}))
	require.NoError(t, err)
	base := front(t, h)
	c := newClient(t, true)

	get(t, c, base+"/whoami")
	get(t, c, base+"/whoami")
	get(t, newClient(t, false), base+"/whoami", &http.Cookie{Name: "affinity", Value: "garbage"})
	want := []string{"pick app1", "bind app1", "bound_hit app1", "rejected (malformed)", "pick app2", "bind app2"}
	assert.Equal(t, want, first.take(), "first")
	assert.Equal(t, want, second.take(), "second")
}

// TestRejectedReasons checks that each status a policy refuses a binding
// with reaches the observer as its reason, and that the client of a
// backend that left the set is redispatched from nowhere.
func TestRejectedReasons(t *testing.T) {
	p := newPool(t, 2, backend.WithEjection(backend.Ejection{}))
	tests := []struct {
		name   string
		status policy.Status
		want   []string
	}{
		{"malformed", policy.Malformed, []string{"rejected (malformed)", "pick app1"}},
		{"forged", policy.Forged, []string{"rejected (forged)", "pick app1"}},
		{"expired", policy.Expired, []string{"rejected (expired)", "pick app1"}},
		// Placed by the binding's hash, not the picker: either member.
		{"unknown", policy.Unknown, []string{"redispatch app?"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			pol := statusPolicy{status: tt.status}
			h, err := sticky.New(p.set, pol, sticky.WithObserver(rec), sticky.WithPicker(&balancer.RoundRobin{}))
			require.NoError(t, err)
			get(t, newClient(t, false), front(t, h)+"/whoami")
			got := rec.take()
			if len(got) == 1 && strings.HasPrefix(tt.want[0], "redispatch") {
				assert.Regexp(t, `^redispatch app[12]$`, got[0])
				return
			}
			assert.Equal(t, tt.want, got)
		})
	}
}

// statusPolicy is a policy that finds every request's binding with status.
type statusPolicy struct{ status policy.Status }

func (p statusPolicy) Lookup(*http.Request, *backend.Snapshot) policy.Binding {
	return policy.Binding{Status: p.status}
}

func (statusPolicy) Save(*http.Request, *http.Response, *backend.Backend, policy.Binding) {}
