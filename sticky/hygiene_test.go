package sticky_test

import (
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
		{"the backend's by default", nil, func(_, back string) string { return back }},
		{"the client's on request", []sticky.Option{sticky.WithPreserveHost(true)}, func(front, _ string) string { return front }},
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
