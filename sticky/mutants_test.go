package sticky_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/cookie"
	"github.com/affinitylb/affinity/policy"
	"github.com/affinitylb/affinity/sticky"
)

// refusedSet returns a set of n backends, dead1 to deadn, on 127.0.0.1
// ports that refuse connections, without passive ejection: every request
// meets them. Each port is held by a socket that is bound and does not
// listen, so that no server of another test can take it meanwhile.
func refusedSet(t *testing.T, n int) *backend.Set {
	t.Helper()
	var cfgs []backend.Config
	for i := 1; i <= n; i++ {
		fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
		require.NoError(t, err)
		t.Cleanup(func() { syscall.Close(fd) })
		require.NoError(t, syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}))
		sa, err := syscall.Getsockname(fd)
		require.NoError(t, err)
		port := sa.(*syscall.SockaddrInet4).Port
		cfgs = append(cfgs, backend.Config{ID: fmt.Sprintf("dead%d", i), URL: fmt.Sprintf("http://127.0.0.1:%d", port)})
	}
	set, err := backend.NewSet(cfgs, backend.WithEjection(backend.Ejection{}))
	require.NoError(t, err)
	return set
}

// countingTransport sends requests with rt, counting them and running
// each first, if set.
type countingTransport struct {
	rt   http.RoundTripper
	sent atomic.Int32
	each func()
}

func (c *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	c.sent.Add(1)
	if c.each != nil {
		c.each()
	}
	return c.rt.RoundTrip(req)
}

// TestRetriesTryExactlyNOthers checks that a request no backend accepts is
// sent to its first backend and then to exactly as many others as the
// handler's retries, when there are more backends than that.
func TestRetriesTryExactlyNOthers(t *testing.T) {
	for _, retries := range []int{0, 1, 2, 3} {
		t.Run(fmt.Sprint(retries), func(t *testing.T) {
			set := refusedSet(t, 6)
			ct := &countingTransport{rt: sticky.DefaultTransport()}
			opts := []sticky.Option{sticky.WithTransport(ct), sticky.WithRetries(retries, time.Hour)}
			h, err := sticky.New(set, newCookie(t), opts...)
			require.NoError(t, err)
			w := get(t, newClient(t, false), front(t, h)+"/")
			assert.Equal(t, http.StatusBadGateway, w.status)
			assert.EqualValues(t, 1+retries, ct.sent.Load(), "backends tried with %d retries", retries)
		})
	}
}

// TestRetriesStopAtTheirTimeBound checks, on a clock of the test's that
// each attempt moves on by 4s, that a request is retried only while the
// handler's retry time, counted from its first failure, has not passed.
func TestRetriesStopAtTheirTimeBound(t *testing.T) {
	for _, tc := range []struct {
		within time.Duration
		want   int32 // sends: the first fails at 4s, the bound's start, the next ones at 8s, 12s...
	}{
		{time.Second, 2},      // retried at 4s, not after 8s
		{4 * time.Second, 3},  // retried at 4s and at 8s, the bound itself, not after 12s
		{6 * time.Second, 3},  // retried at 4s and 8s, not after 12s
		{10 * time.Second, 4}, // the default: retried at 4s, 8s and 12s, not after 16s
		{time.Hour, 6},        // the retries' count bounds it: 1+5
	} {
		t.Run(tc.within.String(), func(t *testing.T) {
			set := refusedSet(t, 8)
			clk := &clock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
			ct := &countingTransport{rt: sticky.DefaultTransport(), each: func() { clk.Advance(4 * time.Second) }}
			h, err := sticky.New(set, newCookie(t), sticky.WithTransport(ct), sticky.WithRetries(5, tc.within))
			require.NoError(t, err)
			sticky.SetNow(h, clk.Now)
			w := get(t, newClient(t, false), front(t, h)+"/")
			assert.Equal(t, http.StatusBadGateway, w.status)
			assert.Equal(t, tc.want, ct.sent.Load(), "backends tried within %v", tc.within)
		})
	}
}

