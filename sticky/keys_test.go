package sticky_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/balancer"
	"github.com/affinitylb/affinity/internal/accounting"
	"github.com/affinitylb/affinity/policy"
	"github.com/affinitylb/affinity/sticky"
)

// keyedClient sends requests carrying one affinity key.
type keyedClient struct {
	c   *http.Client
	req func() *http.Request
}

// sameKeyInFlight sends n requests with c's key at once, held together at
// bar, and returns the backends that served them.
func sameKeyInFlight(t *testing.T, c keyedClient, bar *barrier, n int) map[string]int {
	t.Helper()
	bar.reset(n)
	var mu sync.Mutex
	served := map[string]int{}
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			resp, err := c.c.Do(c.req())
			if !assert.NoError(t, err) {
				return
			}
			defer resp.Body.Close()
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			mu.Lock()
			defer mu.Unlock()
			served[resp.Header.Get("X-Served-By")]++
		})
	}
	wg.Wait()
	return served
}

// TestKeysDoNotSpillUnderConcurrency sends, for each of 50 keys in turn, 8
// requests with the key at once, held in flight together by the backends:
// by default all 8 go to the key's backend, whatever its load; with a load
// factor, the key spills over to others.
func TestKeysDoNotSpillUnderConcurrency(t *testing.T) {
	const keys, inFlight = 50, 8
	kinds := []struct {
		name   string
		policy func() (*policy.Key, error)
		client func(t *testing.T, base string, k int) keyedClient
	}{
		{"header", func() (*policy.Key, error) { return policy.HeaderKey("X-Api-Key") }, func(t *testing.T, base string, k int) keyedClient {
			return keyedClient{c: http.DefaultClient, req: func() *http.Request {
				req, err := http.NewRequest(http.MethodGet, base+"/", nil)
				require.NoError(t, err)
				req.Header.Set("X-Api-Key", fmt.Sprintf("key-%d", k))
				return req
			}}
		}},
		{"query", func() (*policy.Key, error) { return policy.QueryKey("key") }, func(t *testing.T, base string, k int) keyedClient {
			return keyedClient{c: http.DefaultClient, req: func() *http.Request {
				req, err := http.NewRequest(http.MethodGet, base+"/?key="+url.QueryEscape(fmt.Sprintf("key-%d", k)), nil)
				require.NoError(t, err)
				return req
			}}
		}},
		{"client ip", func() (*policy.Key, error) { return policy.ClientIPKey(nil) }, func(t *testing.T, base string, k int) keyedClient {
			// Each key is a client address of its own in 127.0.0.0/8.
			local := &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(10+k))}
			d := &net.Dialer{LocalAddr: local}
			tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				return d.DialContext(ctx, network, addr)
			}}
			t.Cleanup(tr.CloseIdleConnections)
			return keyedClient{c: &http.Client{Transport: tr}, req: func() *http.Request {
				req, err := http.NewRequest(http.MethodGet, base+"/", nil)
				require.NoError(t, err)
				return req
			}}
		}},
	}
	for _, kind := range kinds {
		for _, factor := range []float64{0, 1.25} {
			t.Run(fmt.Sprintf("%s/load factor %v", kind.name, factor), func(t *testing.T) {
				bar := &barrier{}
				set := heldPool(t, bar)
				pol, err := kind.policy()
				require.NoError(t, err)
				var opts []sticky.Option
				if factor != 0 {
					hash, err := balancer.NewConsistentHash(balancer.WithLoadFactor(factor))
					require.NoError(t, err)
					opts = append(opts, sticky.WithKeyPicker(hash))
				}
				h, err := sticky.New(set, pol, opts...)
				require.NoError(t, err)
				base := front(t, h)

				spilled, backends := 0, map[string]bool{}
				for k := range keys {
					served := sameKeyInFlight(t, kind.client(t, base, k), bar, inFlight)
					for id := range served {
						backends[id] = true
					}
					if len(served) > 1 {
						spilled++
					}
					if factor == 0 {
						assert.Len(t, served, 1, "key %d, %d in flight: %v", k, inFlight, served)
					}
				}
				assert.Len(t, backends, 3, "keys reach every backend")
				if factor != 0 {
					// Of 8 requests in flight on 3 idle backends, a
					// backend may hold ceil(1.25 × 8 / 3) = 4.
					assert.Equal(t, keys, spilled, "keys that spilled over with load factor %v", factor)
				}
			})
		}
	}
}

