package demoapp

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// response is what a test request got back.
type response struct {
	status int
	header http.Header
	body   string
}

// start serves a new App called name.
func start(t *testing.T, name string) (*App, *httptest.Server) {
	t.Helper()
	app := New(name)
	srv := httptest.NewServer(app)
	t.Cleanup(srv.Close)
	return app, srv
}

// newClient returns a client with a cookie jar that does not follow
// redirects, so tests see the 303s.
func newClient(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &http.Client{
		Jar:     jar,
		Timeout: 5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// do sends a request; a non-nil form is posted url-encoded.
func do(t *testing.T, c *http.Client, method, u string, form url.Values) response {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(t.Context(), method, u, body)
	require.NoError(t, err)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return response{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// sessionCookie returns the session cookie set by r.
func sessionCookie(t *testing.T, r response) *http.Cookie {
	t.Helper()
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		if c.Name == SessionCookie {
			return c
		}
	}
	require.Fail(t, "no session cookie set", "headers: %v", r.header)
	return nil
}

func login(t *testing.T, c *http.Client, base, name string) {
	t.Helper()
	r := do(t, c, http.MethodPost, base+"/login", url.Values{"name": {name}})
	require.Equal(t, http.StatusSeeOther, r.status, r.body)
}

func TestLoginFlow(t *testing.T) {
	app, srv := start(t, "app1")
	c := newClient(t)

	r := do(t, c, http.MethodGet, srv.URL+"/", nil)
	require.Equal(t, http.StatusOK, r.status)
	assert.Contains(t, r.body, "please log in")
	assert.Contains(t, r.body, `action="/login"`)
	assert.Contains(t, r.header.Get("Content-Type"), "text/html")
	ck := sessionCookie(t, r)
	assert.Len(t, ck.Value, 32, "128 bits in hex")
	assert.True(t, ck.HttpOnly)
	assert.Equal(t, http.SameSiteLaxMode, ck.SameSite)
	assert.Equal(t, "/", ck.Path)
	assert.Equal(t, 1, app.Sessions())

	r = do(t, c, http.MethodGet, srv.URL+"/whoami", nil)
	assert.Equal(t, "server=app1 user=\n", r.body, "a session, not logged in")

	r = do(t, c, http.MethodPost, srv.URL+"/login", url.Values{"name": {"alice"}})
	require.Equal(t, http.StatusSeeOther, r.status, r.body)
	assert.Equal(t, "/", r.header.Get("Location"))
	assert.NotEqual(t, ck.Value, sessionCookie(t, r).Value, "login issues a new session ID")
	assert.Equal(t, 1, app.Sessions(), "the anonymous session was replaced")

	tests := []struct {
		path string
		want []string
	}{
		{"/", []string{"hello alice", "served by app1", "path /"}},
		{"/some/page", []string{"hello alice", "served by app1", "path /some/page"}},
		{"/whoami", []string{"server=app1 user=alice\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			r := do(t, c, http.MethodGet, srv.URL+tt.path, nil)
			require.Equal(t, http.StatusOK, r.status)
			for _, w := range tt.want {
				assert.Contains(t, r.body, w)
			}
			assert.Empty(t, r.header.Values("Set-Cookie"), "a known session keeps its cookie")
		})
	}
	assert.Equal(t, int64(6), app.Requests())
}

func TestLoginWithoutSessionStartsOne(t *testing.T) {
	app, srv := start(t, "app1")
	c := newClient(t)

	login(t, c, srv.URL, "bob")

	assert.Equal(t, "server=app1 user=bob\n", do(t, c, http.MethodGet, srv.URL+"/whoami", nil).body)
	assert.Equal(t, 1, app.Sessions())
}

func TestOtherAppDoesNotKnowSession(t *testing.T) {
	_, srv1 := start(t, "app1")
	app2, srv2 := start(t, "app2")
	// Cookies do not depend on the port: the jar sends app1's session
	// cookie to app2 too, as a proxy would.
	c := newClient(t)
	login(t, c, srv1.URL, "alice")

	r := do(t, c, http.MethodGet, srv2.URL+"/whoami", nil)
	assert.Equal(t, "server=app2 user=\n", r.body)
	assert.Equal(t, 0, app2.Sessions())

	r = do(t, c, http.MethodGet, srv2.URL+"/", nil)
	assert.Contains(t, r.body, "please log in")
	assert.NotEmpty(t, sessionCookie(t, r).Value, "app2 starts its own session")
	assert.Equal(t, 1, app2.Sessions())
}

func TestLogout(t *testing.T) {
	app, srv := start(t, "app1")
	c := newClient(t)
	login(t, c, srv.URL, "alice")

	r := do(t, c, http.MethodPost, srv.URL+"/logout", nil)
	require.Equal(t, http.StatusSeeOther, r.status)
	assert.Equal(t, "/", r.header.Get("Location"))
	ck := sessionCookie(t, r)
	assert.Negative(t, ck.MaxAge, "cookie expired")
	assert.Equal(t, 0, app.Sessions())

	assert.Equal(t, "server=app1 user=\n", do(t, c, http.MethodGet, srv.URL+"/whoami", nil).body)
	assert.Contains(t, do(t, c, http.MethodGet, srv.URL+"/", nil).body, "please log in")
}

func TestLoginName(t *testing.T) {
	tests := []struct {
		name   string
		input  string
		status int
		want   string // in the hello page, when accepted
	}{
		{"plain", "alice", http.StatusSeeOther, "hello alice"},
		{"trimmed", "  alice  ", http.StatusSeeOther, "hello alice<"},
		{"unicode", "Zoë Ünal", http.StatusSeeOther, "hello Zoë Ünal"},
		{"longest", strings.Repeat("é", MaxNameLen), http.StatusSeeOther, "hello " + strings.Repeat("é", MaxNameLen)},
		{"escaped", `<b>"x"</b>`, http.StatusSeeOther, "hello &lt;b&gt;&#34;x&#34;&lt;/b&gt;"},
		{"empty", "", http.StatusBadRequest, ""},
		{"blank", "   ", http.StatusBadRequest, ""},
		{"too long", strings.Repeat("a", MaxNameLen+1), http.StatusBadRequest, ""},
		{"control", "a\x00b", http.StatusBadRequest, ""},
		{"newline", "a\nb", http.StatusBadRequest, ""},
		{"invalid utf8", "a\xffb", http.StatusBadRequest, ""},
		{"huge", strings.Repeat("a", 2*maxFormBytes), http.StatusBadRequest, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app, srv := start(t, "app1")
			c := newClient(t)

			r := do(t, c, http.MethodPost, srv.URL+"/login", url.Values{"name": {tt.input}})
			require.Equal(t, tt.status, r.status, r.body)
			if tt.status != http.StatusSeeOther {
				assert.Equal(t, 0, app.Sessions())
				return
			}
			assert.Contains(t, do(t, c, http.MethodGet, srv.URL+"/", nil).body, tt.want)
		})
	}
}

func TestServedByAndMethods(t *testing.T) {
	_, srv := start(t, "app7")
	tests := []struct {
		method, path string
		status       int
		allow        string
	}{
		{http.MethodGet, "/", http.StatusOK, ""},
		{http.MethodHead, "/", http.StatusOK, ""},
		{http.MethodGet, "/deep/path?q=1", http.StatusOK, ""},
		{http.MethodGet, "/whoami", http.StatusOK, ""},
		{http.MethodPost, "/login", http.StatusBadRequest, ""},
		{http.MethodPost, "/logout", http.StatusSeeOther, ""},
		{http.MethodGet, "/login", http.StatusMethodNotAllowed, "POST"},
		{http.MethodGet, "/logout", http.StatusMethodNotAllowed, "POST"},
		{http.MethodPost, "/whoami", http.StatusMethodNotAllowed, "GET, HEAD"},
		{http.MethodPut, "/", http.StatusMethodNotAllowed, "GET, HEAD"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			r := do(t, newClient(t), tt.method, srv.URL+tt.path, nil)
			assert.Equal(t, tt.status, r.status)
			assert.Equal(t, "app7", r.header.Get("X-Served-By"))
			assert.Equal(t, tt.allow, r.header.Get("Allow"))
		})
	}
}

func TestConcurrentClients(t *testing.T) {
	app, srv := start(t, "app1")
	const clients = 20
	var wg sync.WaitGroup
	for i := range clients {
		// require must not be called off the test goroutine: check with
		// assert only.
		wg.Go(func() {
			c := newClient(t)
			name := fmt.Sprintf("user%d", i)
			resp, err := c.PostForm(srv.URL+"/login", url.Values{"name": {name}})
			if !assert.NoError(t, err) {
				return
			}
			resp.Body.Close()
			assert.Equal(t, http.StatusSeeOther, resp.StatusCode)
			resp, err = c.Get(srv.URL + "/whoami")
			if !assert.NoError(t, err) {
				return
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			assert.NoError(t, err)
			assert.Equal(t, "server=app1 user="+name+"\n", string(b))
		})
	}
	wg.Wait()
	assert.Equal(t, clients, app.Sessions())
	assert.Equal(t, int64(2*clients), app.Requests())
}

func TestSessionsEvictLeastRecentlyUsed(t *testing.T) {
	s := newSessions(3)
	a, b, c := s.create("a"), s.create("b"), s.create("c")
	_, ok := s.user(a) // a is now the most recently used
	require.True(t, ok)

	d := s.create("d")

	assert.Equal(t, 3, s.len())
	for _, tt := range []struct {
		id   string
		want bool
	}{{a, true}, {b, false}, {c, true}, {d, true}} {
		_, ok := s.user(tt.id)
		assert.Equal(t, tt.want, ok, "session %q", tt.id)
	}
	s.delete(c)
	s.delete(c)
	assert.Equal(t, 2, s.len())
}
