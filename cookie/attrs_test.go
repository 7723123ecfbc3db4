package cookie_test

import (
	"crypto/tls"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/cookie"
	"github.com/affinitylb/affinity/policy"
)

// valueOf returns the value of the Set-Cookie line line.
func valueOf(t *testing.T, line string) string {
	t.Helper()
	ck, err := http.ParseSetCookie(line)
	require.NoError(t, err, line)
	return ck.Value
}

// TestCookiePartitionedLines checks the Set-Cookie lines of a Partitioned
// cookie, byte for byte: Partitioned last, as net/http writes it, and
// Secure even over plain HTTP.
func TestCookiePartitionedLines(t *testing.T) {
	b := newSet(t).Snapshot().Lookup("a")
	tests := []struct {
		name string
		opts []cookie.Option
		tls  bool
		want string // %s: the value
	}{
		{"plain HTTP", nil, false, "affinity=%s; Path=/; Expires=Sun, 01 Jun 2025 12:15:00 GMT; Max-Age=900; HttpOnly; Secure; SameSite=Lax; Partitioned"},
		{"TLS", nil, true, "affinity=%s; Path=/; Expires=Sun, 01 Jun 2025 12:15:00 GMT; Max-Age=900; HttpOnly; Secure; SameSite=Lax; Partitioned"},
		{"SameSite None", []cookie.Option{cookie.WithSameSite(http.SameSiteNoneMode)}, false, "affinity=%s; Path=/; Expires=Sun, 01 Jun 2025 12:15:00 GMT; Max-Age=900; HttpOnly; Secure; SameSite=None; Partitioned"},
		{"session, no SameSite", []cookie.Option{cookie.WithTTL(0), cookie.WithSameSite(http.SameSiteDefaultMode)}, false, "affinity=%s; Path=/; HttpOnly; Secure; Partitioned"},
		{"SecureAlways", []cookie.Option{cookie.WithSecure(cookie.SecureAlways)}, false, "affinity=%s; Path=/; Expires=Sun, 01 Jun 2025 12:15:00 GMT; Max-Age=900; HttpOnly; Secure; SameSite=Lax; Partitioned"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := &clock{now: t0}
			opts := append([]cookie.Option{cookie.WithClock(clk.Now), cookie.WithPartitioned(true)}, tt.opts...)
			c := newCookie(t, [][]byte{key1}, opts...)
			r := request()
			if tt.tls {
				r.TLS = &tls.ConnectionState{}
			}
			lines := save(c, r, b, policy.Binding{})
			require.Len(t, lines, 1)
			assert.Equal(t, strings.Replace(tt.want, "%s", valueOf(t, lines[0]), 1), lines[0])
			ck, err := http.ParseSetCookie(lines[0])
			require.NoError(t, err)
			assert.True(t, ck.Partitioned, "net/http reads it Partitioned")
		})
	}
}

// TestAppPartitionedDeletes checks that an App deletes a
// Partitioned cookie with Partitioned set, which a browser needs to reach
// the partitioned cookie, and sets it with Partitioned too.
func TestAppPartitionedDeletes(t *testing.T) {
	a := newApp(t, [][]byte{key1}, cookie.WithPartitioned(true))
	set := appSave(t, a, request(), "a", policy.Binding{}, "PHPSESSID=s1; Path=/")
	require.Len(t, set, 1)
	assert.Regexp(t, `^affinity=[A-Za-z0-9_-]{44}; Path=/; HttpOnly; Secure; SameSite=Lax; Partitioned$`, set[0])

	del := appSave(t, a, request(), "a", policy.Binding{}, "PHPSESSID=; Path=/; Max-Age=0")
	assert.Equal(t, []string{"affinity=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax; Partitioned"}, del)
}

