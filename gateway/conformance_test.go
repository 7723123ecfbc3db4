package gateway_test

// Go ports of the Gateway API's session persistence conformance checks
// (GEP-1619), through the sticky handler on real sockets.

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/balancer"
	"github.com/affinitylb/affinity/gateway"
	"github.com/affinitylb/affinity/policy"
	"github.com/affinitylb/affinity/sticky"
)

// stickRequests is how many requests of one client must reach one backend.
const stickRequests = 60

// startBackends starts n backends, app0 to app(n-1), in the default
// group (see startGroups), and returns their set.
func startBackends(t *testing.T, n int) *backend.Set {
	t.Helper()
	cfgs := make([]backend.Config, n)
	for i := range cfgs {
		cfgs[i].ID = fmt.Sprintf("app%d", i)
	}
	return startGroups(t, cfgs)
}

// startGroups starts a backend for each of cfgs, whose URLs it sets, each
// answering with its ID, or with an error if the request carries the
// session header or cookie of its route (sessionsOf), and returns their
// set, made with opts.
func startGroups(t *testing.T, cfgs []backend.Config, opts ...backend.Option) *backend.Set {
	t.Helper()
	for i := range cfgs {
		id := cfgs[i].ID
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// The handler strips its route's binding: a backend never
			// sees it.
			for _, name := range sessionsOf(r.URL.Path) {
				_, err := r.Cookie(name)
				if r.Header.Get(name) != "" || err == nil {
					http.Error(w, "binding forwarded: "+name, http.StatusInternalServerError)
					return
				}
			}
			_, _ = io.WriteString(w, id)
		}))
		t.Cleanup(srv.Close)
		cfgs[i].URL = srv.URL
	}
	set, err := backend.NewSet(cfgs, opts...)
	require.NoError(t, err)
	return set
}

// sessionsOf returns the session names the tests use on a route of path
// path, whose bindings a backend must never see.
func sessionsOf(path string) []string {
	switch {
	case strings.HasPrefix(path, "/a/"):
		return []string{"session-a"}
	case strings.HasPrefix(path, "/b/"):
		return []string{"session-b"}
	}
	return []string{"session-a", "Session-A", "Mcp-Affinity", "s"}
}

// route returns a sticky handler over set for sp, placing new clients
// round robin so that they spread over the backends.
func route(t *testing.T, set *backend.Set, sp gateway.SessionPersistence) http.Handler {
	t.Helper()
	p, err := gateway.NewPolicy(sp, testKeys)
	require.NoError(t, err)
	h, err := sticky.New(set, p, sticky.WithPicker(&balancer.RoundRobin{}))
	require.NoError(t, err)
	return h
}

// serve starts h on a real socket and returns its URL.
func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// get sends a GET to url with the header name set to value unless value
// is empty, and returns the backend that answered and the response.
func get(t *testing.T, c *http.Client, url, name, value string) (string, *http.Response) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	if value != "" {
		req.Header.Set(name, value)
	}
	resp, err := c.Do(req)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusOK, resp.StatusCode, "body %q", body)
	return string(body), resp
}

// client is an HTTP client of one route that keeps its binding: a cookie
// jar, or, for the Header type, the last value of the session header it
// was given, sent back on each request.
type client struct {
	t      *testing.T
	http   *http.Client
	url    string
	header string // the Header type's header; "" for cookies
	token  string
	echo   bool // whether the Header type's client echoes the header
}

// newClient returns a client of url for sp that keeps its binding.
func newClient(t *testing.T, url string, sp gateway.SessionPersistence) *client {
	t.Helper()
	if sp.Type == gateway.Header {
		return &client{t: t, http: &http.Client{}, url: url, header: sp.SessionName, echo: true}
	}
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &client{t: t, http: &http.Client{Jar: jar}, url: url}
}

// do sends a request to path and returns the backend that answered and
// the response.
func (c *client) do(path string) (string, *http.Response) {
	c.t.Helper()
	name := c.header
	if name == "" {
		name = "X-Unused"
	}
	id, resp := get(c.t, c.http, c.url+path, name, c.token)
	if v := resp.Header.Get(c.header); c.header != "" && c.echo && v != "" {
		c.token = v
	}
	return id, resp
}

