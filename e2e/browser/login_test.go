package browser

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/internal/demoapp"
)

// servedBy matches the demo app's "served by NAME, path PATH".
var servedBy = regexp.MustCompile(`served by (\S+), path (\S+)`)

// body returns the visible text, trimmed, of the page in ctx's tab.
func body(t *testing.T, ctx context.Context) string {
	t.Helper()
	text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
	require.NoError(t, err)
	return strings.TrimSpace(text)
}

// server returns the demo app that served a page, from its text.
func server(t *testing.T, text string) string {
	t.Helper()
	m := servedBy.FindStringSubmatch(text)
	require.NotNil(t, m, "no %q in the page:\n%s", "served by", text)
	return m[1]
}

// TestLoginStaysOnBackend logs in through stickyproxy in a browser, as a
// person would, and browses: every page comes from the demo app that holds
// the session, kept there by the browser's cookie jar alone.
func TestLoginStaysOnBackend(t *testing.T) {
	chromiumPath(t) // skip before building and starting anything
	p := startProxy(t)
	ctx := newBrowser(t)

	// The login page, from the app the proxy placed us on.
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(p.url+"/")))
	text := body(t, ctx)
	require.Contains(t, text, "please log in")
	home := server(t, text)

	// Log in with the form: type the name, click the button, follow the
	// 303 back to /.
	require.NoError(t, chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS(`form[action="/login"] input[name="name"]`), "alice")))
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(`form[action="/login"] button`)))
	require.NoError(t, err)
	assert.Equal(t, int64(200), resp.Status)
	assert.Equal(t, p.url+"/", resp.URL)
	text = body(t, ctx)
	require.Contains(t, text, "hello alice")
	require.Equal(t, home, server(t, text), "logged in on another app than the login page's")

	// Browse: the same app, still alice, page after page.
	for i := 1; i <= 20; i++ {
		path := fmt.Sprintf("/page%d", i)
		require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(p.url+path)))
		text := body(t, ctx)
		assert.Contains(t, text, "hello alice", path)
		assert.Contains(t, text, "served by "+home+", path "+path)
	}
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(p.url+"/whoami")))
	assert.Equal(t, "server="+home+" user=alice", body(t, ctx))

	// The cookies that did it: the proxy's binding and the app's session,
	// both HttpOnly and SameSite=Lax, hidden from the page's scripts.
	cookies, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{p.url + "/"}})
	require.NoError(t, err)
	byName := map[string]*network.Cookie{}
	for _, c := range cookies.Cookies {
		byName[c.Name] = c
	}
	for _, name := range []string{"affinity", demoapp.SessionCookie} {
		c := byName[name]
		if !assert.NotNil(t, c, "no %s cookie in the browser", name) {
			continue
		}
		assert.True(t, c.HTTPOnly, "%s cookie: HttpOnly", name)
		assert.Equal(t, network.CookieSameSiteLax, c.SameSite, "%s cookie: SameSite", name)
		assert.Equal(t, "/", c.Path, "%s cookie: Path", name)
		assert.False(t, c.Secure, "%s cookie: Secure over plain HTTP", name)
	}
	if c := byName["affinity"]; c != nil {
		// -cookie-ttl's default, 15 minutes.
		expires := time.Unix(int64(c.Expires), 0)
		assert.WithinDuration(t, time.Now().Add(15*time.Minute), expires, time.Minute, "affinity cookie: expiry")
	}
	jsCookies, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.cookie`))
	require.NoError(t, err)
	assert.Empty(t, jsCookies, "the page's scripts see cookies")

	// Without the proxy's cookie, the browser is placed anew, and on
	// another app alice is a stranger, though it still sends her session
	// cookie: the binding, not the app's cookie, kept her home.
	other := ""
	for range 6 {
		_, err := chromedp.Call(ctx, network.DeleteCookies, network.DeleteCookiesParams{Name: "affinity", URL: p.url + "/"})
		require.NoError(t, err)
		require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(p.url+"/whoami")))
		text := body(t, ctx)
		if text != "server="+home+" user=alice" {
			other = text
			break
		}
	}
	require.NotEmpty(t, other, "6 browsers without the affinity cookie all reached %s", home)
	assert.Regexp(t, `^server=app[123] user=$`, other)
}
