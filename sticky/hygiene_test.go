package sticky_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/sticky"
)

// echo is a backend that remembers the headers of the last request it got
// and answers with the given Cache-Control.
type echo struct {
	mu           sync.Mutex
	cookie, xff  string
	cacheControl string
}

func (e *echo) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	e.cookie, e.xff = r.Header.Get("Cookie"), r.Header.Get("X-Forwarded-For")
	cc := e.cacheControl
	e.mu.Unlock()
	if cc != "" {
		w.Header().Set("Cache-Control", cc)
	}
}

func (e *echo) seen() (cookie, xff string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.cookie, e.xff
}

func echoHandler(t *testing.T, e *echo, opts ...sticky.Option) (string, *http.Cookie) {
	t.Helper()
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	set, err := backend.NewSet([]backend.Config{{ID: "echo", URL: srv.URL}})
	require.NoError(t, err)
	ck := newCookie(t)
	h, err := sticky.New(set, ck, opts...)
	require.NoError(t, err)
	return front(t, h), &http.Cookie{Name: ck.Name(), Value: ck.Issue("echo")}
}

func TestBindingCookieIsNotForwarded(t *testing.T) {
	app := &http.Cookie{Name: "PHPSESSID", Value: "abc"}
	for _, tc := range []struct {
		name string
		opts []sticky.Option
		want string
	}{
		{"stripped by default", nil, "PHPSESSID=abc"},
		{"forwarded on request", []sticky.Option{sticky.WithForwardedBinding(true)}, "PHPSESSID=abc; affinity="},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := &echo{}
			base, bound := echoHandler(t, e, tc.opts...)
			w := get(t, newClient(t, false), base+"/", app, bound)
			require.Equal(t, http.StatusOK, w.status)
			cookie, _ := e.seen()
			assert.Contains(t, cookie, tc.want)
			if len(tc.opts) == 0 {
				assert.NotContains(t, cookie, "affinity")
			}
		})
	}
}

func TestResponsesThatBindAreNotCacheableBySharedCaches(t *testing.T) {
	for _, tc := range []struct {
		name    string
		backend string // the backend's Cache-Control
		bound   bool   // the request carries a valid binding: nothing is set
		want    string
	}{
		{"none", "", false, "private"},
		{"public with max-age", "public, max-age=60", false, "max-age=60, private"},
		{"s-maxage", "max-age=10, s-maxage=60", false, "max-age=10, private"},
		{"already private", "private, max-age=5", false, "private, max-age=5"},
		// private with field names lets a shared cache store the rest,
		// the binding's Set-Cookie included.
		{"private for some fields", `private="X-Internal", max-age=60`, false, `private="X-Internal", max-age=60, private`},
		{"no-store", "no-store", false, "no-store"},
		{"no binding set: untouched", "public, max-age=60", true, "public, max-age=60"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := &echo{cacheControl: tc.backend}
			base, bound := echoHandler(t, e)
			var cookies []*http.Cookie
			if tc.bound {
				cookies = append(cookies, bound)
			}
			w := get(t, newClient(t, false), base+"/", cookies...)
			assert.Equal(t, tc.bound, balancerCookie(w.header, "affinity") == nil)
			assert.Equal(t, tc.want, w.header.Get("Cache-Control"))
		})
	}
}

func TestXForwardedForIsExtendedOnlyForTrustedProxies(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []sticky.Option
		want string
	}{
		{"untrusted peer: replaced", nil, "127.0.0.1"},
		{"trusted peer: appended", []sticky.Option{sticky.WithTrustedProxies(netip.MustParsePrefix("127.0.0.0/8"))}, "203.0.113.9, 127.0.0.1"},
		{"peer not among the trusted: replaced", []sticky.Option{sticky.WithTrustedProxies(netip.MustParsePrefix("10.0.0.0/8"))}, "127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := &echo{}
			base, _ := echoHandler(t, e, tc.opts...)
			req, err := http.NewRequest(http.MethodGet, base+"/", nil)
			require.NoError(t, err)
			req.Header.Set("X-Forwarded-For", "203.0.113.9")
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			require.NoError(t, resp.Body.Close())
			_, xff := e.seen()
			assert.Equal(t, tc.want, xff)
		})
	}
	_, err := sticky.New(new(backend.Set), newCookie(t), sticky.WithTrustedProxies(netip.Prefix{}))
	assert.ErrorContains(t, err, "invalid prefix")
}

func TestHostHeader(t *testing.T) {
	for _, tc := range []struct {
		name     string
		opts     []sticky.Option
		wantHost func(front, back string) string
	}{
		{"the client's by default", nil, func(front, _ string) string { return front }},
		{"the backend's on request", []sticky.Option{sticky.WithPreserveHost(false)}, func(_, back string) string { return back }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got, fwd string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got, fwd = r.Host, r.Header.Get("X-Forwarded-Host")
			}))
			t.Cleanup(srv.Close)
			set, err := backend.NewSet([]backend.Config{{ID: "a", URL: srv.URL}})
			require.NoError(t, err)
			h, err := sticky.New(set, newCookie(t), tc.opts...)
			require.NoError(t, err)
			base := front(t, h)
			get(t, newClient(t, false), base+"/")
			frontHost, backHost := strings.TrimPrefix(base, "http://"), strings.TrimPrefix(srv.URL, "http://")
			assert.Equal(t, tc.wantHost(frontHost, backHost), got)
			assert.Equal(t, frontHost, fwd)
		})
	}
}

