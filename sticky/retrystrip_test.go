package sticky_test

import (
	"net/http"
	"net/http/httputil"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/balancer"
	"github.com/affinitylb/affinity/sticky"
)

// TestRetryKeepsTheRequestClean checks that a retried request reaches its
// second backend as clean as a first attempt: without the balancer's
// cookie and without the forwarding headers an untrusted client sent,
// with a Rewrite of the user's and without one.
func TestRetryKeepsTheRequestClean(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []sticky.Option
	}{
		{"no Rewrite", nil},
		{"with a Rewrite", []sticky.Option{sticky.WithRewrite(func(pr *httputil.ProxyRequest) {
			pr.Out.Header.Set("X-Tenant", "blue")
		})}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set, live := deadAndLive(t)
			h, err := sticky.New(set, newCookie(t), append(tc.opts, sticky.WithPicker(balancer.PickerFunc(deadFirst)))...)
			require.NoError(t, err)
			req, err := http.NewRequest(http.MethodGet, front(t, h)+"/", nil)
			require.NoError(t, err)
			req.AddCookie(&http.Cookie{Name: "affinity", Value: "not-a-binding"})
			req.AddCookie(&http.Cookie{Name: "app", Value: "kept"})
			req.Header.Set("X-Real-IP", "10.9.9.9")
			req.Header.Set("X-Forwarded-For", "10.9.9.9")
			resp, err := newClient(t, false).Do(req)
			require.NoError(t, err)
			require.NoError(t, resp.Body.Close())
			require.Equal(t, http.StatusOK, resp.StatusCode)
			require.Equal(t, 1, live.count())
			got := live.headers[0]
			assert.Equal(t, []string{"app=kept"}, got["Cookie"], "the balancer's cookie reached the retry's backend")
			assert.Equal(t, []string{"127.0.0.1"}, got["X-Forwarded-For"])
			assert.Empty(t, got["X-Real-Ip"], "a client's spoofed header reached the retry's backend")
		})
	}
}
