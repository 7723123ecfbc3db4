package sticky_test

import (
	"net/http"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/balancer"
	"github.com/affinitylb/affinity/sticky"
)

// recorder is an observer that keeps events as short strings.
type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) Observe(e backend.Event) {
	s := e.Kind.String()
	if e.Prev != nil {
		s += " " + e.Prev.ID() + "->"
	} else if e.Backend != nil {
		s += " "
	}
	if e.Backend != nil {
		s += e.Backend.ID()
	}
	if e.Reason != "" {
		s += " (" + e.Reason + ")"
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
