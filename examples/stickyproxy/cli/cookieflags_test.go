package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/cookie"
)

// setCookies builds the policy cfg describes and returns the Set-Cookie
// lines it adds to a response binding a new client to a backend, for a
// request over TLS or plain HTTP, the application having set appLine (for
// appcookie).
func setCookies(t *testing.T, cfg config, overTLS bool, appLine string) []string {
	t.Helper()
	pol, err := newPolicy(cfg)
	require.NoError(t, err)
	set, err := backend.NewSet([]backend.Config{{ID: "app1", URL: "http://127.0.0.1:1"}})
	require.NoError(t, err)
	snap := set.Snapshot()
	r := httptest.NewRequest(http.MethodGet, "http://example.com/", nil)
	if overTLS {
		r.TLS = &tls.ConnectionState{}
	}
	resp := &http.Response{Header: http.Header{}}
	if appLine != "" {
		resp.Header.Add("Set-Cookie", appLine)
	}
	pol.Save(r, resp, snap.Lookup("app1"), pol.Lookup(r, snap))
	lines := resp.Header.Values("Set-Cookie")
	if appLine != "" {
		require.NotEmpty(t, lines)
		lines = lines[1:]
	}
	return lines
}

// value matches a cookie value, which the tests do not compare.
var value = regexp.MustCompile(`=[A-Za-z0-9_-]{44};`)

// TestCookieAttrFlags checks each cookie attribute flag by the Set-Cookie
// lines of the policy it configures, value left out.
func TestCookieAttrFlags(t *testing.T) {
	const exp = "; Expires=X; Max-Age=900"
	tests := []struct {
		name    string
		args    []string
		tls     bool
		appLine string   // appcookie: the application's Set-Cookie line
		want    []string // the lines, value as =V; and Expires as X
	}{
		{"defaults, plain HTTP", nil, false, "", []string{"affinity=V; Path=/" + exp + "; HttpOnly; SameSite=Lax"}},
		{"defaults, TLS", nil, true, "", []string{"affinity=V; Path=/" + exp + "; HttpOnly; Secure; SameSite=Lax"}},
		{"explicit defaults", []string{"-cookie-secure", "auto", "-cookie-samesite", "lax", "-cookie-partitioned=false", "-cookie-cors=false"}, false, "", []string{"affinity=V; Path=/" + exp + "; HttpOnly; SameSite=Lax"}},
		{"secure always", []string{"-cookie-secure", "always"}, false, "", []string{"affinity=V; Path=/" + exp + "; HttpOnly; Secure; SameSite=Lax"}},
		{"secure never, TLS", []string{"-cookie-secure", "never"}, true, "", []string{"affinity=V; Path=/" + exp + "; HttpOnly; SameSite=Lax"}},
		{"samesite strict", []string{"-cookie-samesite", "strict"}, false, "", []string{"affinity=V; Path=/" + exp + "; HttpOnly; SameSite=Strict"}},
		{"samesite none forces Secure", []string{"-cookie-samesite", "none"}, false, "", []string{"affinity=V; Path=/" + exp + "; HttpOnly; Secure; SameSite=None"}},
		{"path and domain", []string{"-cookie-path", "/shop", "-cookie-domain", "example.com"}, false, "", []string{"affinity=V; Path=/shop; Domain=example.com" + exp + "; HttpOnly; SameSite=Lax"}},
		{"leading-dot domain", []string{"-cookie-domain", ".example.com"}, false, "", []string{"affinity=V; Path=/; Domain=.example.com" + exp + "; HttpOnly; SameSite=Lax"}},
		{"partitioned implies Secure", []string{"-cookie-partitioned"}, false, "", []string{"affinity=V; Path=/" + exp + "; HttpOnly; Secure; SameSite=Lax; Partitioned"}},
		{"cors", []string{"-cookie-cors"}, false, "", []string{
			"affinity=V; Path=/" + exp + "; HttpOnly; SameSite=Lax",
			"affinity-cors=V; Path=/" + exp + "; HttpOnly; Secure; SameSite=None",
		}},
		{"cors, renamed, strict, partitioned", []string{"-cookie-name", "lb", "-cookie-cors", "-cookie-samesite", "strict", "-cookie-partitioned"}, false, "", []string{
			"lb=V; Path=/" + exp + "; HttpOnly; Secure; SameSite=Strict; Partitioned",
			"lb-cors=V; Path=/" + exp + "; HttpOnly; Secure; SameSite=None; Partitioned",
		}},
		{"appcookie: application's path by default", []string{"-policy", "appcookie", "-app-cookie", "sid", "-cookie-cors"}, false, "sid=1; Path=/app", []string{
			"affinity=V; Path=/app; HttpOnly; SameSite=Lax",
			"affinity-cors=V; Path=/app; HttpOnly; Secure; SameSite=None",
		}},
		{"appcookie: -cookie-path wins", []string{"-policy", "appcookie", "-app-cookie", "sid", "-cookie-path", "/", "-cookie-secure", "always"}, false, "sid=1; Path=/app", []string{"affinity=V; Path=/; HttpOnly; Secure; SameSite=Lax"}},
		{"appcookie: deletes both, partitioned", []string{"-policy", "appcookie", "-app-cookie", "sid", "-cookie-cors", "-cookie-partitioned"}, false, "sid=; Path=/; Max-Age=0", []string{
			"affinity=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax; Partitioned",
			"affinity-cors=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=None; Partitioned",
		}},
	}
	expires := regexp.MustCompile(`; Expires=[^;]+`)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseFlags(append([]string{"-key", testKey}, tt.args...), nil)
			require.NoError(t, err)
			var got []string
			for _, l := range setCookies(t, cfg, tt.tls, tt.appLine) {
				got = append(got, expires.ReplaceAllString(value.ReplaceAllString(l, "=V;"), "; Expires=X"))
			}
			assert.Equal(t, tt.want, got)
		})
	}
}