// TestReplayOnlyIdempotentRequests checks that a request without a body
// whose connection was reset after it reached its backend is sent to one
// other backend if repeating it is harmless (its method is idempotent),
// and to no other if not: an Idempotency-Key is no reason, as the other
// backend keeps no record of the key.
func TestReplayOnlyIdempotentRequests(t *testing.T) {
	for _, tc := range []struct {
		method string
		header string // an idempotency key header, if any
		want   int32  // executions at all backends
	}{
		{http.MethodGet, "", 2},
		{http.MethodHead, "", 2},
		{http.MethodOptions, "", 2},
		{http.MethodTrace, "", 2},
		{http.MethodPut, "", 2},
		{http.MethodDelete, "", 2},
		{http.MethodPost, "", 1},
		{http.MethodPatch, "", 1},
		{"LOCK", "", 1},
		{http.MethodPost, "Idempotency-Key", 1},
		{http.MethodPost, "X-Idempotency-Key", 1},
		{http.MethodPatch, "Idempotency-Key", 1},
	} {
		t.Run(strings.TrimSpace(tc.method+" "+tc.header), func(t *testing.T) {
			fp := newFaultPool(t, "reset", &barrier{}, backend.WithEjection(backend.Ejection{}))
			h, err := sticky.New(fp.set, newCookie(t))
			require.NoError(t, err)
			req, err := http.NewRequest(tc.method, front(t, h)+"/fault", http.NoBody)
			require.NoError(t, err)
			if tc.header != "" {
				req.Header.Set(tc.header, "k1")
			}
			resp, err := newClient(t, false).Do(req)
			require.NoError(t, err)
			require.NoError(t, resp.Body.Close())
			assert.Equal(t, http.StatusBadGateway, resp.StatusCode)
			assert.Equal(t, tc.want, fp.executed.Load(), "executions of one %s", tc.method)
		})
	}
}

// removing is a cookie policy that, for a request with an X-Remove
// header, removes the backend the request is bound to from the set once
// it has found the binding: after the handler loaded its snapshot, in
// which the backend is still a member.
type removing struct {
	*cookie.Policy
	set *backend.Set
}

func (p removing) Lookup(r *http.Request, s *backend.Snapshot) policy.Binding {
	b := p.Policy.Lookup(r, s)
	if _, ok := r.Header["X-Remove"]; ok && b.Status == policy.Valid {
		if _, err := p.set.Remove(b.ID); err != nil {
			panic(err)
		}
	}
	return b
}

// TestRemovedBackendsClientIsBoundAgain checks that a client whose backend
// left the set, before the request or while the handler was looking up its
// binding, is placed anew and bound again, whether bindings are strict or
// not: its backend will not come back.
func TestRemovedBackendsClientIsBoundAgain(t *testing.T) {
	for _, strict := range []bool{false, true} {
		for _, during := range []bool{false, true} {
			t.Run(fmt.Sprintf("strict %v, during lookup %v", strict, during), func(t *testing.T) {
				p := newPool(t, 3)
				ck := newCookie(t)
				h, err := sticky.New(p.set, removing{Policy: ck, set: p.set}, sticky.WithStrictBinding(strict))
				require.NoError(t, err)
				base := front(t, h)
				c := newClient(t, true)
				first := get(t, c, base+"/whoami")
				require.Equal(t, http.StatusOK, first.status)
				require.NotNil(t, balancerCookie(first.header, ck.Name()), "not bound")

				req, err := http.NewRequest(http.MethodGet, base+"/whoami", nil)
				require.NoError(t, err)
				if during {
					req.Header.Set("X-Remove", "1")
				} else {
					_, err := p.set.Remove(first.server)
					require.NoError(t, err)
				}
				resp, err := c.Do(req)
				require.NoError(t, err)
				require.NoError(t, resp.Body.Close())
				require.Equal(t, http.StatusOK, resp.StatusCode, "client of a removed backend locked out")
				require.Nil(t, p.set.Snapshot().Lookup(first.server), "not removed")
				next := resp.Header.Get("X-Served-By")
				assert.NotEqual(t, first.server, next)
				bound := balancerCookie(resp.Header, ck.Name())
				require.NotNil(t, bound, "client of a removed backend not bound again")

				again := get(t, c, base+"/whoami")
				assert.Equal(t, http.StatusOK, again.status)
				assert.Equal(t, next, again.server, "the new binding does not hold")
			})
		}
	}
}