func TestConformanceRequestsStick(t *testing.T) {
	permanent := &gateway.CookieConfig{LifetimeType: gateway.Permanent}
	tests := []struct {
		name string
		sp   gateway.SessionPersistence
	}{
		{"session cookie", gateway.SessionPersistence{SessionName: "session-a"}},
		{"permanent cookie", gateway.SessionPersistence{SessionName: "session-a", AbsoluteTimeout: time.Hour, CookieConfig: permanent}},
		{"header", gateway.SessionPersistence{SessionName: "Session-A", Type: gateway.Header}},
		{"header with timeouts", gateway.SessionPersistence{SessionName: "Session-A", Type: gateway.Header, IdleTimeout: time.Minute, AbsoluteTimeout: time.Hour}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := serve(t, route(t, startBackends(t, 3), tt.sp))
			seen := map[string]bool{}
			for n := range 3 {
				c := newClient(t, url, tt.sp)
				first, _ := c.do("/")
				seen[first] = true
				for i := range stickRequests {
					got, _ := c.do("/")
					require.Equal(t, first, got, "client %d, request %d", n, i)
				}
			}
			assert.Len(t, seen, 3, "new clients are spread over the backends")
		})
	}
}

func TestConformanceCookieLifetime(t *testing.T) {
	tests := []struct {
		name   string
		sp     gateway.SessionPersistence
		maxAge int // 0: a session cookie, with neither Expires nor Max-Age
	}{
		{"session", gateway.SessionPersistence{SessionName: "s", Path: "/app", CookieConfig: &gateway.CookieConfig{LifetimeType: gateway.Session}}, 0},
		{"session with absolute timeout", gateway.SessionPersistence{SessionName: "s", Path: "/app", AbsoluteTimeout: time.Hour}, 0},
		{"permanent", gateway.SessionPersistence{SessionName: "s", Path: "/app", AbsoluteTimeout: 90 * time.Minute, CookieConfig: &gateway.CookieConfig{LifetimeType: gateway.Permanent}}, 5400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := serve(t, route(t, startBackends(t, 2), tt.sp))
			_, resp := get(t, &http.Client{}, url+"/app/x", "X-Unused", "")
			lines := resp.Header.Values("Set-Cookie")
			require.Len(t, lines, 1)
			c, err := http.ParseSetCookie(lines[0])
			require.NoError(t, err)
			assert.Equal(t, "s", c.Name)
			assert.Equal(t, "/app", c.Path)
			assert.Equal(t, tt.maxAge, c.MaxAge, lines[0])
			if tt.maxAge == 0 {
				assert.NotContains(t, lines[0], "Expires", "a session cookie")
				assert.NotContains(t, lines[0], "Max-Age", "a session cookie")
			} else {
				require.False(t, c.Expires.IsZero())
				assert.WithinDuration(t, time.Now().Add(time.Duration(tt.maxAge)*time.Second), c.Expires, 5*time.Second)
			}
		})
	}
}

func TestConformanceRouteRulesIndependent(t *testing.T) {
	// Two route rules of one route, on /a and /b, over the same backends,
	// each with its own session name; with the cookies scoped to each
	// rule's path, or both to "/" so that the client sends both cookies to
	// both rules.
	tests := []struct {
		name         string
		pathA, pathB string
		typ          gateway.PersistenceType
	}{
		{"cookies scoped to their rules", "/a", "/b", gateway.Cookie},
		{"cookies on one path", "/", "/", gateway.Cookie},
		{"headers", "", "", gateway.Header},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set := startBackends(t, 3)
			spA := gateway.SessionPersistence{SessionName: "session-a", Path: tt.pathA, Type: tt.typ}
			spB := gateway.SessionPersistence{SessionName: "session-b", Path: tt.pathB, Type: tt.typ}
			mux := http.NewServeMux()
			mux.Handle("/a/", route(t, set, spA))
			b := route(t, set, spB)
			mux.Handle("/b/", b)
			url := serve(t, mux)

			// Another client first, so that the rules' pickers stand at
			// different backends.
			_, _ = newClient(t, url, spB).do("/b/")

			ca := newClient(t, url, spA)
			backendA, _ := ca.do("/a/")
			var cb *client
			if tt.typ == gateway.Header {
				// One client, two session headers: it echoes each.
				cb = &client{t: t, http: ca.http, url: url, header: "session-b", echo: true}
			} else {
				cb = ca // one cookie jar holds both sessions
			}
			backendB, _ := cb.do("/b/")
			require.NotEqual(t, backendA, backendB, "precondition: the rules bound the client to different backends")

			for i := range stickRequests {
				gotA, respA := ca.do("/a/")
				gotB, respB := cb.do("/b/")
				require.Equal(t, backendA, gotA, "rule a, request %d", i)
				require.Equal(t, backendB, gotB, "rule b, request %d", i)
				if tt.typ == gateway.Cookie {
					assert.Empty(t, respA.Header.Values("Set-Cookie"), "rule a re-binds")
					assert.Empty(t, respB.Header.Values("Set-Cookie"), "rule b re-binds")
				}
			}
			if tt.typ == gateway.Header {
				// Rule b does not take rule a's value for its own.
				p, err := gateway.NewPolicy(spB, testKeys)
				require.NoError(t, err)
				r := httptest.NewRequest(http.MethodGet, "/b/", nil)
				r.Header.Set("session-b", ca.token)
				assert.Equal(t, policy.Forged, p.Lookup(r, set.Snapshot()).Status)
			}
		})
	}
}

