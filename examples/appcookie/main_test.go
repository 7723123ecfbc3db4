package main

import (
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/examples/internal/demotest"
)

// post sends a form to url with c and returns the response, its body
// closed.
func post(t *testing.T, c *http.Client, url string, form url.Values) *http.Response {
	t.Helper()
	resp, err := c.PostForm(url, form)
	require.NoError(t, err)
	resp.Body.Close()
	return resp
}

// The balancer's cookie is set with the application's, with the same
// lifetime, and deleted with it; in between, the client stays on the
// backend that holds its session.
func TestBindingFollowsSession(t *testing.T) {
	for _, tc := range []struct {
		ttl    string
		maxAge int // as http.Cookie has it: 0 for a session cookie
	}{
		{ttl: "24m", maxAge: 1440},
		{ttl: "0", maxAge: 0},
	} {
		t.Run("session-ttl="+tc.ttl, func(t *testing.T) {
			p := demotest.Start(t, run, "-session-ttl", tc.ttl)
			jar, err := cookiejar.New(nil)
			require.NoError(t, err)
			c := &http.Client{Jar: jar}

			// No application session: nobody is bound.
			resp, body := demotest.Get(t, c, p.URL+"/")
			assert.Empty(t, resp.Cookies(), "cookies before login")
			assert.Empty(t, demotest.Field(body, "user"))

			resp = post(t, c, p.URL+"/login", url.Values{"name": {"alice"}})
			require.Equal(t, http.StatusOK, resp.StatusCode)
			server := resp.Header.Get("X-Served-By")
			app, lb := demotest.Cookie(resp, "PHPSESSID"), demotest.Cookie(resp, "affinity")
			require.NotNil(t, app, "no PHPSESSID on login")
			require.NotNil(t, lb, "no balancer cookie on login")
			assert.Equal(t, tc.maxAge, app.MaxAge)
			assert.Equal(t, app.MaxAge, lb.MaxAge, "the binding does not live as long as the session")

			for range 10 {
				resp, body := demotest.Get(t, c, p.URL+"/whoami")
				assert.Equal(t, server, resp.Header.Get("X-Served-By"))
				assert.Equal(t, "alice", demotest.Field(body, "user"))
				assert.Empty(t, resp.Cookies(), "cookies set again while the session lasts")
			}

			resp = post(t, c, p.URL+"/logout", nil)
			require.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, server, resp.Header.Get("X-Served-By"))
			lb = demotest.Cookie(resp, "affinity")
			require.NotNil(t, lb, "the balancer cookie was not deleted on logout")
			assert.Negative(t, lb.MaxAge, "the balancer cookie was not deleted on logout") // Max-Age=0
			u, err := url.Parse(p.URL)
			require.NoError(t, err)
			assert.Empty(t, jar.Cookies(u), "cookies left after logout")
		})
	}
}
