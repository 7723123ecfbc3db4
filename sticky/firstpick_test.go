package sticky_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/sticky"
)

func TestConcurrentFirstRequestsOnOneHTTP2ConnectionShareABinding(t *testing.T) {
	const n = 8
	// Each backend holds its request until all n have arrived, so the n
	// are in flight together, as a browser's first requests are.
	var arrived atomic.Int64
	all := make(chan struct{})
	var cfgs []backend.Config
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("app%d", i)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if arrived.Add(1) == n {
				close(all)
			}
			select {
			case <-all:
			case <-time.After(10 * time.Second): // a guard against a hang
			}
			w.Header().Set("X-Served-By", name)
		}))
		t.Cleanup(srv.Close)
		cfgs = append(cfgs, backend.Config{ID: name, URL: srv.URL})
	}
	set, err := backend.NewSet(cfgs)
	require.NoError(t, err)
	h, err := sticky.New(set, newCookie(t))
	require.NoError(t, err)
	lb := httptest.NewUnstartedServer(h)
	lb.EnableHTTP2 = true
	lb.StartTLS()
	t.Cleanup(lb.Close)
	client := lb.Client() // one HTTP/2 connection, multiplexed

	var wg sync.WaitGroup
	served := make([]string, n)
	for i := range n {
		wg.Go(func() {
			resp, err := client.Get(lb.URL + "/")
			if !assert.NoError(t, err) {
				return
			}
			defer resp.Body.Close()
			assert.Equal(t, 2, resp.ProtoMajor)
			ck := balancerCookie(resp.Header, "affinity")
			if assert.NotNil(t, ck) {
				assert.True(t, ck.Secure, "cookie over TLS not Secure")
			}
			served[i] = resp.Header.Get("X-Served-By")
		})
	}
	wg.Wait()
	for i := range n {
		assert.Equal(t, served[0], served[i], "request %d bound elsewhere", i)
	}
}
