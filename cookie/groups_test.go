package cookie_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/cookie"
	"github.com/affinitylb/affinity/policy"
)

// TestCookieReplicasAgreeOnGroups checks that two replicas, each with its
// own Policy (same keys) and its own Set (same configs and group weights),
// read every binding the other writes alike, its group included, and
// still agree on the group of a backend that has left both sets.
func TestCookieReplicasAgreeOnGroups(t *testing.T) {
	keys := [][]byte{[]byte("replica key: 32 bytes of secret.")}
	var cfgs []backend.Config
	for i, g := range []string{"blue", "blue", "green", "green", "", "canary"} {
		cfgs = append(cfgs, backend.Config{ID: fmt.Sprintf("app%d", i), URL: fmt.Sprintf("http://127.0.0.1:%d", i+1), Group: g})
	}
	weights := map[string]int{"blue": 70, "green": 30, "canary": 0}
	type replica struct {
		set *backend.Set
		pol *cookie.Policy
	}
	var rs [2]replica
	for i := range rs {
		set, err := backend.NewSet(cfgs, backend.WithGroupWeights(weights))
		require.NoError(t, err)
		pol, err := cookie.New(keys)
		require.NoError(t, err)
		rs[i] = replica{set, pol}
	}
	issue := func(r replica, id string) string {
		req := httptest.NewRequest(http.MethodGet, "http://lb/", nil)
		snap := r.set.Snapshot()
		prev := r.pol.Lookup(req, snap)
		resp := &http.Response{Header: http.Header{}}
		r.pol.Save(req, resp, snap.Lookup(id), prev)
		ck, err := http.ParseSetCookie(resp.Header.Get("Set-Cookie"))
		require.NoError(t, err)
		return ck.Value
	}
	lookup := func(r replica, v string) policy.Binding {
		req := httptest.NewRequest(http.MethodGet, "http://lb/", nil)
		req.AddCookie(&http.Cookie{Name: r.pol.Name(), Value: v})
		return r.pol.Lookup(req, r.set.Snapshot())
	}

	values := map[string]string{}
	for _, c := range cfgs {
		for i, from := range rs {
			v := issue(from, c.ID)
			values[c.ID] = v
			want := policy.Binding{ID: c.ID, Status: policy.Valid, Group: c.Group}
			for j, to := range rs {
				assert.Equal(t, want, unseeded(lookup(to, v)), "%s issued by replica %d, read by %d", c.ID, i, j)
			}
		}
	}

	for _, r := range rs {
		_, err := r.set.Remove("app2") // green keeps app3
		require.NoError(t, err)
		_, err = r.set.Remove("app5") // canary keeps its weight alone
		require.NoError(t, err)
	}
	for _, c := range []struct{ id, group string }{{"app2", "green"}, {"app5", "canary"}} {
		for j, to := range rs {
			assert.Equal(t, policy.Binding{Status: policy.Unknown, Group: c.group}, unseeded(lookup(to, values[c.id])), "%s left, read by %d", c.id, j)
		}
	}
}