// TestKeysStayHashedWithACustomPicker checks that the picker given with
// WithPicker places only requests without a key: a key keeps its backend.
func TestKeysStayHashedWithACustomPicker(t *testing.T) {
	p := newPool(t, 3)
	pol, err := policy.HeaderKey("X-Api-Key")
	require.NoError(t, err)
	h, err := sticky.New(p.set, pol, sticky.WithPicker(&balancer.RoundRobin{}))
	require.NoError(t, err)
	base := front(t, h)
	c := newClient(t, false)

	for k := range 10 {
		served := map[string]int{}
		for range 6 {
			req, err := http.NewRequest(http.MethodGet, base+"/whoami", nil)
			require.NoError(t, err)
			req.Header.Set("X-Api-Key", fmt.Sprintf("key-%d", k))
			resp, err := c.Do(req)
			require.NoError(t, err)
			require.NoError(t, resp.Body.Close())
			served[resp.Header.Get("X-Served-By")]++
		}
		assert.Len(t, served, 1, "key %d: %v", k, served)
	}

	unkeyed := map[string]int{}
	for range 6 {
		unkeyed[get(t, c, base+"/whoami").server]++
	}
	assert.Equal(t, map[string]int{"app1": 2, "app2": 2, "app3": 2}, unkeyed, "requests without a key go to the picker")
}

// TestDrainKeepsKeysThenMovesThem drains a backend under a header key: it
// keeps its keys and takes none of another's, even of one that fails,
// until it leaves the set; then its keys move, once, and nobody else's.
func TestDrainKeepsKeysThenMovesThem(t *testing.T) {
	const keys = 60
	p := newPool(t, 3, backend.WithDrainIdle(50*time.Millisecond))
	pol, err := policy.HeaderKey("X-Api-Key")
	require.NoError(t, err)
	h, err := sticky.New(p.set, pol)
	require.NoError(t, err)
	base := front(t, h)
	c := newClient(t, false)
	send := func(k int) string {
		req, err := http.NewRequest(http.MethodGet, base+"/whoami", nil)
		require.NoError(t, err)
		req.Header.Set("X-Api-Key", fmt.Sprintf("key-%d", k))
		resp, err := c.Do(req)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		require.Equal(t, http.StatusOK, resp.StatusCode)
		return resp.Header.Get("X-Served-By")
	}
	round := func() []string {
		served := make([]string, keys)
		for k := range served {
			served[k] = send(k)
		}
		return served
	}
	home := round()
	const drained, failed = "app2", "app3"
	require.Contains(t, home, drained)
	require.Contains(t, home, failed)

	// A request held in flight keeps the drain from ending, however slow
	// the rounds, until it is released.
	held := p.set.Snapshot().Lookup(drained)
	require.True(t, accounting.Acquire(held))
	done, err := p.set.Drain(drained, time.Hour)
	require.NoError(t, err)
	assert.Equal(t, home, round(), "keys moved when a backend began draining")

	require.NoError(t, p.set.SetState(failed, backend.Unhealthy))
	during := round()
	for k := range keys {
		switch home[k] {
		case failed:
			assert.NotEqual(t, failed, during[k], "key %d stayed on the failed backend", k)
			assert.NotEqual(t, drained, during[k], "key %d of the failed backend went to the draining one", k)
		default:
			assert.Equal(t, home[k], during[k], "key %d moved", k)
		}
	}
	require.NoError(t, p.set.SetState(failed, backend.Healthy))
	assert.Equal(t, home, round(), "keys did not come back to the recovered backend")

	// Idle, the draining backend leaves: its keys move once.
	accounting.Release(held)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("drain did not end")
	}
	after := [][]string{round(), round(), round()}
	for k := range keys {
		if home[k] == drained {
			assert.NotEqual(t, drained, after[0][k], "key %d", k)
		} else {
			assert.Equal(t, home[k], after[0][k], "key %d of a backend that stayed moved", k)
		}
		assert.Equal(t, after[0][k], after[1][k], "key %d moved twice", k)
		assert.Equal(t, after[0][k], after[2][k], "key %d moved twice", k)
	}
}
