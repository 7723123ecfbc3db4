package sticky_test

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/balancer"
	"github.com/affinitylb/affinity/cookie"
	"github.com/affinitylb/affinity/sticky"
)

// The tests of this file hold sessions under real traffic, through the
// handler and real sockets: no client is moved while its backend still
// serves it, and one whose backend failed moves once.

// jarValue returns the value of the cookie called name that c's jar holds
// for u, or "" if it holds none.
func jarValue(t *testing.T, c *http.Client, u, name string) string {
	t.Helper()
	parsed, err := url.Parse(u)
	require.NoError(t, err)
	for _, ck := range c.Jar.Cookies(parsed) {
		if ck.Name == name {
			return ck.Value
		}
	}
	return ""
}

// bornAt returns when the binding in the balancer's cookie value v was
// made, read as the policy package documents the format.
func bornAt(t *testing.T, v string) int64 {
	t.Helper()
	p, err := base64.RawURLEncoding.DecodeString(v)
	require.NoError(t, err)
	require.Len(t, p, 33)
	return int64(binary.BigEndian.Uint32(p[9:13]))
}

// TestSlidingCookieKeepsActiveClients runs, in real time, a 2-second TTL
// with the default sliding expiry: a browser requesting every 300 ms for 8
// seconds keeps its backend and its binding, its cookie jar never dropping
// the cookie; one idle for longer than the TTL loses it and is placed
// anew. A max life ends even an active client's binding.
func TestSlidingCookieKeepsActiveClients(t *testing.T) {
	p := newPool(t, 3)
	ck := newCookie(t, cookie.WithTTL(2*time.Second))
	h, err := sticky.New(p.set, ck, sticky.WithPicker(&balancer.RoundRobin{}))
	require.NoError(t, err)
	base := front(t, h)

	t.Run("active", func(t *testing.T) {
		t.Parallel()
		c := newClient(t, true)
		home := get(t, c, base+"/whoami").server
		first := jarValue(t, c, base, ck.Name())
		require.NotEmpty(t, first, "no binding")
		born := bornAt(t, first)
		refreshed := 0
		last := first
		for n, end := 0, time.Now().Add(8*time.Second); time.Now().Before(end); n++ {
			time.Sleep(300 * time.Millisecond)
			w := get(t, c, base+"/whoami")
			require.Equal(t, http.StatusOK, w.status)
			require.Equal(t, home, w.server, "request %d: moved", n)
			v := jarValue(t, c, base, ck.Name())
			require.NotEmpty(t, v, "request %d: the jar dropped the binding", n)
			assert.Equal(t, born, bornAt(t, v), "request %d: a new binding", n)
			if v != last {
				refreshed++
				last = v
			}
		}
		assert.GreaterOrEqual(t, refreshed, 4, "the cookie slid about once a second")
	})

	t.Run("idle", func(t *testing.T) {
		t.Parallel()
		c := newClient(t, true)
		get(t, c, base+"/whoami")
		old := jarValue(t, c, base, ck.Name())
		require.NotEmpty(t, old)
		time.Sleep(2100 * time.Millisecond)
		assert.Empty(t, jarValue(t, c, base, ck.Name()), "the jar kept the cookie past its Max-Age")

		// The old value, kept by a client that ignores Max-Age, no longer
		// binds either.
		w := get(t, newClient(t, false), base+"/whoami", &http.Cookie{Name: ck.Name(), Value: old})
		fresh := balancerCookie(w.header, ck.Name())
		require.NotNil(t, fresh, "an expired binding was honoured")
		assert.Greater(t, bornAt(t, fresh.Value), bornAt(t, old), "not a new binding")

		w = get(t, c, base+"/whoami")
		fresh = balancerCookie(w.header, ck.Name())
		require.NotNil(t, fresh, "an idle client was not bound again")
		assert.Greater(t, bornAt(t, fresh.Value), bornAt(t, old))
	})

	t.Run("max life", func(t *testing.T) {
		t.Parallel()
		// The policy's clock steps 300 ms a request: what the jar drops,
		// by real time, does not matter within the few real seconds this
		// takes, the cookie being refreshed about every third request.
		clk := &clock{now: time.Now()}
		ck := newCookie(t, cookie.WithClock(clk.Now), cookie.WithTTL(2*time.Second), cookie.WithMaxLife(5*time.Second))
		h, err := sticky.New(p.set, ck)
		require.NoError(t, err)
		base := front(t, h)
		c := newClient(t, true)
		get(t, c, base+"/whoami")
		born := bornAt(t, jarValue(t, c, base, ck.Name()))
		for n := range 25 {
			clk.Advance(300 * time.Millisecond)
			w := get(t, c, base+"/whoami")
			require.Equal(t, http.StatusOK, w.status)
			v := jarValue(t, c, base, ck.Name())
			require.NotEmpty(t, v, "request %d", n)
			age := clk.Now().Unix() - born
			if age < 5 {
				require.Equal(t, born, bornAt(t, v), "request %d, binding %d s old: re-placed before its max life", n, age)
				if set := balancerCookie(w.header, ck.Name()); set != nil {
					assert.LessOrEqual(t, set.MaxAge, int(5-age), "request %d: the refreshed cookie outlives the max life", n)
				}
				continue
			}
			require.NotEqual(t, born, bornAt(t, v), "request %d, binding %d s old: not re-placed", n, age)
			return
		}
		t.Fatal("the binding outlived its max life")
	})
}

