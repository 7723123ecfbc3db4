package cli

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/internal/demoapp"
)

// withCookies returns req with a Cookie header of the given name=value
// pairs, in order.
func withCookies(req *http.Request, pairs ...string) *http.Request {
	req.Header.Set("Cookie", strings.Join(pairs, "; "))
	return req
}

// login logs a client in as name through the proxy at base, with a client
// that keeps no cookies of its own, and returns the app that holds the
// session and the cookies the client then has: the app's session and
// whatever the proxy set, by name.
func login(t *testing.T, base, name string) (home string, jar map[string]*http.Cookie) {
	t.Helper()
	c := newPlainClient(t)
	jar = map[string]*http.Cookie{}
	keep := func(r response) {
		for _, ck := range r.cookies {
			jar[ck.Name] = ck
		}
	}
	first := do(t, c, get(t, base+"/"))
	require.Equal(t, http.StatusOK, first.status)
	keep(first)
	req, err := http.NewRequest(http.MethodPost, base+"/login", strings.NewReader(url.Values{"name": {name}}.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, ck := range jar {
		req.AddCookie(&http.Cookie{Name: ck.Name, Value: ck.Value})
	}
	r := do(t, c, req)
	require.Equal(t, http.StatusSeeOther, r.status)
	require.Equal(t, first.server, r.server)
	keep(r)
	return first.server, jar
}

// TestEndToEndCookieCORS runs the proxy with -cookie-cors and checks that a
// request carrying the twin but not the affinity cookie, as a browser sends
// a cross-site form POST, reaches the session's app; and, without
// -cookie-cors, that the same request is placed anew.
func TestEndToEndCookieCORS(t *testing.T) {
	for _, cors := range []bool{true, false} {
		t.Run(fmt.Sprintf("cors=%v", cors), func(t *testing.T) {
			args := []string{"-key", testKey, "-picker", "roundrobin", "-backends", demoBackends(t, "app1", "app2", "app3")}
			if cors {
				args = append(args, "-cookie-cors")
			}
			p := startProxy(t, args...)
			home, jar := login(t, p.url, "alice")
			aff := jar["affinity"]
			require.NotNil(t, aff)
			twin := jar["affinity-cors"]
			session := jar[demoapp.SessionCookie]
			require.NotNil(t, session)
			c := newPlainClient(t)
			if !cors {
				assert.Nil(t, twin, "a twin without -cookie-cors")
				// The same value, as the twin would carry it.
				r := do(t, c, withCookies(get(t, p.url+"/whoami"), "affinity-cors="+aff.Value, demoapp.SessionCookie+"="+session.Value))
				assert.NotEqual(t, home, r.server, "placed anew")
				assert.Equal(t, "server="+r.server+" user=\n", r.body)
				assert.NotNil(t, findCookie(r.cookies, "affinity"), "bound anew")
				return
			}
			require.NotNil(t, twin, "no twin with -cookie-cors")
			assert.Equal(t, aff.Value, twin.Value)
			assert.Equal(t, http.SameSiteNoneMode, twin.SameSite)
			assert.True(t, twin.Secure)
			assert.Equal(t, http.SameSiteLaxMode, aff.SameSite)
			assert.False(t, aff.Secure, "plain HTTP, -cookie-secure auto")

			// The twin alone keeps the client home, and needs no new cookie.
			r := do(t, c, withCookies(get(t, p.url+"/whoami"), "affinity-cors="+twin.Value, demoapp.SessionCookie+"="+session.Value))
			assert.Equal(t, "server="+home+" user=alice\n", r.body)
			assert.Empty(t, r.header.Values("Set-Cookie"))

			// An edited twin is refused: placed anew, with both cookies.
			edited := twin.Value[:10] + strings.Map(func(r rune) rune {
				if r == 'A' {
					return 'B'
				}
				return 'A'
			}, twin.Value[10:11]) + twin.Value[11:]
			r = do(t, c, withCookies(get(t, p.url+"/whoami"), "affinity-cors="+edited, demoapp.SessionCookie+"="+session.Value))
			assert.NotEqual(t, home, r.server)
			assert.Equal(t, "server="+r.server+" user=\n", r.body)
			assert.NotNil(t, findCookie(r.cookies, "affinity"))
			assert.NotNil(t, findCookie(r.cookies, "affinity-cors"))
		})
	}
}

// TestEndToEndCookieAttrs runs the proxy with every cookie attribute flag
// and reads the Set-Cookie lines it sends, and what its backend is sent.
func TestEndToEndCookieAttrs(t *testing.T) {
	seen := make(chan string, 8)
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- strings.Join(r.Header.Values("Cookie"), " | ")
		w.Header().Set("X-Served-By", "echo")
	}))
	t.Cleanup(echo.Close)
	p := startProxy(t, "-key", testKey, "-backends", "echo="+echo.URL,
		"-cookie-name", "lb", "-cookie-secure", "always", "-cookie-samesite", "strict",
		"-cookie-path", "/app", "-cookie-domain", "127.0.0.1", "-cookie-partitioned", "-cookie-cors")
	c := newPlainClient(t)

	r := do(t, c, withCookies(get(t, p.url+"/app/x"), "x=1"))
	assert.Equal(t, "x=1", <-seen)
	lines := r.header.Values("Set-Cookie")
	require.Len(t, lines, 2)
	ck, err := http.ParseSetCookie(lines[0])
	require.NoError(t, err)
	assert.Regexp(t, `^lb=[A-Za-z0-9_-]{44}; Path=/app; Domain=127.0.0.1; Expires=[^;]+; Max-Age=900; HttpOnly; Secure; SameSite=Strict; Partitioned$`, lines[0])
	assert.Equal(t, strings.Replace(strings.Replace(lines[0], "lb=", "lb-cors=", 1), "SameSite=Strict", "SameSite=None", 1), lines[1])

	// Both are stripped before the request is forwarded, the others kept.
	r = do(t, c, withCookies(get(t, p.url+"/app/y"), "lb-cors="+ck.Value, "x=1", "lb="+ck.Value, "y=2"))
	assert.Equal(t, "echo", r.server)
	assert.Equal(t, "x=1; y=2", <-seen)
	assert.Empty(t, r.header.Values("Set-Cookie"), "bound, nothing to renew")
}

