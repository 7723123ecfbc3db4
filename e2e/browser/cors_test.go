package browser

import (
	"crypto/rand"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/balancer"
	"github.com/affinitylb/affinity/cookie"
	"github.com/affinitylb/affinity/sticky"
)

// The sites of TestCrossSitePostReachesSession, mapped to 127.0.0.1 by
// Chromium's host resolver rules: two registrable domains, so that a page
// of one posting to the other is a cross-site request.
const (
	spHost  = "sp.test"  // the proxy and its apps: a SAML service provider
	idpHost = "idp.test" // another site: the identity provider
)

// spSessionCookie is the session cookie of spApp, SameSite=None as a
// service provider's must be for the identity provider's POST to carry it.
const spSessionCookie = "sp_session"

// spPage shows who answered whom, in <p id="who">.
var spPage = template.Must(template.New("sp").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>sp</title></head>
<body><p id="who">{{.}}</p></body></html>
`))

// spApp is a backend, a service provider in the manner of a SAML one: GET
// /login?name=NAME starts a session for NAME, in the app's memory only;
// POST /acs, the assertion consumer, answers who the session is, as every
// page does: "server=APP user=NAME cookies=NAMES", the cookies the app was
// sent, sorted.
type spApp struct {
	name     string
	mu       sync.Mutex
	sessions map[string]string // session ID to user
}

func (a *spApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Served-By", a.name)
	w.Header().Set("Cache-Control", "no-store")
	a.mu.Lock()
	defer a.mu.Unlock()
	var user string
	if c, err := r.Cookie(spSessionCookie); err == nil {
		user = a.sessions[c.Value]
	}
	switch {
	case r.URL.Path == "/login" && r.Method == http.MethodGet:
		user = r.URL.Query().Get("name")
		id := rand.Text()
		a.sessions[id] = user
		http.SetCookie(w, &http.Cookie{Name: spSessionCookie, Value: id, Path: "/", HttpOnly: true, Secure: true, SameSite: http.SameSiteNoneMode})
	case r.URL.Path == "/acs" && r.Method == http.MethodPost:
		if r.PostFormValue("SAMLResponse") == "" {
			http.Error(w, "no SAMLResponse", http.StatusBadRequest)
			return
		}
	case r.URL.Path == "/favicon.ico":
		http.NotFound(w, r)
		return
	}
	var names []string
	for _, c := range r.Cookies() {
		names = append(names, c.Name)
	}
	slices.Sort(names)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	spPage.Execute(w, fmt.Sprintf("server=%s user=%s cookies=%s", a.name, user, strings.Join(names, ",")))
}

// idpPage posts a form to the service provider as soon as it loads, as an
// identity provider returns a SAML assertion (or an OpenID Connect one,
// form_post).
var idpPage = template.Must(template.New("idp").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>idp</title></head>
<body>
<form method="post" action="{{.}}"><input type="hidden" name="SAMLResponse" value="assertion"></form>
<script>document.forms[0].submit();</script>
</body></html>
`))

// acsRequest is what the proxy's front saw of a POST to /acs, before the
// handler stripped anything.
type acsRequest struct {
	cookies []string // names, sorted
	site    string   // Sec-Fetch-Site
}

// TestCrossSitePostReachesSession logs a browser in on a service provider
// behind a sticky.Handler, served over HTTPS at sp.test, then lets a page
// of another site, idp.test, post a form back to it, as a SAML or OpenID
// Connect (form_post) login does. The browser sends the POST without the
// SameSite=Lax affinity cookie: with cookie.WithCORS, the twin,
// SameSite=None, takes the POST to the app that holds the session; without
// it, the POST is placed anew, on an app where the user is a stranger.
func TestCrossSitePostReachesSession(t *testing.T) {
	chromiumPath(t) // skip before starting anything
	for _, cors := range []bool{true, false} {
		t.Run(fmt.Sprintf("cors=%v", cors), func(t *testing.T) {
			testCrossSitePost(t, cors)
		})
	}
}

