package main

import (
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/examples/internal/demo"
	"github.com/affinitylb/affinity/examples/internal/demotest"
)

// The front end's own routes are answered by it, and bind nobody.
func TestLocalRoutes(t *testing.T) {
	p := demotest.Start(t, run)
	c := &http.Client{}

	resp, body := demotest.Get(t, c, p.URL+"/healthz")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "ok: 3 of 3 backends routable\n", body)
	assert.Empty(t, resp.Header.Get("X-Served-By"), "a backend answered /healthz")
	assert.Empty(t, resp.Cookies(), "/healthz set a cookie")

	resp, body = demotest.Get(t, c, p.URL+"/static/style.css")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, resp.Header.Get("Content-Type"), "text/css")
	assert.Contains(t, body, "font-family")
	assert.Empty(t, resp.Header.Get("X-Served-By"), "a backend answered /static/")
	assert.Empty(t, resp.Cookies(), "/static/ set a cookie")
}

// Everything else is proxied, and a client that logs in stays logged in:
// every request reaches the backend that holds its session.
func TestProxiedRoutesStick(t *testing.T) {
	p := demotest.Start(t, run)
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	c := &http.Client{Jar: jar}

	resp, _ := demotest.Get(t, c, p.URL+"/")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	server := resp.Header.Get("X-Served-By")
	require.NotEmpty(t, server, "/ was not proxied")
	require.NotNil(t, demotest.Cookie(resp, "affinity"), "no sticky cookie")

	resp, err = c.PostForm(p.URL+"/login", url.Values{"name": {"alice"}})
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode) // after the redirect to /

	for range 10 {
		_, body := demotest.Get(t, c, p.URL+"/whoami")
		assert.Equal(t, "server="+server+" user=alice", strings.TrimSpace(body))
	}
}

// -backends replaces the demo apps with the servers it names.
func TestBackendsFlag(t *testing.T) {
	app := httptest.NewServer(demo.App("mine"))
	t.Cleanup(app.Close)
	p := demotest.Start(t, run, "-backends", "mine="+app.URL)

	_, body := demotest.Get(t, &http.Client{}, p.URL+"/healthz")
	assert.Equal(t, "ok: 1 of 1 backends routable\n", body)
	_, body = demotest.Get(t, &http.Client{}, p.URL+"/whoami")
	assert.Equal(t, "mine", demotest.Field(body, "server"))
}