// TestEndToEndCookieCORSOverHTTPS serves HTTPS (-tls-cert) with
// -cookie-cors: the affinity cookie is Secure, -cookie-secure auto, and a
// request carrying only the twin stays on the session's app.
func TestEndToEndCookieCORSOverHTTPS(t *testing.T) {
	ca := newTestCA(t)
	f := newKeyFiles(t)
	f.issue(t, ca, 1)
	p := startTLSProxy(t, f, "-key", testKey, "-picker", "roundrobin", "-backends", demoBackends(t, "app1", "app2", "app3"), "-cookie-cors")
	c := &http.Client{Transport: httpsTransport(t, ca, false), Timeout: 5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	r := do(t, c, get(t, p.url+"/"))
	require.Equal(t, http.StatusOK, r.status)
	var lines []string
	for _, l := range r.header.Values("Set-Cookie") {
		if !strings.HasPrefix(l, demoapp.SessionCookie+"=") {
			lines = append(lines, l)
		}
	}
	require.Len(t, lines, 2)
	assert.Regexp(t, `^affinity=[A-Za-z0-9_-]{44}; Path=/; Expires=[^;]+; Max-Age=900; HttpOnly; Secure; SameSite=Lax$`, lines[0])
	assert.Equal(t, strings.Replace(strings.Replace(lines[0], "affinity=", "affinity-cors=", 1), "SameSite=Lax", "SameSite=None", 1), lines[1])
	twin := findCookie(r.cookies, "affinity-cors")
	session := findCookie(r.cookies, demoapp.SessionCookie)
	require.NotNil(t, twin)
	require.NotNil(t, session)

	for range 3 {
		got := do(t, c, withCookies(get(t, p.url+"/whoami"), demoapp.SessionCookie+"="+session.Value, "affinity-cors="+twin.Value))
		assert.Equal(t, "server="+r.server+" user=\n", got.body)
		assert.Equal(t, r.server, got.server)
	}
}
