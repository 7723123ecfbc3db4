package sticky_test

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/sticky"
)

// TestGroupWithNoHealthyBackendFailsNoOneOver checks that a group whose
// every backend is unhealthy, in a set that has healthy backends in other
// groups, takes no new clients and keeps none of its own: the set fails
// open only when no member at all is healthy.
func TestGroupWithNoHealthyBackendFailsNoOneOver(t *testing.T) {
	var cfgs []backend.Config
	for _, m := range []struct{ id, group string }{{"blue1", "blue"}, {"green1", "green"}} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Served-By", m.id)
		}))
		t.Cleanup(srv.Close)
		cfgs = append(cfgs, backend.Config{ID: m.id, URL: srv.URL, Group: m.group})
	}
	set, err := backend.NewSet(cfgs, backend.WithEjection(backend.Ejection{}))
	require.NoError(t, err)
	pol := newCookie(t)
	h, err := sticky.New(set, pol)
	require.NoError(t, err)
	base := front(t, h)
	require.NoError(t, set.SetState("green1", backend.Draining))
	first := get(t, newClient(t, false), base+"/")
	require.Equal(t, "blue1", first.server)
	bound := balancerCookie(first.header, pol.Name())
	require.NotNil(t, bound)
	require.NoError(t, set.SetState("green1", backend.Healthy))
	require.NoError(t, set.SetState("blue1", backend.Unhealthy)) // down by health check

	servers := map[string]int{}
	for range 4 {
		servers["new: "+get(t, newClient(t, false), base+"/").server]++
		servers["bound: "+get(t, newClient(t, false), base+"/", bound).server]++
	}
	assert.Equal(t, map[string]int{"new: green1": 4, "bound: green1": 4}, servers)
}

// TestRetryLeavesAGroupWithNoHealthyBackend checks that a request retried
// after its backend failed it goes to a healthy backend of another group
// when every backend of its own group is unhealthy, not to an unhealthy
// one of its group.
func TestRetryLeavesAGroupWithNoHealthyBackend(t *testing.T) {
	var set *backend.Set
	var cfgs []backend.Config
	for _, m := range []struct{ id, group string }{{"blue1", "blue"}, {"blue2", "blue"}, {"green1", "green"}} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if m.id == "blue1" {
				// Its group goes down under the request, which is lost.
				require.NoError(t, set.SetState("blue1", backend.Unhealthy))
				require.NoError(t, set.SetState("blue2", backend.Unhealthy))
				panic(http.ErrAbortHandler)
			}
			w.Header().Set("X-Served-By", m.id)
		}))
		srv.Config.ErrorLog = log.New(io.Discard, "", 0)
		t.Cleanup(srv.Close)
		cfgs = append(cfgs, backend.Config{ID: m.id, URL: srv.URL, Group: m.group})
	}
	var err error
	set, err = backend.NewSet(cfgs, backend.WithEjection(backend.Ejection{}))
	require.NoError(t, err)
	pol := newCookie(t)
	h, err := sticky.New(set, pol)
	require.NoError(t, err)
	base := front(t, h)
	bound := &http.Cookie{Name: pol.Name(), Value: pol.Issue("blue1")}

	w := get(t, newClient(t, false), base+"/", bound)
	assert.Equal(t, http.StatusOK, w.status)
	assert.Equal(t, "green1", w.server)
}
