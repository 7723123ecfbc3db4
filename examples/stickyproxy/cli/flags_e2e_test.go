package cli

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/internal/demoapp"
)

// End-to-end tests of the flags that decide how long a binding lasts
// (-cookie-sliding, -cookie-max-life), what becomes of a client whose
// backend is down (-strict), and whether keys spill over (-load-factor).
//
// Cookies carry their times in whole seconds, and the proxy reads the same
// clock as the test, so the tests wait for the second a check needs rather
// than for a duration. A request the proxy may have seen in a later second
// than meant, on a loaded machine, voids the try, which starts over.

// unixNow returns the time in Unix seconds.
func unixNow() int64 { return time.Now().Unix() }

// sleepUntil sleeps until the clock reads unix seconds or later.
func sleepUntil(unix int64) { time.Sleep(time.Until(time.Unix(unix, 0))) }

// inTime runs try until it reports that each of its requests reached the
// proxy in the second it was meant for, three times at most. try returns
// false as soon as one may not have, before checking its answer.
func inTime(t *testing.T, try func() bool) {
	t.Helper()
	for range 3 {
		if try() {
			return
		}
		t.Log("a request may have reached the proxy a second late; starting over")
	}
	t.Fatal("in three tries, a request reached the proxy a second late each time")
}

// affinityCookie returns the affinity cookie r sets, failing the test if
// it sets none.
func affinityCookie(t *testing.T, r response) *http.Cookie {
	t.Helper()
	c := findCookie(r.cookies, "affinity")
	require.NotNil(t, c, "no affinity cookie set")
	return c
}

func TestEndToEndCookieSliding(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		sliding bool
	}{
		{"default: sliding", nil, true},
		{"-cookie-sliding=false: fixed", []string{"-cookie-sliding=false"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := startProxy(t, append([]string{"-key", testKey, "-backends", demoBackends(t, "one", "two"), "-cookie-ttl", "4s"}, tt.args...)...)
			c := newPlainClient(t)
			inTime(t, func() bool {
				first := do(t, c, get(t, p.url+"/whoami"))
				require.Equal(t, http.StatusOK, first.status)
				bound := affinityCookie(t, first)
				require.Equal(t, 4, bound.MaxAge, "Max-Age is -cookie-ttl")
				exp := bound.Expires.Unix()

				// Half its lifetime or more left: no new cookie.
				r := do(t, c, get(t, p.url+"/whoami", bound))
				if unixNow() > exp-2 {
					return false
				}
				assert.Equal(t, first.server, r.server)
				assert.Nil(t, findCookie(r.cookies, "affinity"), "a cookie with half its lifetime left was renewed")

				// Less than half left: its last second.
				sleepUntil(exp - 1)
				r = do(t, c, get(t, p.url+"/whoami", bound))
				if unixNow() >= exp {
					return false
				}
				assert.Equal(t, first.server, r.server, "moved before the cookie expired")
				renewed := findCookie(r.cookies, "affinity")
				if !tt.sliding {
					assert.Nil(t, renewed, "renewed with -cookie-sliding=false")
					// However active the client, the binding ends a TTL
					// after it was made.
					sleepUntil(exp)
					r = do(t, c, get(t, p.url+"/whoami", bound))
					assert.Equal(t, http.StatusOK, r.status)
					assert.NotNil(t, findCookie(r.cookies, "affinity"), "an expired cookie was honoured: no new binding")
					return true
				}
				require.NotNil(t, renewed, "not renewed with less than half its lifetime left")
				assert.Equal(t, 4, renewed.MaxAge, "renewed for a full -cookie-ttl")
				assert.Equal(t, exp+3, renewed.Expires.Unix(), "renewed for a full -cookie-ttl from the request")

				// Past the first cookie's expiry, the renewed one keeps the
				// client bound, needing no renewal yet.
				sleepUntil(exp)
				r = do(t, c, get(t, p.url+"/whoami", renewed))
				if unixNow() > exp+1 {
					return false
				}
				assert.Equal(t, first.server, r.server, "the renewed cookie was not honoured")
				assert.Nil(t, findCookie(r.cookies, "affinity"), "renewed again with half its lifetime left")
				return true
			})
		})
	}
}