// TestCookieCORSTwinLines checks the lines Save sets with WithCORS:
// the cookie's, then its twin's with the same value, SameSite=None and
// Secure, whatever the cookie's SameSite and Secure.
func TestCookieCORSTwinLines(t *testing.T) {
	b := newSet(t).Snapshot().Lookup("a")
	const exp = "Expires=Sun, 01 Jun 2025 12:15:00 GMT; Max-Age=900"
	tests := []struct {
		name       string
		opts       []cookie.Option
		tls        bool
		main, twin string // %s: the value
	}{
		{"defaults, plain HTTP", nil, false,
			"affinity=%s; Path=/; " + exp + "; HttpOnly; SameSite=Lax",
			"affinity-cors=%s; Path=/; " + exp + "; HttpOnly; Secure; SameSite=None"},
		{"defaults, TLS", nil, true,
			"affinity=%s; Path=/; " + exp + "; HttpOnly; Secure; SameSite=Lax",
			"affinity-cors=%s; Path=/; " + exp + "; HttpOnly; Secure; SameSite=None"},
		{"name, path, domain, Strict, not HttpOnly", []cookie.Option{cookie.WithName("lb"), cookie.WithPath("/app"), cookie.WithDomain("example.com"), cookie.WithSameSite(http.SameSiteStrictMode), cookie.WithHTTPOnly(false)}, false,
			"lb=%s; Path=/app; Domain=example.com; " + exp + "; SameSite=Strict",
			"lb-cors=%s; Path=/app; Domain=example.com; " + exp + "; Secure; SameSite=None"},
		{"partitioned", []cookie.Option{cookie.WithPartitioned(true)}, false,
			"affinity=%s; Path=/; " + exp + "; HttpOnly; Secure; SameSite=Lax; Partitioned",
			"affinity-cors=%s; Path=/; " + exp + "; HttpOnly; Secure; SameSite=None; Partitioned"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := &clock{now: t0}
			opts := append([]cookie.Option{cookie.WithClock(clk.Now), cookie.WithCORS(true)}, tt.opts...)
			c := newCookie(t, [][]byte{key1}, opts...)
			r := request()
			if tt.tls {
				r.TLS = &tls.ConnectionState{}
			}
			for i := range 2 { // signed, then from the lines kept for the second
				lines := save(c, r, b, policy.Binding{})
				require.Len(t, lines, 2, "save %d", i)
				v := valueOf(t, lines[0])
				assert.Equal(t, strings.Replace(tt.main, "%s", v, 1), lines[0], "save %d", i)
				assert.Equal(t, strings.Replace(tt.twin, "%s", v, 1), lines[1], "save %d", i)
			}
		})
	}
}