func testCrossSitePost(t *testing.T, cors bool) {
	var cfgs []backend.Config
	for i := 1; i <= 3; i++ {
		srv := httptest.NewServer(&spApp{name: fmt.Sprintf("app%d", i), sessions: map[string]string{}})
		t.Cleanup(srv.Close)
		cfgs = append(cfgs, backend.Config{ID: fmt.Sprintf("app%d", i), URL: srv.URL})
	}
	set, err := backend.NewSet(cfgs)
	require.NoError(t, err)
	pol, err := cookie.New([][]byte{[]byte(testKey)}, cookie.WithCORS(cors))
	require.NoError(t, err)
	// Round robin: a client placed anew never lands where the last one
	// did, with three apps.
	h, err := sticky.New(set, pol, sticky.WithPicker(&balancer.RoundRobin{}))
	require.NoError(t, err)

	acs := make(chan acsRequest, 4)
	front := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/acs" {
			var names []string
			for _, c := range r.Cookies() {
				names = append(names, c.Name)
			}
			slices.Sort(names)
			acs <- acsRequest{names, r.Header.Get("Sec-Fetch-Site")}
		}
		h.ServeHTTP(w, r)
	}))
	front.StartTLS()
	t.Cleanup(front.Close)
	_, spPort, err := net.SplitHostPort(front.Listener.Addr().String())
	require.NoError(t, err)
	sp := "https://" + net.JoinHostPort(spHost, spPort)

	idp := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		idpPage.Execute(w, sp+"/acs")
	}))
	idp.StartTLS()
	t.Cleanup(idp.Close)
	_, idpPort, err := net.SplitHostPort(idp.Listener.Addr().String())
	require.NoError(t, err)

	ctx := newBrowser(t,
		chromedp.Flag("host-resolver-rules", fmt.Sprintf("MAP %s 127.0.0.1, MAP %s 127.0.0.1, MAP * ~NOTFOUND, EXCLUDE 127.0.0.1", spHost, idpHost)),
		// httptest's certificate is for 127.0.0.1 and example.com, and
		// from no authority Chromium knows: the sites are HTTPS for
		// Secure and SameSite=None cookies, not for trust.
		chromedp.Flag("ignore-certificate-errors", true),
	)

	// Log in on the service provider: its session lives in one app.
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(sp+"/login?name=alice")))
	who, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#who")))
	require.NoError(t, err)
	home, _, ok := strings.Cut(strings.TrimPrefix(who, "server="), " ")
	require.True(t, ok, who)
	require.Equal(t, "server="+home+" user=alice cookies=", who, "the login page")

	// The cookies the browser keeps for the service provider.
	got, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{sp + "/"}})
	require.NoError(t, err)
	jar := map[string]*network.Cookie{}
	for _, c := range got.Cookies {
		jar[c.Name] = c
	}
	require.Contains(t, jar, "affinity")
	assert.Equal(t, network.CookieSameSiteLax, jar["affinity"].SameSite)
	assert.True(t, jar["affinity"].Secure, "over TLS, SecureAuto")
	if cors {
		twin := jar["affinity-cors"]
		require.NotNil(t, twin, "Chromium kept no twin cookie")
		assert.Equal(t, network.CookieSameSiteNone, twin.SameSite)
		assert.True(t, twin.Secure)
		assert.True(t, twin.HTTPOnly)
		assert.Equal(t, jar["affinity"].Value, twin.Value)
	} else {
		assert.NotContains(t, jar, "affinity-cors")
	}

	// Same-site, the affinity cookie is enough.
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(sp+"/whoami")))
	who, err = chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#who")))
	require.NoError(t, err)
	assert.Equal(t, "server="+home+" user=alice cookies="+spSessionCookie, who, "a same-site page")

	// The identity provider's page posts back, cross-site.
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate("https://"+net.JoinHostPort(idpHost, idpPort)+"/")))
	who, err = chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#who")))
	require.NoError(t, err)
	var req acsRequest
	select {
	case req = <-acs:
	default:
		t.Fatal("the page shows an answer, but the front saw no POST to /acs")
	}
	assert.Equal(t, "cross-site", req.site, "Sec-Fetch-Site of the POST")
	if cors {
		assert.Equal(t, []string{"affinity-cors", spSessionCookie}, req.cookies, "the POST's cookies: the twin, not the Lax cookie")
		assert.Equal(t, "server="+home+" user=alice cookies="+spSessionCookie, who, "the POST reached the session's app, without the proxy's cookies")
		return
	}
	assert.Equal(t, []string{spSessionCookie}, req.cookies, "the POST's cookies: not the Lax cookie")
	assert.NotContains(t, who, "server="+home+" ", "the POST reached the session's app without a binding")
	assert.Regexp(t, `^server=app[123] user= cookies=`+spSessionCookie+`$`, who, "placed anew, a stranger")
}