// phpApp is an application server that keeps sessions as PHP does with
// Debian's defaults (session.use_strict_mode off): a request without
// PHPSESSID starts a session and sets the cookie; a request with one uses
// that session, adopting an ID it does not know without setting anything.
// It answers with X-Served-By and the session's ID.
type phpApp struct {
	name     string
	mu       sync.Mutex
	sessions map[string]int // requests per session ID
}

func (a *phpApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Served-By", a.name)
	id := ""
	if c, err := r.Cookie("PHPSESSID"); err == nil {
		id = c.Value
	}
	if id == "" {
		id = rand.Text()
		http.SetCookie(w, &http.Cookie{Name: "PHPSESSID", Value: id, Path: "/", HttpOnly: true})
	}
	a.mu.Lock()
	a.sessions[id]++
	a.mu.Unlock()
	fmt.Fprintf(w, "server=%s session=%s\n", a.name, id)
}

// handlerPool is a set of handlers served on 127.0.0.1 and a backend set
// over them.
type handlerPool struct {
	set     *backend.Set
	servers map[string]*httptest.Server
}

func newHandlerPool(t *testing.T, handlers map[string]http.Handler) *handlerPool {
	t.Helper()
	p := &handlerPool{servers: map[string]*httptest.Server{}}
	var cfgs []backend.Config
	for name, h := range handlers {
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		p.servers[name] = srv
		cfgs = append(cfgs, backend.Config{ID: name, URL: srv.URL})
	}
	set, err := backend.NewSet(cfgs)
	require.NoError(t, err)
	p.set = set
	return p
}

// kill stops the named server as a crash would, as pool.kill does.
func (p *handlerPool) kill(t *testing.T, name string) {
	t.Helper()
	srv := p.servers[name]
	require.NoError(t, srv.Listener.Close())
	srv.CloseClientConnections()
}

// TestAppCookieOrphansMoveOnce kills one of three PHP servers that adopt
// unknown session IDs: each of its clients moves to another server once,
// taking its session ID along, and stays there; nobody else moves.
func TestAppCookieOrphansMoveOnce(t *testing.T) {
	const clients = 9
	p := newHandlerPool(t, map[string]http.Handler{
		"php1": &phpApp{name: "php1", sessions: map[string]int{}},
		"php2": &phpApp{name: "php2", sessions: map[string]int{}},
		"php3": &phpApp{name: "php3", sessions: map[string]int{}},
	})
	pol, err := cookie.NewApp("PHPSESSID", [][]byte{testKey})
	require.NoError(t, err)
	// Round robin: a client left to the picker on every request would
	// visit every server in turn.
	h, err := sticky.New(p.set, pol, sticky.WithPicker(&balancer.RoundRobin{}))
	require.NoError(t, err)
	base := front(t, h)

	type client struct {
		c       *http.Client
		home    string
		session string
	}
	serve := func(t *testing.T, c *http.Client) (server, session string) {
		t.Helper()
		resp, err := c.Get(base + "/")
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
		_, session, _ = strings.Cut(strings.TrimSpace(string(body)), "session=")
		return resp.Header.Get("X-Served-By"), session
	}
	var cs []*client
	perServer := map[string]int{}
	for range clients {
		cl := &client{c: newClient(t, true)}
		cl.home, cl.session = serve(t, cl.c)
		require.NotEmpty(t, jarValue(t, cl.c, base, pol.Name()), "not bound")
		for range 3 {
			server, session := serve(t, cl.c)
			require.Equal(t, cl.home, server, "moved before any failure")
			require.Equal(t, cl.session, session)
		}
		perServer[cl.home]++
		cs = append(cs, cl)
	}
	require.Equal(t, map[string]int{"php1": 3, "php2": 3, "php3": 3}, perServer)

	p.kill(t, "php1")
	for _, cl := range cs {
		var moves []string
		at := cl.home
		for range 20 {
			server, session := serve(t, cl.c)
			assert.Equal(t, cl.session, session, "the session ID changed")
			if server != at {
				moves = append(moves, at+"→"+server)
				at = server
			}
		}
		if cl.home == "php1" {
			assert.Len(t, moves, 1, "a client of the failed server: moves %v", moves)
		} else {
			assert.Empty(t, moves, "a client of %s moved", cl.home)
		}
	}
}