func TestEndToEndCookieMaxLife(t *testing.T) {
	// Round robin over two backends places each new binding on the other
	// backend than the last, so a client placed anew visibly moves.
	args := []string{"-key", testKey, "-backends", demoBackends(t, "one", "two"), "-picker", "roundrobin"}

	t.Run("session cookie", func(t *testing.T) {
		t.Parallel()
		p := startProxy(t, append(args, "-cookie-ttl", "0", "-cookie-max-life", "2s")...)
		c := newPlainClient(t)
		inTime(t, func() bool {
			before := unixNow()
			first := do(t, c, get(t, p.url+"/whoami"))
			after := unixNow() // the binding was made from before to after
			require.Equal(t, http.StatusOK, first.status)
			bound := affinityCookie(t, first)
			assert.Zero(t, bound.MaxAge, "a session cookie has no Max-Age")
			assert.True(t, bound.Expires.IsZero(), "a session cookie has no Expires")

			r := do(t, c, get(t, p.url+"/whoami", bound))
			if unixNow() >= before+2 {
				return false
			}
			assert.Equal(t, first.server, r.server, "moved before -cookie-max-life")
			assert.Nil(t, findCookie(r.cookies, "affinity"))

			sleepUntil(after + 2)
			r = do(t, c, get(t, p.url+"/whoami", bound))
			assert.Equal(t, http.StatusOK, r.status)
			assert.NotEqual(t, first.server, r.server, "not placed anew after -cookie-max-life")
			assert.NotNil(t, findCookie(r.cookies, "affinity"), "placed anew without a new binding")
			return true
		})
	})

	t.Run("cookie kept alive by sliding expiry", func(t *testing.T) {
		t.Parallel()
		p := startProxy(t, append(args, "-cookie-ttl", "4s", "-cookie-max-life", "5s")...)
		c := newPlainClient(t)
		inTime(t, func() bool {
			first := do(t, c, get(t, p.url+"/whoami"))
			require.Equal(t, http.StatusOK, first.status)
			bound := affinityCookie(t, first)
			require.Equal(t, 4, bound.MaxAge, "Max-Age is -cookie-ttl, not -cookie-max-life")
			exp := bound.Expires.Unix()
			born := exp - 4

			// Its last second: renewed, but only for what is left of
			// -cookie-max-life, so that the browser drops it then too.
			sleepUntil(exp - 1)
			r := do(t, c, get(t, p.url+"/whoami", bound))
			if unixNow() >= exp {
				return false
			}
			assert.Equal(t, first.server, r.server)
			renewed := affinityCookie(t, r)
			assert.Equal(t, 2, renewed.MaxAge, "Max-Age is what is left of -cookie-max-life")
			require.Equal(t, born+5, renewed.Expires.Unix())

			// Five seconds after the binding was made, the binding is
			// over, even for a client that still sends the cookie.
			sleepUntil(born + 5)
			r = do(t, c, get(t, p.url+"/whoami", renewed))
			if unixNow() >= born+6 {
				return false
			}
			assert.Equal(t, http.StatusOK, r.status)
			assert.NotEqual(t, first.server, r.server, "not placed anew after -cookie-max-life")
			again := findCookie(r.cookies, "affinity")
			if assert.NotNil(t, again, "placed anew without a new binding") {
				assert.Equal(t, 4, again.MaxAge)
			}
			return true
		})
	})
}

// TestEndToEndStrictRemovedBackend checks that a client whose backend left
// the set is placed anew once, -strict or not: the backend will not come
// back.
func TestEndToEndStrictRemovedBackend(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"not strict", nil},
		{"-strict", []string{"-strict"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := startProxy(t, append([]string{"-key", testKey, "-backends", demoBackends(t, "one", "two"), "-admin", "127.0.0.1:0"}, tt.args...)...)
			c := newPlainClient(t)
			first := do(t, c, get(t, p.url+"/whoami"))
			require.Equal(t, http.StatusOK, first.status)
			bound := affinityCookie(t, first)
			status, body := callAdmin(t, p, http.MethodDelete, "/backends/"+first.server, "")
			require.Equal(t, http.StatusNoContent, status, body)

			r := do(t, c, get(t, p.url+"/whoami", bound))
			require.Equal(t, http.StatusOK, r.status, "a client of a removed backend was not placed anew")
			assert.NotEqual(t, first.server, r.server)
			rebound := affinityCookie(t, r)
			for i := range 3 {
				r := do(t, c, get(t, p.url+"/whoami", rebound))
				assert.Equal(t, http.StatusOK, r.status, "request %d", i)
				assert.NotEqual(t, first.server, r.server, "request %d", i)
				assert.Nil(t, findCookie(r.cookies, "affinity"), "request %d: bound again", i)
			}
		})
	}
}

