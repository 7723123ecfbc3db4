package sticky_test

import (
	"fmt"
	"net/http"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/cookie"
	"github.com/affinitylb/affinity/internal/demoapp"
	"github.com/affinitylb/affinity/policy"
	"github.com/affinitylb/affinity/sticky"
)

func TestAppCookieFollowsTheApplicationSession(t *testing.T) {
	p := newPool(t, 3)
	pol, err := cookie.NewApp(demoapp.SessionCookie, [][]byte{testKey})
	require.NoError(t, err)
	h, err := sticky.New(p.set, pol)
	require.NoError(t, err)
	base := front(t, h)

	t.Run("no app cookie, no binding", func(t *testing.T) {
		w := get(t, newClient(t, false), base+"/whoami") // /whoami starts no session
		assert.Equal(t, http.StatusOK, w.status)
		assert.Nil(t, balancerCookie(w.header, "affinity"))
	})

	c := newClient(t, true)
	first := get(t, c, base+"/")
	ck := balancerCookie(first.header, "affinity")
	require.NotNil(t, ck, "app started a session but no binding was made")
	assert.Zero(t, ck.MaxAge, "the app's session cookie is session-only; so must the binding be")
	assert.True(t, ck.Expires.IsZero())
	app := balancerCookie(first.header, demoapp.SessionCookie)
	require.NotNil(t, app, "the application's cookie did not pass through")

	login(t, c, base, "alice")
	for range 20 {
		w := get(t, c, base+"/whoami")
		assert.Equal(t, "alice", w.user, "session lost")
		assert.Equal(t, first.server, w.server, "client moved")
		assert.Nil(t, balancerCookie(w.header, "affinity"), "binding rewritten though the app left its cookie alone")
	}

	resp, err := c.PostForm(base+"/logout", nil)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	gone := balancerCookie(resp.Header, "affinity")
	require.NotNil(t, gone, "app deleted its cookie but the binding stayed")
	assert.Less(t, gone.MaxAge, 0, "binding not deleted")
}

func TestHeaderKeysStickAndSpread(t *testing.T) {
	const keys, requests = 400, 5
	p := newPool(t, 4)
	pol, err := policy.HeaderKey("X-Api-Key")
	require.NoError(t, err)
	h, err := sticky.New(p.set, pol) // the default picker hashes keys
	require.NoError(t, err)
	base := front(t, h)
	c := newClient(t, false)

	perServer := map[string]int{}
	for k := range keys {
		req, err := http.NewRequest(http.MethodGet, base+"/whoami", nil)
		require.NoError(t, err)
		req.Header.Set("X-Api-Key", fmt.Sprintf("key-%d", k))
		var first string
		for i := range requests {
			resp, err := c.Do(req)
			require.NoError(t, err)
			require.NoError(t, resp.Body.Close())
			require.Equal(t, http.StatusOK, resp.StatusCode)
			served := resp.Header.Get("X-Served-By")
			if i == 0 {
				first = served
				perServer[served]++
			}
			assert.Equal(t, first, served, "key %d moved", k)
		}
	}
	require.Len(t, perServer, 4, "%v", perServer)
	most := 0
	for _, n := range perServer {
		most = max(most, n)
	}
	mean := float64(keys) / 4
	assert.LessOrEqual(t, float64(most)/mean, 1.3, "keys per backend %v", perServer)
	t.Logf("keys per backend: %v (max/mean %.2f)", perServer, float64(most)/mean)
}

func TestClientIPKeyTrustsForwardedForOnlyFromTrustedProxies(t *testing.T) {
	for _, tc := range []struct {
		name       string
		trusted    []netip.Prefix
		wantSpread bool
	}{
		{"untrusted peer: X-Forwarded-For ignored", nil, false},
		{"trusted peer: X-Forwarded-For honoured", []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPool(t, 3)
			pol, err := policy.ClientIPKey(tc.trusted)
			require.NoError(t, err)
			h, err := sticky.New(p.set, pol)
			require.NoError(t, err)
			base := front(t, h)

			servers := map[string]bool{}
			for i := range 30 {
				req, err := http.NewRequest(http.MethodGet, base+"/whoami", nil)
				require.NoError(t, err)
				req.Header.Set("X-Forwarded-For", fmt.Sprintf("198.51.100.%d", i+1))
				resp, err := http.DefaultClient.Do(req)
				require.NoError(t, err)
				require.NoError(t, resp.Body.Close())
				servers[resp.Header.Get("X-Served-By")] = true
			}
			assert.Equal(t, tc.wantSpread, len(servers) > 1, "servers: %v", servers)
		})
	}
}