// contexts serves two applications on one host, at /a and /b, as a
// servlet container does: each with its own JSESSIONID, Path=/a or
// Path=/b, set at login and deleted, with the same Path, at logout. A
// session ID it does not know is ignored, as Tomcat does.
type contexts struct {
	name     string
	mu       sync.Mutex
	sessions map[string]string // context and session ID → user
}

func (c *contexts) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Served-By", c.name)
	ctx, action, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if !ok || ctx != "a" && ctx != "b" {
		http.NotFound(w, r)
		return
	}
	path := "/" + ctx
	id := ""
	if ck, err := r.Cookie("JSESSIONID"); err == nil { // the most specific path first
		id = ck.Value
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch action {
	case "login":
		id = rand.Text()
		c.sessions[path+" "+id] = r.FormValue("name")
		http.SetCookie(w, &http.Cookie{Name: "JSESSIONID", Value: id, Path: path, HttpOnly: true})
	case "logout":
		delete(c.sessions, path+" "+id)
		http.SetCookie(w, &http.Cookie{Name: "JSESSIONID", Path: path, MaxAge: -1})
	}
	fmt.Fprintf(w, "server=%s user=%s\n", c.name, c.sessions[path+" "+id])
}

// TestAppCookiePerPathApplications logs a client into two applications of
// one host, at /a and /b, each with its own session cookie and path, then
// out of /a: its /b session stays on its backend, with its binding.
func TestAppCookiePerPathApplications(t *testing.T) {
	p := newHandlerPool(t, map[string]http.Handler{
		"app1": &contexts{name: "app1", sessions: map[string]string{}},
		"app2": &contexts{name: "app2", sessions: map[string]string{}},
		"app3": &contexts{name: "app3", sessions: map[string]string{}},
	})
	pol, err := cookie.NewApp("JSESSIONID", [][]byte{testKey})
	require.NoError(t, err)
	h, err := sticky.New(p.set, pol, sticky.WithPicker(&balancer.RoundRobin{}))
	require.NoError(t, err)
	base := front(t, h)
	c := newClient(t, true)

	call := func(t *testing.T, method, path string) whoami {
		t.Helper()
		req, err := http.NewRequest(method, base+path, nil)
		require.NoError(t, err)
		resp, err := c.Do(req)
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s %s: %s", method, path, body)
		w := whoami{status: resp.StatusCode, server: resp.Header.Get("X-Served-By"), header: resp.Header}
		_, w.user, _ = strings.Cut(strings.TrimSpace(string(body)), "user=")
		return w
	}
	homeA := call(t, http.MethodPost, "/a/login?name=alice").server
	homeB := call(t, http.MethodPost, "/b/login?name=bob").server
	assert.NotEmpty(t, jarValue(t, c, base+"/a/", pol.Name()), "no binding for /a")
	assert.NotEmpty(t, jarValue(t, c, base+"/b/", pol.Name()), "no binding for /b")
	for range 3 {
		w := call(t, http.MethodGet, "/a/whoami")
		require.Equal(t, homeA, w.server)
		require.Equal(t, "alice", w.user)
		w = call(t, http.MethodGet, "/b/whoami")
		require.Equal(t, homeB, w.server)
		require.Equal(t, "bob", w.user)
	}

	w := call(t, http.MethodPost, "/a/logout")
	assert.Equal(t, homeA, w.server)
	assert.Empty(t, jarValue(t, c, base+"/a/", pol.Name()), "/a's binding outlived its session")
	assert.NotEmpty(t, jarValue(t, c, base+"/b/", pol.Name()), "logging out of /a deleted /b's binding")
	for n := range 10 {
		w := call(t, http.MethodGet, "/b/whoami")
		assert.Equal(t, homeB, w.server, "request %d: /b's session moved", n)
		assert.Equal(t, "bob", w.user, "request %d: /b's session lost", n)
	}
}