// TestCookieAttrFlagsConfig checks what the flags put in the
// configuration.
func TestCookieAttrFlagsConfig(t *testing.T) {
	cfg, err := parseFlags([]string{"-key", testKey, "-cookie-secure", "always", "-cookie-samesite", "strict", "-cookie-path", "/a", "-cookie-domain", "example.com", "-cookie-partitioned", "-cookie-cors"}, nil)
	require.NoError(t, err)
	assert.Equal(t, cookieAttrs{secure: cookie.SecureAlways, sameSite: http.SameSiteStrictMode, path: "/a", domain: "example.com", partitioned: true, cors: true}, cfg.cookieAttrs)
	assert.Empty(t, cfg.warnings)

	cfg, err = parseFlags([]string{"-key", testKey, "-cookie-samesite", "none", "-cookie-cors"}, nil)
	require.NoError(t, err)
	require.Len(t, cfg.warnings, 1)
	assert.Contains(t, cfg.warnings[0], "-cookie-cors with -cookie-samesite none")

	cfg, err = parseFlags([]string{"-policy", "ip"}, nil)
	require.NoError(t, err)
	assert.Equal(t, cookieAttrs{}, cfg.cookieAttrs, "the library's defaults")
}

// TestCookieAttrFlagsInvalid checks that every bad value and combination
// exits with status 2 and one line naming the flag and the value.
func TestCookieAttrFlagsInvalid(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"secure: unknown", []string{"-cookie-secure", "sometimes"}, `invalid value "sometimes" for -cookie-secure: want auto, always or never`},
		{"secure: empty", []string{"-cookie-secure", ""}, `invalid value "" for -cookie-secure`},
		{"secure: upper case", []string{"-cookie-secure", "Always"}, `invalid value "Always" for -cookie-secure`},
		{"secure: a bool", []string{"-cookie-secure", "true"}, `invalid value "true" for -cookie-secure`},
		{"samesite: unknown", []string{"-cookie-samesite", "loose"}, `invalid value "loose" for -cookie-samesite: want lax, strict or none`},
		{"samesite: empty", []string{"-cookie-samesite", ""}, `invalid value "" for -cookie-samesite`},
		{"samesite: upper case", []string{"-cookie-samesite", "None"}, `invalid value "None" for -cookie-samesite`},
		{"samesite none, secure never", []string{"-cookie-samesite", "none", "-cookie-secure", "never"}, `invalid value "never" for -cookie-secure: -cookie-samesite none requires Secure cookies`},
		{"partitioned, secure never", []string{"-cookie-partitioned", "-cookie-secure", "never"}, `invalid value "never" for -cookie-secure: -cookie-partitioned requires Secure cookies`},
		{"cors, secure never", []string{"-cookie-cors", "-cookie-secure", "never"}, `invalid value "never" for -cookie-secure: the twin cookie of -cookie-cors is always Secure`},
		{"partitioned: not a bool", []string{"-cookie-partitioned=maybe"}, `"maybe" for -cookie-partitioned`},
		{"cors: not a bool", []string{"-cookie-cors=2"}, `"2" for -cookie-cors`},
		{"path: relative", []string{"-cookie-path", "shop"}, `invalid value "shop" for -cookie-path: cookie: WithPath("shop"): does not begin with '/'`},
		{"path: empty", []string{"-cookie-path", ""}, `invalid value "" for -cookie-path: empty`},
		{"path: semicolon", []string{"-cookie-path", "/a;Domain=evil"}, `invalid value "/a;Domain=evil" for -cookie-path`},
		{"path: control", []string{"-cookie-path", "/a\tb"}, `for -cookie-path: cookie: WithPath("/a\tb"): character '\t'`},
		{"domain: empty", []string{"-cookie-domain", ""}, `invalid value "" for -cookie-domain: empty`},
		{"domain: semicolon", []string{"-cookie-domain", "a.com;x"}, `invalid value "a.com;x" for -cookie-domain`},
		{"domain: port", []string{"-cookie-domain", "a.com:443"}, `invalid value "a.com:443" for -cookie-domain`},
		{"domain: URL", []string{"-cookie-domain", "https://a.com"}, `invalid value "https://a.com" for -cookie-domain`},
		{"domain: empty label", []string{"-cookie-domain", "a..com"}, `invalid value "a..com" for -cookie-domain: cookie: WithDomain("a..com"): has an empty label`},
		{"domain: trailing dot", []string{"-cookie-domain", "a.com."}, `invalid value "a.com." for -cookie-domain`},
		{"domain: hyphen", []string{"-cookie-domain", "-a.com"}, `invalid value "-a.com" for -cookie-domain`},
		{"domain: all digits", []string{"-cookie-domain", "1.2.3"}, `invalid value "1.2.3" for -cookie-domain`},
		{"domain: non-ASCII", []string{"-cookie-domain", "bücher.example"}, `invalid value "bücher.example" for -cookie-domain`},
		{"app cookie named as the twin", []string{"-policy", "appcookie", "-app-cookie", "affinity-cors", "-cookie-cors"}, `invalid value "affinity-cors" for -app-cookie: it is the name of the affinity cookie's twin`},
		{"app cookie named as a renamed twin", []string{"-policy", "appcookie", "-app-cookie", "lb-cors", "-cookie-name", "lb", "-cookie-cors"}, `invalid value "lb-cors" for -app-cookie`},
	}
	for _, f := range []string{"-cookie-secure always", "-cookie-samesite lax", "-cookie-path /", "-cookie-domain example.com", "-cookie-partitioned", "-cookie-cors"} {
		for _, other := range [][]string{{"-policy", "ip"}, {"-policy", "header", "-header", "X"}, {"-policy", "query", "-query", "k"}} {
			tests = append(tests, struct {
				name string
				args []string
				want string
			}{f + " with " + other[1], append(other, strings.Fields(f)...), strings.Fields(f)[0] + " needs -policy cookie or appcookie"})
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var help bytes.Buffer
			_, err := parseFlags(tt.args, &help)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.Empty(t, help.String(), "no usage on errors")

			var stdout, stderr bytes.Buffer
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			status := run(ctx, append([]string{"-key", testKey}, tt.args...), &stdout, &stderr, func(listening) { t.Error("proxy started") })
			assert.Equal(t, 2, status)
			assert.Equal(t, 1, strings.Count(stderr.String(), "\n"), "one line: %q", stderr.String())
			assert.True(t, strings.HasPrefix(stderr.String(), "stickyproxy: "), stderr.String())
			assert.Contains(t, stderr.String(), tt.want)
		})
	}
}

// TestCookieAttrFlagsHelp checks that -h documents the flags.
func TestCookieAttrFlagsHelp(t *testing.T) {
	var help bytes.Buffer
	_, err := parseFlags([]string{"-h"}, &help)
	require.Error(t, err)
	for _, f := range []string{"-cookie-secure when", "-cookie-samesite mode", "-cookie-path path", "-cookie-domain name", "-cookie-partitioned", "-cookie-cors", `(default "auto")`, `(default "lax")`} {
		assert.Contains(t, help.String(), f)
	}
}