// TestCookieCORSTwinLookup checks when the twin is read: only from a
// request without the cookie itself, checked as the cookie is, so that an
// edited or forged twin binds nothing.
func TestCookieCORSTwinLookup(t *testing.T) {
	snap := newSet(t).Snapshot()
	clk := &clock{now: t0}
	c := newCookie(t, [][]byte{key1}, cookie.WithClock(clk.Now), cookie.WithCORS(true))
	plain := newCookie(t, [][]byte{key1}, cookie.WithClock(clk.Now))
	other := newCookie(t, [][]byte{key2}, cookie.WithClock(clk.Now), cookie.WithCORS(true))
	renamed := newCookie(t, [][]byte{key1}, cookie.WithClock(clk.Now), cookie.WithName("x"), cookie.WithCORS(true))
	forB := c.Issue("b")
	forC := c.Issue("c")

	tests := []struct {
		name    string
		c       *cookie.Policy
		headers []string
		want    policy.Binding
	}{
		{"twin alone", c, []string{"affinity-cors=" + forB}, policy.Binding{ID: "b", Status: policy.Valid}},
		{"twin among others", c, []string{"a=1; affinity-cors=" + forB + "; z=2"}, policy.Binding{ID: "b", Status: policy.Valid}},
		{"twin in a second line", c, []string{"a=1", "affinity-cors=" + forB}, policy.Binding{ID: "b", Status: policy.Valid}},
		{"cookie wins over twin", c, []string{"affinity-cors=" + forB + "; affinity=" + forC}, policy.Binding{ID: "c", Status: policy.Valid}},
		{"forged cookie: twin not read", c, []string{"affinity=" + withZeroTag(t, forC) + "; affinity-cors=" + forB}, policy.Binding{Status: policy.Forged}},
		{"empty cookie: twin not read", c, []string{"affinity=; affinity-cors=" + forB}, policy.Binding{Status: policy.Malformed}},
		{"edited twin", c, []string{"affinity-cors=" + withFirstByte(t, forB, 1)}, policy.Binding{Status: policy.Malformed}},
		{"zero-tag twin", c, []string{"affinity-cors=" + withZeroTag(t, forB)}, policy.Binding{Status: policy.Forged}},
		{"twin of another key", c, []string{"affinity-cors=" + other.Issue("b")}, policy.Binding{Status: policy.Forged}},
		{"twin signed for another name", c, []string{"affinity-cors=" + renamed.Issue("b")}, policy.Binding{Status: policy.Forged}},
		{"garbage twin", c, []string{"affinity-cors=hello"}, policy.Binding{Status: policy.Malformed}},
		{"twin without the option", plain, []string{"affinity-cors=" + forB}, policy.Binding{Status: policy.None}},
		{"neither", c, []string{"a=1; affinityX-cors=" + forB}, policy.Binding{Status: policy.None}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, unseeded(tt.c.Lookup(request(tt.headers...), snap)))
		})
	}

	t.Run("a refused twin is placed anew", func(t *testing.T) {
		r := request("affinity-cors=" + withZeroTag(t, forB))
		prev := c.Lookup(r, snap)
		require.Equal(t, policy.Forged, prev.Status)
		lines := save(c, r, snap.Lookup("a"), prev)
		require.Len(t, lines, 2)
		assert.True(t, strings.HasPrefix(lines[0], "affinity="), lines[0])
		assert.True(t, strings.HasPrefix(lines[1], "affinity-cors="), lines[1])
		assert.Equal(t, policy.Binding{ID: "a", Status: policy.Valid}, unseeded(c.Lookup(request("affinity-cors="+valueOf(t, lines[1])), snap)))
	})
	t.Run("a valid twin needs no new cookie", func(t *testing.T) {
		r := request("affinity-cors=" + forB)
		prev := c.Lookup(r, snap)
		require.Equal(t, policy.Valid, prev.Status)
		assert.Empty(t, save(c, r, snap.Lookup("b"), prev))
	})
}

// TestCookieCORSTwinRefreshKeepsAge checks that a binding read from the
// twin alone and refreshed by sliding expiry keeps its age, as one read
// from the cookie does.
func TestCookieCORSTwinRefreshKeepsAge(t *testing.T) {
	snap := newSet(t).Snapshot()
	clk := &clock{now: t0}
	c := newCookie(t, [][]byte{key1}, cookie.WithClock(clk.Now), cookie.WithCORS(true), cookie.WithTTL(10*time.Minute))
	v := c.Issue("b")
	clk.Advance(6 * time.Minute)
	r := request("affinity-cors=" + v)
	prev := c.Lookup(r, snap)
	require.Equal(t, policy.Binding{ID: "b", Status: policy.Valid, Refresh: true}, unseeded(prev))
	lines := save(c, r, snap.Lookup("b"), prev)
	require.Len(t, lines, 2)
	assert.Equal(t, t0.Unix(), issued(t, valueOf(t, lines[0])), "the binding's age")
	assert.Equal(t, valueOf(t, lines[0]), valueOf(t, lines[1]))
}

