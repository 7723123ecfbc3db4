package sticky_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/balancer"
	"github.com/affinitylb/affinity/sticky"
)

// TestPickerCannotPlaceOutsideRoutable checks that a user's picker that
// returns a backend a new client may not be placed on (a draining member,
// an unhealthy one, a backend of another set) does not get the client
// there, on a first attempt or on a retry: the client goes to a member that
// takes new clients, and is bound there.
func TestPickerCannotPlaceOutsideRoutable(t *testing.T) {
	otherCfg, other := recordingBackend(t, "other", http.StatusOK)
	otherSet, err := backend.NewSet([]backend.Config{otherCfg})
	require.NoError(t, err)
	foreign := otherSet.Snapshot().Lookup("other")

	for _, tc := range []struct {
		name  string
		state backend.State // of "bad", which the picker insists on in the first cases
		pick  func(info balancer.Info) *backend.Backend
	}{
		{"a draining member", backend.Draining, func(info balancer.Info) *backend.Backend { return info.Snapshot.Lookup("bad") }},
		{"an unhealthy member", backend.Unhealthy, func(info balancer.Info) *backend.Backend { return info.Snapshot.Lookup("bad") }},
		{"a backend of another set", backend.Draining, func(balancer.Info) *backend.Backend { return foreign }},
		{"a draining member, on the retry", backend.Draining, func(info balancer.Info) *backend.Backend {
			if len(info.Tried) == 0 {
				return info.Snapshot.Lookup("dead")
			}
			return info.Snapshot.Lookup("bad")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			badCfg, bad := recordingBackend(t, "bad", http.StatusOK)
			goodCfg, good := recordingBackend(t, "good", http.StatusOK)
			set, err := backend.NewSet([]backend.Config{{ID: "dead", URL: deadURL(t)}, badCfg, goodCfg},
				backend.WithEjection(backend.Ejection{}))
			require.NoError(t, err)
			if tc.state != backend.Healthy {
				require.NoError(t, set.SetState("bad", tc.state))
			}
			before := other.count()
			h, err := sticky.New(set, newCookie(t), sticky.WithPicker(balancer.PickerFunc(func(info balancer.Info) (*backend.Backend, error) {
				return tc.pick(info), nil
			})))
			require.NoError(t, err)
			c := newClient(t, true)
			base := front(t, h)

			w := get(t, c, base+"/")
			require.Equal(t, http.StatusOK, w.status)
			assert.Equal(t, "good", w.server, "a new client was placed where it may not be")
			assert.Zero(t, bad.count(), "the member that takes no new clients got one")
			assert.Equal(t, before, other.count(), "a backend of another set got the request")
			assert.Equal(t, 1, good.count())
			w = get(t, c, base+"/")
			assert.Equal(t, "good", w.server, "the client was not bound where it was placed")
		})
	}
}