func TestConformanceHeaderClientWithoutCookies(t *testing.T) {
	sp := gateway.SessionPersistence{SessionName: "Mcp-Affinity", Type: gateway.Header, IdleTimeout: time.Hour}
	url := serve(t, route(t, startBackends(t, 3), sp))

	t.Run("echoes the header", func(t *testing.T) {
		c := newClient(t, url, sp)
		first, resp := c.do("/")
		require.Len(t, resp.Header.Get("Mcp-Affinity"), 44)
		assert.Empty(t, resp.Header.Values("Set-Cookie"), "no cookie for a Header session")
		for i := range stickRequests {
			got, resp := c.do("/")
			require.Equal(t, first, got, "request %d", i)
			assert.Empty(t, resp.Header.Get("Mcp-Affinity"), "a binding needing no refresh is not re-sent")
		}
	})
	t.Run("does not echo it", func(t *testing.T) {
		c := newClient(t, url, sp)
		c.echo = false
		seen := map[string]bool{}
		for i := range stickRequests {
			got, resp := c.do("/")
			seen[got] = true
			require.Len(t, resp.Header.Get("Mcp-Affinity"), 44, "request %d placed anew and bound", i)
		}
		assert.Len(t, seen, 3, "each request is placed anew")
	})
}

func TestConformanceWeightedSplit(t *testing.T) {
	// GEP-1619: new clients follow the route's backend weights (70/30
	// here, within 2% over 1,000 clients); a bound client stays on its
	// backend afterwards, even once its group's weight drops to 0.
	const clients = 1000
	tests := []struct {
		name string
		sp   gateway.SessionPersistence
	}{
		{"cookie", gateway.SessionPersistence{SessionName: "session-a"}},
		{"header", gateway.SessionPersistence{SessionName: "Session-A", Type: gateway.Header}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set := startGroups(t, []backend.Config{
				{ID: "blue1", Group: "blue"}, {ID: "blue2", Group: "blue"},
				{ID: "green1", Group: "green"}, {ID: "green2", Group: "green"},
			}, backend.WithGroupWeights(map[string]int{"blue": 70, "green": 30}))
			url := serve(t, route(t, set, tt.sp))

			cs := make([]*client, clients)
			bound := make([]string, clients)
			blue := 0
			for i := range cs {
				cs[i] = newClient(t, url, tt.sp)
				bound[i], _ = cs[i].do("/")
				if strings.HasPrefix(bound[i], "blue") {
					blue++
				}
			}
			assert.InDelta(t, 700, blue, 20, "new clients of group blue, of %d at 70/30", clients)

			for i, c := range cs {
				got, _ := c.do("/")
				require.Equal(t, bound[i], got, "client %d", i)
			}
			require.NoError(t, set.SetGroupWeight("blue", 0))
			require.NoError(t, set.SetGroupWeight("green", 100))
			for i, c := range cs {
				got, _ := c.do("/")
				require.Equal(t, bound[i], got, "client %d, at weights 0/100", i)
			}
			fresh, _ := newClient(t, url, tt.sp).do("/")
			assert.True(t, strings.HasPrefix(fresh, "green"), "a new client at 0/100 went to %s", fresh)
		})
	}
}
