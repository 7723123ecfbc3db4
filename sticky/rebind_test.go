package sticky_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/sticky"
)

// TestParallelRequestsOfAMovedClientAgreeOnItsNewBackend checks that the
// requests a client sends together (a page's, over several connections)
// while its backend is dead are re-routed to one backend between them: it
// is re-bound once, not to each backend that answered one of them, with
// the last Set-Cookie winning. The dead backend is still a member, its
// failures not counted, as before a health check or ejection notices.
func TestParallelRequestsOfAMovedClientAgreeOnItsNewBackend(t *testing.T) {
	const parallel = 4
	for _, tc := range []struct {
		name string
		gone func(t *testing.T, set *backend.Set) // what becomes of "old", the client's backend
	}{
		{"dead, not yet noticed", func(*testing.T, *backend.Set) {}},
		{"unhealthy", func(t *testing.T, set *backend.Set) { require.NoError(t, set.SetState("old", backend.Unhealthy)) }},
		{"removed", func(t *testing.T, set *backend.Set) {
			_, err := set.Remove("old")
			require.NoError(t, err)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var bar barrier
			cfgs := []backend.Config{{ID: "old", URL: deadURL(t)}}
			for i := 1; i <= 3; i++ {
				name := fmt.Sprintf("app%d", i)
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					bar.wait() // all the page's requests are in flight together
					w.Header().Set("X-Served-By", name)
				}))
				t.Cleanup(srv.Close)
				cfgs = append(cfgs, backend.Config{ID: name, URL: srv.URL})
			}
			set, err := backend.NewSet(cfgs, backend.WithEjection(backend.Ejection{}))
			require.NoError(t, err)
			pol := newCookie(t)
			h, err := sticky.New(set, pol)
			require.NoError(t, err)
			base := front(t, h)
			bound := &http.Cookie{Name: pol.Name(), Value: pol.Issue("old")}
			tc.gone(t, set)

			for round := range 3 {
				bar.reset(parallel)
				var mu sync.Mutex
				servers, bindings := map[string]bool{}, map[string]bool{}
				var wg sync.WaitGroup
				for range parallel {
					wg.Go(func() {
						w := get(t, newClient(t, false), base+"/", bound)
						mu.Lock()
						defer mu.Unlock()
						servers[w.server] = true
						if ck := balancerCookie(w.header, pol.Name()); ck != nil {
							bindings[ck.Value] = true
						}
					})
				}
				wg.Wait()
				assert.Len(t, servers, 1, "round %d: the client's requests went to %v", round, servers)
				assert.Len(t, bindings, 1, "round %d: the client was bound to several backends at once", round)
			}
		})
	}
}