// TestAppCORSTwin checks that an App sets, re-signs, takes over
// and deletes the twin with its cookie.
func TestAppCORSTwin(t *testing.T) {
	a := newApp(t, [][]byte{key1}, cookie.WithCORS(true), cookie.WithPath("/app"))
	old := newCookie(t, [][]byte{key2})
	rotated := newApp(t, [][]byte{key1, key2}, cookie.WithCORS(true), cookie.WithPath("/app"))
	snap := newSet(t).Snapshot()

	set := appSave(t, a, request(), "a", policy.Binding{}, "PHPSESSID=s1; Max-Age=60")
	require.Len(t, set, 2)
	v := valueOf(t, set[0])
	assert.Regexp(t, `^affinity=[A-Za-z0-9_-]{44}; Path=/app; Expires=[^;]+; Max-Age=60; HttpOnly; SameSite=Lax$`, set[0])
	assert.Equal(t, strings.Replace(strings.Replace(set[0], "affinity=", "affinity-cors=", 1), "; SameSite=Lax", "; Secure; SameSite=None", 1), set[1])
	assert.Equal(t, v, valueOf(t, set[1]))

	del := appSave(t, a, request(), "a", policy.Binding{}, "PHPSESSID=; Max-Age=0")
	assert.Equal(t, []string{
		"affinity=; Path=/app; Max-Age=0; HttpOnly; SameSite=Lax",
		"affinity-cors=; Path=/app; Max-Age=0; HttpOnly; Secure; SameSite=None",
	}, del, "both deleted")

	// A twin signed with the old key is re-signed, with its cookie.
	r := request("affinity-cors=" + old.Issue("a"))
	prev := rotated.Lookup(r, snap)
	require.Equal(t, policy.Binding{ID: "a", Status: policy.Valid, Refresh: true}, unseeded(prev))
	resigned := appSave(t, rotated, r, "a", prev)
	require.Len(t, resigned, 2)
	assert.True(t, strings.HasPrefix(resigned[1], "affinity-cors="), resigned[1])
	assert.Equal(t, policy.Binding{ID: "a", Status: policy.Valid}, unseeded(a.Lookup(request("affinity-cors="+valueOf(t, resigned[1])), snap)))

	// A session the application keeps without a binding is taken over,
	// with both cookies.
	r = request("PHPSESSID=s1")
	took := appSave(t, a, r, "b", a.Lookup(r, snap))
	require.Len(t, took, 2)
	assert.Equal(t, policy.Binding{ID: "b", Status: policy.Valid}, unseeded(a.Lookup(request("affinity="+valueOf(t, took[0])), snap)))
	assert.Equal(t, policy.Binding{ID: "b", Status: policy.Valid}, unseeded(a.Lookup(request("affinity-cors="+valueOf(t, took[1])), snap)))
}

// TestCookieStripsTwin checks that Strip removes the cookie and its twin,
// for a Policy and an App, and leaves the other cookies.
func TestCookieStripsTwin(t *testing.T) {
	c := newCookie(t, [][]byte{key1}, cookie.WithCORS(true))
	a := newApp(t, [][]byte{key1}, cookie.WithCORS(true))
	plain := newCookie(t, [][]byte{key1})
	v := c.Issue("a")
	tests := []struct {
		name  string
		s     policy.Stripper
		lines []string
		want  []string // nil: no Cookie header left
	}{
		{"both", c, []string{"affinity=" + v + "; affinity-cors=" + v}, nil},
		{"twin alone", c, []string{"affinity-cors=" + v}, nil},
		{"among others", c, []string{"a=1; affinity-cors=" + v + "; PHPSESSID=s1; affinity=" + v + "; b=2"}, []string{"a=1; PHPSESSID=s1; b=2"}},
		{"in several lines", c, []string{"affinity=" + v, "x=1; affinity-cors=" + v}, []string{"x=1"}},
		{"app cookie", a, []string{"PHPSESSID=s1; affinity-cors=" + v + "; affinity=" + v}, []string{"PHPSESSID=s1"}},
		{"twin left without the option", plain, []string{"affinity=" + v + "; affinity-cors=" + v}, []string{"affinity-cors=" + v}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := request(tt.lines...).Header
			tt.s.Strip(h)
			assert.Equal(t, tt.want, h["Cookie"])
		})
	}
}

