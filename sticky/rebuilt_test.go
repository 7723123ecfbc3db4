package sticky_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/policy"
	"github.com/affinitylb/affinity/sticky"
)

// rebuilding is a policy of the user's that wraps another and hands on
// copies of its bindings rebuilt field by field, as a wrapper that logs
// or edits them may.
type rebuilding struct{ p policy.Policy }

func rebuilt(b policy.Binding) policy.Binding {
	return policy.Binding{ID: b.ID, Status: b.Status, Refresh: b.Refresh, KeyHash: b.KeyHash}
}

func (w rebuilding) Lookup(r *http.Request, s *backend.Snapshot) policy.Binding {
	return rebuilt(w.p.Lookup(r, s))
}

func (w rebuilding) Save(r *http.Request, resp *http.Response, b *backend.Backend, prev policy.Binding) {
	w.p.Save(r, resp, b, rebuilt(prev))
}

// TestRebuiltChainBindingKeepsTheCookie checks a Chain of the balancer's
// cookie and a header key behind a policy that rebuilds its bindings: the
// client is bound by the first response, and the responses to its
// requests carrying the cookie set no cookie.
func TestRebuiltChainBindingKeepsTheCookie(t *testing.T) {
	p := newPool(t, 3)
	header, err := policy.HeaderKey("X-Client")
	require.NoError(t, err)
	chain, err := policy.NewChain(newCookie(t), header)
	require.NoError(t, err)
	h, err := sticky.New(p.set, rebuilding{chain})
	require.NoError(t, err)
	base := front(t, h)

	for _, tc := range []struct{ name, client string }{
		{"placed by the picker", ""},
		{"placed by the key", "c-42"},
	} {
		client := tc.client
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(t, true)
			send := func() whoami {
				req, err := http.NewRequest(http.MethodGet, base+"/whoami", nil)
				require.NoError(t, err)
				if client != "" {
					req.Header.Set("X-Client", client)
				}
				resp, err := c.Do(req)
				require.NoError(t, err)
				require.NoError(t, resp.Body.Close())
				return whoami{status: resp.StatusCode, server: resp.Header.Get("X-Served-By"), header: resp.Header}
			}
			first := send()
			require.Equal(t, http.StatusOK, first.status)
			require.NotNil(t, balancerCookie(first.header, "affinity"), "the first response binds the client")
			for i := range 5 {
				w := send()
				assert.Equal(t, first.server, w.server, "request %d: client moved", i)
				assert.Nil(t, balancerCookie(w.header, "affinity"), "request %d: cookie set again", i)
			}
		})
	}
}