// TestManyCookiesStaySticky sends, ahead of a valid binding, 200 cookies
// of the site's and duplicates of the binding's name (garbage, forged,
// expired), as a browser may: the client stays on its backend and is not
// bound again.
func TestManyCookiesStaySticky(t *testing.T) {
	p := newPool(t, 3)
	ck := newCookie(t)
	h, err := sticky.New(p.set, ck, sticky.WithPicker(&balancer.RoundRobin{}))
	require.NoError(t, err)
	base := front(t, h)

	first := get(t, newClient(t, false), base+"/whoami")
	bound := balancerCookie(first.header, ck.Name())
	require.NotNil(t, bound)
	other, err := cookie.New([][]byte{[]byte("another key, 32 bytes long......")})
	require.NoError(t, err)
	past := newCookie(t, cookie.WithClock(func() time.Time { return time.Now().Add(-time.Hour) }))

	var site []string
	for i := range 200 {
		site = append(site, fmt.Sprintf("pref%d=%d", i, i))
	}
	for _, tc := range []struct {
		name   string
		before string
	}{
		{"200 cookies", strings.Join(site, "; ")},
		{"garbage duplicate", "affinity=garbage"},
		{"forged duplicate", "affinity=" + other.Issue(first.server)},
		{"expired duplicate", "affinity=" + past.Issue(first.server)},
		{"all of them", strings.Join(site, "; ") + "; affinity=garbage; affinity=" + other.Issue("app2") + "; affinity=" + past.Issue("app3")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(t, false)
			for n := range 5 {
				req, err := http.NewRequest(http.MethodGet, base+"/whoami", nil)
				require.NoError(t, err)
				req.Header.Set("Cookie", tc.before+"; affinity="+bound.Value)
				resp, err := c.Do(req)
				require.NoError(t, err)
				require.NoError(t, resp.Body.Close())
				assert.Equal(t, http.StatusOK, resp.StatusCode)
				assert.Equal(t, first.server, resp.Header.Get("X-Served-By"), "request %d: moved", n)
				assert.Nil(t, balancerCookie(resp.Header, ck.Name()), "request %d: bound again", n)
			}
		})
	}
}

// pathApp adopts unknown session IDs, as phpApp does, with its session
// cookie scoped to /app, as PHP's session.cookie_path=/app sets it.
type pathApp struct{ name string }

func (a *pathApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Served-By", a.name)
	if c, err := r.Cookie("PHPSESSID"); err != nil || c.Value == "" {
		http.SetCookie(w, &http.Cookie{Name: "PHPSESSID", Value: "s-" + a.name, Path: "/app"})
	}
}

// TestAppCookieOrphanOfAnAppOnAPathMovesOnce checks that the orphan of an
// application whose cookie has a Path of its own moves once: its old
// binding, at that Path, is sent first, but names a backend that does not
// serve, so the new one, at "/", wins.
func TestAppCookieOrphanOfAnAppOnAPathMovesOnce(t *testing.T) {
	p := newHandlerPool(t, map[string]http.Handler{
		"php1": &pathApp{name: "php1"}, "php2": &pathApp{name: "php2"}, "php3": &pathApp{name: "php3"},
	})
	pol, err := cookie.NewApp("PHPSESSID", [][]byte{testKey})
	require.NoError(t, err)
	h, err := sticky.New(p.set, pol, sticky.WithPicker(&balancer.RoundRobin{}))
	require.NoError(t, err)
	base := front(t, h)
	c := newClient(t, true)
	home := get(t, c, base+"/app/x").server
	require.Equal(t, home, get(t, c, base+"/app/x").server)

	require.NoError(t, p.set.SetState(home, backend.Unhealthy))
	moved := get(t, c, base+"/app/x").server
	require.NotEqual(t, home, moved)
	for i := range 6 {
		assert.Equal(t, moved, get(t, c, base+"/app/x").server, "request %d: the orphan moved again", i)
	}
}