// TestCookieAttrOptionErrors checks that the options this file covers are
// refused where browsers would drop the cookie.
func TestCookieAttrOptionErrors(t *testing.T) {
	tests := []struct {
		name    string
		app     string // "": a Cookie
		opts    []cookie.Option
		wantErr string
	}{
		{"Partitioned, never Secure", "", []cookie.Option{cookie.WithPartitioned(true), cookie.WithSecure(cookie.SecureNever)}, "Partitioned cookie requires Secure"},
		{"CORS twin, never Secure", "", []cookie.Option{cookie.WithCORS(true), cookie.WithSecure(cookie.SecureNever)}, "CORS twin cookie is always Secure"},
		{"app: Partitioned, never Secure", "sid", []cookie.Option{cookie.WithPartitioned(true), cookie.WithSecure(cookie.SecureNever)}, "Partitioned cookie requires Secure"},
		{"app: CORS twin, never Secure", "sid", []cookie.Option{cookie.WithCORS(true), cookie.WithSecure(cookie.SecureNever)}, "CORS twin cookie is always Secure"},
		{"app named as the twin", "affinity-cors", []cookie.Option{cookie.WithCORS(true)}, `"affinity-cors" is also the balancer cookie's CORS twin's`},
		{"app named as a renamed twin", "lb-cors", []cookie.Option{cookie.WithName("lb"), cookie.WithCORS(true)}, `"lb-cors" is also the balancer cookie's CORS twin's`},
		{"domain with empty label", "", []cookie.Option{cookie.WithDomain("a..com")}, `WithDomain("a..com"): has an empty label`},
		{"domain ending with a dot", "", []cookie.Option{cookie.WithDomain("a.com.")}, "has an empty label"},
		{"domain of a dot", "", []cookie.Option{cookie.WithDomain(".")}, "has an empty label"},
		{"domain with two leading dots", "", []cookie.Option{cookie.WithDomain("..a.com")}, "has an empty label"},
		{"domain label with leading hyphen", "", []cookie.Option{cookie.WithDomain("-a.com")}, "beginning or ending with '-'"},
		{"domain label with trailing hyphen", "", []cookie.Option{cookie.WithDomain("a-.com")}, "beginning or ending with '-'"},
		{"domain label over 63", "", []cookie.Option{cookie.WithDomain(strings.Repeat("a", 64) + ".com")}, "label over 63 bytes"},
		{"domain over 255", "", []cookie.Option{cookie.WithDomain(strings.Repeat("abcdefgh.", 29) + "com")}, "over 255 bytes"},
		{"domain all digits", "", []cookie.Option{cookie.WithDomain("1.2.3")}, "last label is all digits"},
		{"domain with a colon", "", []cookie.Option{cookie.WithDomain("a.com:80")}, "character ':'"},
		{"domain with a slash", "", []cookie.Option{cookie.WithDomain("a.com/x")}, "character '/'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var (
				p   any
				err error
			)
			if tt.app == "" {
				p, err = cookie.New([][]byte{key1}, tt.opts...)
			} else {
				p, err = cookie.NewApp(tt.app, [][]byte{key1}, tt.opts...)
			}
			require.Error(t, err, "%v", p)
			assert.Contains(t, err.Error(), tt.wantErr)
			assert.True(t, strings.HasPrefix(err.Error(), "cookie: "), err.Error())
		})
	}
}

// TestCookieDomainsAccepted checks Domain values a browser takes.
func TestCookieDomainsAccepted(t *testing.T) {
	for _, d := range []string{"", "example.com", ".example.com", "EXAMPLE.com", "a-b.c_d.example", "localhost", "xn--bcher-kva.example", "127.0.0.1", "::1", strings.Repeat("a", 63) + ".com"} {
		t.Run(d, func(t *testing.T) {
			c, err := cookie.New([][]byte{key1}, cookie.WithDomain(d))
			require.NoError(t, err)
			_, raw := saveOne(t, c, request(), newSet(t).Snapshot().Lookup("a"))
			if d == "" {
				assert.NotContains(t, raw, "Domain")
			} else {
				assert.Contains(t, raw, "; Domain="+d+";")
			}
		})
	}
}
