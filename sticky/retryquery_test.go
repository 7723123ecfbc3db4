package sticky_test

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/balancer"
	"github.com/affinitylb/affinity/sticky"
)

// TestRetrySendsTheFirstAttemptsQuery checks that a retried request
// reaches its second backend with the query its first attempt was sent
// with: the one httputil.ReverseProxy cleans of what it cannot parse
// (semicolons, bad escapes), as the backend behind a single attempt sees
// it, so that a retry is no way to smuggle parameters past the proxy. It
// does, with and without a Rewrite of the user's.
func TestRetrySendsTheFirstAttemptsQuery(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []sticky.Option
	}{
		{"no Rewrite", nil},
		{"with a Rewrite", []sticky.Option{sticky.WithRewrite(func(*httputil.ProxyRequest) {})}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var queries []string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				queries = append(queries, r.URL.RawQuery)
				mu.Unlock()
				w.Header().Set("X-Served-By", "live")
			}))
			t.Cleanup(srv.Close)
			set, err := backend.NewSet([]backend.Config{{ID: "dead", URL: deadURL(t)}, {ID: "live", URL: srv.URL}},
				backend.WithEjection(backend.Ejection{}))
			require.NoError(t, err)
			direct, err := sticky.New(set, newCookie(t), append(tc.opts,
				sticky.WithPicker(balancer.PickerFunc(func(info balancer.Info) (*backend.Backend, error) {
					return info.Snapshot.Lookup("live"), nil
				})))...)
			require.NoError(t, err)
			retried, err := sticky.New(set, newCookie(t), append(tc.opts, sticky.WithPicker(balancer.PickerFunc(deadFirst)))...)
			require.NoError(t, err)

			const query = "/q?a=1;b=2&c=%zz&d=4"
			require.Equal(t, http.StatusOK, get(t, newClient(t, false), front(t, direct)+query).status)
			require.Equal(t, http.StatusOK, get(t, newClient(t, false), front(t, retried)+query).status)
			mu.Lock()
			defer mu.Unlock()
			require.Len(t, queries, 2)
			assert.Equal(t, "d=4", queries[0], "a single attempt's query")
			assert.Equal(t, queries[0], queries[1], "the retry's query is not the first attempt's")
		})
	}
}