// clientFrom returns a client whose connections come from the address
// ip, on 127.0.0.0/8, so that the handler sees a peer of its own.
func clientFrom(t *testing.T, ip string) *http.Client {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	tr := &http.Transport{DialContext: d.DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// TestForwardingHeadersAreBelievedOnlyFromTrustedProxies checks, with
// 127.0.0.2 trusted, what the backend sees of the forwarding headers a
// client sends, and whether the binding cookie is Secure: from the
// trusted peer they are kept and extended, and its X-Forwarded-Proto:
// https makes the cookie Secure; from any other peer they are replaced.
func TestForwardingHeadersAreBelievedOnlyFromTrustedProxies(t *testing.T) {
	var mu sync.Mutex
	var seen http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		seen = r.Header.Clone()
	}))
	t.Cleanup(srv.Close)
	set, err := backend.NewSet([]backend.Config{{ID: "a", URL: srv.URL}})
	require.NoError(t, err)
	h, err := sticky.New(set, newCookie(t), sticky.WithTrustedProxies(netip.MustParsePrefix("127.0.0.2/32")))
	require.NoError(t, err)
	base := front(t, h)
	host := strings.TrimPrefix(base, "http://")

	for _, tc := range []struct {
		peer         string
		xff, fwd     string
		proto, fhost string
		realIP, port string
		secure       bool
	}{
		{"127.0.0.2", "203.0.113.9, 127.0.0.2", "for=203.0.113.9, for=127.0.0.2", "https", "shop.example", "203.0.113.9", "443", true},
		{"127.0.0.3", "127.0.0.3", "", "http", host, "", "", false},
	} {
		t.Run(tc.peer, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, base+"/", nil)
			require.NoError(t, err)
			req.Header.Set("X-Forwarded-For", "203.0.113.9")
			req.Header.Set("Forwarded", "for=203.0.113.9")
			req.Header.Set("X-Forwarded-Proto", "https")
			req.Header.Set("X-Forwarded-Host", "shop.example")
			req.Header.Set("X-Real-IP", "203.0.113.9")
			req.Header.Set("X-Forwarded-Port", "443")
			resp, err := clientFrom(t, tc.peer).Do(req)
			require.NoError(t, err)
			require.NoError(t, resp.Body.Close())
			require.Equal(t, http.StatusOK, resp.StatusCode)

			mu.Lock()
			defer mu.Unlock()
			assert.Equal(t, tc.xff, seen.Get("X-Forwarded-For"))
			assert.Len(t, seen["X-Forwarded-For"], 1, "one X-Forwarded-For line")
			assert.Equal(t, tc.fwd, seen.Get("Forwarded"))
			assert.Equal(t, tc.proto, seen.Get("X-Forwarded-Proto"))
			assert.Equal(t, tc.fhost, seen.Get("X-Forwarded-Host"))
			assert.Equal(t, tc.realIP, seen.Get("X-Real-Ip"))
			assert.Equal(t, tc.port, seen.Get("X-Forwarded-Port"))
			ck := balancerCookie(resp.Header, "affinity")
			require.NotNil(t, ck)
			assert.Equal(t, tc.secure, ck.Secure, "Secure")
		})
	}
}

// TestH2CUpgradeIsNotForwarded checks that a client's request to upgrade
// to cleartext HTTP/2 reaches the backend as a plain request, while a
// WebSocket's upgrade is forwarded.
func TestH2CUpgradeIsNotForwarded(t *testing.T) {
	var mu sync.Mutex
	var seen http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		seen = r.Header.Clone()
	}))
	t.Cleanup(srv.Close)
	set, err := backend.NewSet([]backend.Config{{ID: "a", URL: srv.URL}})
	require.NoError(t, err)
	h, err := sticky.New(set, newCookie(t))
	require.NoError(t, err)
	base := front(t, h)

	for _, up := range []string{"h2c", "H2C", "foo, h2c"} {
		req, err := http.NewRequest(http.MethodGet, base+"/", nil)
		require.NoError(t, err)
		req.Header.Set("Connection", "Upgrade, HTTP2-Settings")
		req.Header.Set("Upgrade", up)
		req.Header.Set("HTTP2-Settings", "AAMAAABkAAQAAP__")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		assert.Equal(t, http.StatusOK, resp.StatusCode, up)
		mu.Lock()
		for _, k := range []string{"Upgrade", "Http2-Settings", "Connection"} {
			assert.Empty(t, seen[k], "%s forwarded for Upgrade: %s", k, up)
		}
		mu.Unlock()
	}
}