// TestEndToEndStrictUnhealthyBackend checks that a client whose backend
// fails its health checks is moved to another, or with -strict is told to
// come back later and stays bound until its backend is healthy again.
func TestEndToEndStrictUnhealthyBackend(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		strict bool
	}{
		{"not strict: moved", nil, false},
		{"-strict: 503 with Retry-After, bound still", []string{"-strict"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var down atomic.Bool
			flakyApp := demoapp.New("flaky")
			flaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/health" && down.Load() {
					http.Error(w, "down", http.StatusServiceUnavailable)
					return
				}
				flakyApp.ServeHTTP(w, r)
			}))
			t.Cleanup(flaky.Close)
			p := startProxy(t, append([]string{
				"-key", testKey,
				"-backends", "flaky=" + flaky.URL + "," + demoBackends(t, "steady"),
				"-health-path", "/health",
				"-health-interval", "50ms",
				"-admin", "127.0.0.1:0",
			}, tt.args...)...)

			// New clients until one lands on flaky: least connections
			// rotates through the tie.
			c := newPlainClient(t)
			var bound *http.Cookie
			for range 6 {
				if r := do(t, c, get(t, p.url+"/whoami")); r.server == "flaky" {
					bound = affinityCookie(t, r)
					break
				}
			}
			require.NotNil(t, bound, "no new client placed on flaky")

			down.Store(true)
			require.Eventually(t, func() bool { return stateOf(t, p, "flaky") == "unhealthy" },
				5*time.Second, 20*time.Millisecond, "flaky never marked unhealthy")
			r := do(t, c, get(t, p.url+"/whoami", bound))
			if !tt.strict {
				assert.Equal(t, http.StatusOK, r.status)
				assert.Equal(t, "steady", r.server)
				assert.NotNil(t, findCookie(r.cookies, "affinity"), "moved without a new binding")
				return
			}
			assert.Equal(t, http.StatusServiceUnavailable, r.status)
			assert.NotEmpty(t, r.header.Get("Retry-After"), "503 without Retry-After")
			assert.Nil(t, findCookie(r.cookies, "affinity"), "the binding was changed")

			down.Store(false)
			require.Eventually(t, func() bool { return stateOf(t, p, "flaky") == "healthy" },
				5*time.Second, 20*time.Millisecond, "flaky never marked healthy again")
			r = do(t, c, get(t, p.url+"/whoami", bound))
			assert.Equal(t, http.StatusOK, r.status)
			assert.Equal(t, "flaky", r.server, "the binding did not outlast the outage")
		})
	}
}

// holdingBackends are backends that hold every request until released.
type holdingBackends struct {
	list    string      // the value of -backends that reaches them
	arrived chan string // the name of the backend each request reaches, as it arrives
	release func()      // lets every request held, and every later one, through
}

// startHoldingBackends starts n holding backends, b1 to bn, that answer
// 204 with X-Served-By once released. They are released when the test
// ends, if not before.
func startHoldingBackends(t *testing.T, n int) *holdingBackends {
	t.Helper()
	released := make(chan struct{})
	var once sync.Once
	hb := &holdingBackends{
		arrived: make(chan string, 64),
		release: func() { once.Do(func() { close(released) }) },
	}
	var urls []string
	for i := range n {
		name := fmt.Sprintf("b%d", i+1)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case hb.arrived <- name:
			default: // more requests than the test counts
			}
			select {
			case <-released:
			case <-r.Context().Done():
			}
			w.Header().Set("X-Served-By", name)
			w.WriteHeader(http.StatusNoContent)
		}))
		t.Cleanup(srv.Close)
		urls = append(urls, name+"="+srv.URL)
	}
	hb.list = strings.Join(urls, ",")
	t.Cleanup(hb.release) // before the servers close: Close waits for their requests
	return hb
}

// TestEndToEndLoadFactor sends requests for one key, each while those
// before it are held in flight by their backend, and checks where they go.
func TestEndToEndLoadFactor(t *testing.T) {
	const n = 8
	tests := []struct {
		name   string
		args   []string
		spill  bool
		logged string // in the startup log line
	}{
		{"absent: keys never spill", nil, false, "load-factor=0"},
		{"-load-factor 1.25: a busy key spills over", []string{"-load-factor", "1.25"}, true, "load-factor=1.25"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hb := startHoldingBackends(t, 3)
			p := startProxy(t, append([]string{"-policy", "header", "-header", "X-Key", "-backends", hb.list}, tt.args...)...)
			t.Cleanup(hb.release) // before the proxy's shutdown waits for them
			assert.Contains(t, p.stderr.String(), tt.logged)

			tr := &http.Transport{} // a connection for each request in flight
			t.Cleanup(tr.CloseIdleConnections)
			c := &http.Client{Transport: tr, Timeout: 30 * time.Second}
			errs := make(chan error, n)
			servers := map[string]int{}
			for i := range n {
				req := get(t, p.url+"/")
				req.Header.Set("X-Key", "tenant-1")
				go func() {
					resp, err := c.Do(req)
					if err == nil {
						resp.Body.Close()
						if resp.StatusCode != http.StatusNoContent {
							err = fmt.Errorf("status %d", resp.StatusCode)
						}
					}
					errs <- err
				}()
				// The next request is placed with this one in flight.
				select {
				case name := <-hb.arrived:
					servers[name]++
				case <-time.After(10 * time.Second): // a guard, not a measure
					t.Fatalf("request %d of %d reached no backend within 10s", i+1, n)
				}
			}
			hb.release()
			for range n {
				assert.NoError(t, <-errs)
			}
			if tt.spill {
				assert.Greater(t, len(servers), 1, "%d requests for one key in flight, none spilled over: %v", n, servers)
			} else {
				assert.Len(t, servers, 1, "%d requests for one key in flight spilled over without -load-factor: %v", n, servers)
			}
		})
	}
}
