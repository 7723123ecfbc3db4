package cookie_test

import (
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/cookie"
	"github.com/affinitylb/affinity/policy"
)

var (
	key1 = []byte("key one: 32 bytes of test secret")
	key2 = []byte("key two: 32 bytes of test secret")
)

// t0 is when the test clocks start, on a whole second.
var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// clock is a settable clock for one test goroutine.
type clock struct{ now time.Time }

func (c *clock) Now() time.Time          { return c.now }
func (c *clock) Advance(d time.Duration) { c.now = c.now.Add(d) }

func newSet(t testing.TB) *backend.Set {
	t.Helper()
	set, err := backend.NewSet([]backend.Config{
		{ID: "a", URL: "http://127.0.0.1:1"},
		{ID: "b", URL: "http://127.0.0.1:2"},
		{ID: "c", URL: "http://127.0.0.1:3"},
	})
	require.NoError(t, err)
	return set
}

func newCookie(t testing.TB, keys [][]byte, opts ...cookie.Option) *cookie.Policy {
	t.Helper()
	c, err := cookie.New(keys, opts...)
	require.NoError(t, err)
	return c
}

// request returns a request carrying the given Cookie header lines.
func request(lines ...string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "http://example.com/", nil)
	for _, l := range lines {
		r.Header.Add("Cookie", l)
	}
	return r
}

// save calls c.Save and returns the Set-Cookie lines it added.
func save(c *cookie.Policy, r *http.Request, b *backend.Backend, prev policy.Binding) []string {
	resp := &http.Response{Header: http.Header{}}
	c.Save(r, resp, b, prev)
	return resp.Header.Values("Set-Cookie")
}

// saveOne calls c.Save for a client bound to nothing and returns the one
// cookie it set, parsed, and the raw header.
func saveOne(t *testing.T, c *cookie.Policy, r *http.Request, b *backend.Backend) (*http.Cookie, string) {
	t.Helper()
	lines := save(c, r, b, policy.Binding{})
	require.Len(t, lines, 1)
	ck, err := http.ParseSetCookie(lines[0])
	require.NoError(t, err)
	return ck, lines[0]
}

func TestCookieRoundTrip(t *testing.T) {
	set := newSet(t)
	c := newCookie(t, [][]byte{key1})
	for _, b := range set.Snapshot().Backends() {
		t.Run(b.ID(), func(t *testing.T) {
			ck, _ := saveOne(t, c, request(), b)
			assert.Equal(t, "affinity", ck.Name)
			assert.Len(t, ck.Value, 44)

			got := c.Lookup(request("x=1; "+ck.String()+"; y=2"), set.Snapshot())
			assert.Equal(t, policy.Binding{ID: b.ID(), Status: policy.Valid}, unseeded(got))
		})
	}
}

func TestCookieLookupStatus(t *testing.T) {
	set := newSet(t)
	snap := set.Snapshot()
	clk := &clock{now: t0}
	c := newCookie(t, [][]byte{key1}, cookie.WithClock(clk.Now), cookie.WithTTL(time.Minute))
	valid := c.Issue("b")
	other := newCookie(t, [][]byte{key2}, cookie.WithClock(clk.Now))
	renamed := newCookie(t, [][]byte{key1}, cookie.WithClock(clk.Now), cookie.WithName("other"))

	tests := []struct {
		name   string
		header string
		want   policy.Binding
	}{
		{"no cookie", "", policy.Binding{Status: policy.None}},
		{"other cookies only", "a=b; affinityX=" + valid, policy.Binding{Status: policy.None}},
		{"valid", "affinity=" + valid, policy.Binding{ID: "b", Status: policy.Valid}},
		{"valid quoted", `affinity="` + valid + `"`, policy.Binding{ID: "b", Status: policy.Valid}},
		{"empty", "affinity=", policy.Binding{Status: policy.Malformed}},
		{"garbage", "affinity=hello", policy.Binding{Status: policy.Malformed}},
		{"not base64url", "affinity=" + strings.Repeat("+", 44), policy.Binding{Status: policy.Malformed}},
		{"padded", "affinity=" + base64.URLEncoding.EncodeToString(make([]byte, 33)) + "=", policy.Binding{Status: policy.Malformed}},
		{"version 0", "affinity=" + base64.RawURLEncoding.EncodeToString(make([]byte, 33)), policy.Binding{Status: policy.Malformed}},
		{"version 3", "affinity=" + withFirstByte(t, valid, 3), policy.Binding{Status: policy.Malformed}},
		{"version 1", "affinity=" + withFirstByte(t, valid, 1), policy.Binding{Status: policy.Malformed}},
		{"overlong", "affinity=" + strings.Repeat(valid, 7), policy.Binding{Status: policy.Malformed}},
		{"other key", "affinity=" + other.Issue("b"), policy.Binding{Status: policy.Forged}},
		{"other name", "affinity=" + renamed.Issue("b"), policy.Binding{Status: policy.Forged}},
		{"zero tag", "affinity=" + withZeroTag(t, valid), policy.Binding{Status: policy.Forged}},
		{"unknown backend", "affinity=" + c.Issue("z"), policy.Binding{Status: policy.Unknown}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var lines []string
			if tt.header != "" {
				lines = append(lines, tt.header)
			}
			assert.Equal(t, tt.want, unseeded(c.Lookup(request(lines...), snap)))
		})
	}
}

// withFirstByte returns the cookie value v with its first byte, the
// version, set to b.
func withFirstByte(t *testing.T, v string, b byte) string {
	t.Helper()
	p, err := base64.RawURLEncoding.DecodeString(v)
	require.NoError(t, err)
	p[0] = b
	return base64.RawURLEncoding.EncodeToString(p)
}

// withZeroTag returns the cookie value v with its 16-byte tag zeroed.
func withZeroTag(t *testing.T, v string) string {
	t.Helper()
	p, err := base64.RawURLEncoding.DecodeString(v)
	require.NoError(t, err)
	clear(p[17:])
	return base64.RawURLEncoding.EncodeToString(p)
}

func TestCookieRejectsEveryEdit(t *testing.T) {
	set := newSet(t)
	c := newCookie(t, [][]byte{key1})
	valid := c.Issue("a")
	require.Equal(t, policy.Valid, c.Lookup(request("affinity="+valid), set.Snapshot()).Status)

	lookup := func(t *testing.T, v string) policy.Binding {
		var b policy.Binding
		require.NotPanics(t, func() { b = c.Lookup(request("affinity="+v), set.Snapshot()) })
		return b
	}
	t.Run("replace", func(t *testing.T) {
		for i := range len(valid) {
			for _, r := range []byte("Aaz09-_+/= \";,\x00\x7f\xff") {
				if r == valid[i] {
					continue
				}
				v := valid[:i] + string(r) + valid[i+1:]
				got := lookup(t, v)
				assert.Contains(t, []policy.Status{policy.Malformed, policy.Forged}, got.Status, "byte %d = %q", i, r)
				assert.Empty(t, got.ID)
			}
		}
	})
	t.Run("flip bits", func(t *testing.T) {
		// Flipping a bit of the decoded value gives another well-formed
		// value, which the tag (or the version check) must refuse.
		p, err := base64.RawURLEncoding.DecodeString(valid)
		require.NoError(t, err)
		for i := range len(p) * 8 {
			q := append([]byte(nil), p...)
			q[i/8] ^= 1 << (i % 8)
			got := lookup(t, base64.RawURLEncoding.EncodeToString(q))
			want := policy.Forged
			if i < 8 {
				want = policy.Malformed
			}
			assert.Equal(t, want, got.Status, "bit %d", i)
		}
	})
	t.Run("truncate", func(t *testing.T) {
		for n := range len(valid) {
			assert.Equal(t, policy.Malformed, lookup(t, valid[:n]).Status, "length %d", n)
		}
	})
	t.Run("extend", func(t *testing.T) {
		for _, suffix := range []string{"A", "AAAA", "=", valid} {
			assert.Equal(t, policy.Malformed, lookup(t, valid+suffix).Status, "suffix %q", suffix)
		}
	})
}

func TestCookieExpiry(t *testing.T) {
	set := newSet(t)
	tests := []struct {
		name    string
		ttl     time.Duration
		elapsed time.Duration
		want    policy.Status
	}{
		{"fresh", 15 * time.Minute, 0, policy.Valid},
		{"last second", 15 * time.Minute, 15*time.Minute - time.Second, policy.Valid},
		{"at expiry", 15 * time.Minute, 15 * time.Minute, policy.Expired},
		{"long after", 15 * time.Minute, 30 * 24 * time.Hour, policy.Expired},
		{"fractional TTL truncated", 1500 * time.Millisecond, time.Second, policy.Expired},
		{"session cookie, a year on", 0, 365 * 24 * time.Hour, policy.Valid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := &clock{now: t0}
			c := newCookie(t, [][]byte{key1}, cookie.WithClock(clk.Now), cookie.WithTTL(tt.ttl))
			v := c.Issue("a")
			clk.Advance(tt.elapsed)
			got := c.Lookup(request("affinity="+v), set.Snapshot())
			assert.Equal(t, tt.want, got.Status)
		})
	}
}

// TestCookieExpiresFollowsClock checks the Expires attribute of cookies
// issued one after another by one Policy, as the clock moves within a
// second, on, back, and far ahead: each says the issue time plus the TTL.
func TestCookieExpiresFollowsClock(t *testing.T) {
	set := newSet(t)
	const ttl = 15 * time.Minute
	clk := &clock{now: t0}
	c := newCookie(t, [][]byte{key1}, cookie.WithClock(clk.Now), cookie.WithTTL(ttl))
	b := set.Snapshot().Lookup("a")
	c.Lookup(request(), set.Snapshot()) // as a request would: lines are kept from now on
	for _, step := range []time.Duration{
		0, 0, 400 * time.Millisecond, 700 * time.Millisecond, time.Second,
		-time.Hour, time.Hour, 50 * 365 * 24 * time.Hour, -40 * 365 * 24 * time.Hour,
	} {
		clk.Advance(step)
		ck, _ := saveOne(t, c, request(), b)
		want := clk.now.Truncate(time.Second).Add(ttl)
		assert.True(t, want.Equal(ck.Expires), "at %v: Expires %v, want %v", clk.now, ck.Expires, want)
	}
}

// TestCookieSaveReusesLines checks the Set-Cookie lines Save keeps per
// backend: within a second every new client bound to one backend gets the
// same line, which binds to that backend and no other; Secure, the next
// second and a refresh that keeps the binding's age each get their own.
func TestCookieSaveReusesLines(t *testing.T) {
	set := newSet(t)
	snap := set.Snapshot()
	clk := &clock{now: t0}
	c := newCookie(t, [][]byte{key1}, cookie.WithClock(clk.Now), cookie.WithTTL(time.Hour), cookie.WithSliding(true))
	c.Lookup(request(), snap)
	a, b := snap.Lookup("a"), snap.Lookup("b")
	tlsRequest := request()
	tlsRequest.TLS = &tls.ConnectionState{}

	bindsTo := func(line string) string {
		t.Helper()
		ck, err := http.ParseSetCookie(line)
		require.NoError(t, err)
		got := c.Lookup(request(ck.Name+"="+ck.Value), snap)
		require.Equal(t, policy.Valid, got.Status, "line %q", line)
		return got.ID
	}
	_, a1 := saveOne(t, c, request(), a)
	_, b1 := saveOne(t, c, request(), b)
	_, a2 := saveOne(t, c, request(), a)
	_, aSecure := saveOne(t, c, tlsRequest, a)
	assert.Equal(t, a1, a2, "same backend, same second: same line")
	assert.NotEqual(t, a1, b1)
	assert.Equal(t, "a", bindsTo(a1))
	assert.Equal(t, "b", bindsTo(b1))
	assert.Contains(t, aSecure, "; Secure")
	assert.NotContains(t, a1, "; Secure")
	_, a3 := saveOne(t, c, request(), a)
	assert.Equal(t, a1, a3, "a Secure line is kept apart from the other")

	// Past half the TTL, a refresh keeps the binding's age: its line is
	// not a new client's, and is not kept in place of one.
	clk.Advance(40 * time.Minute)
	old, err := http.ParseSetCookie(a1)
	require.NoError(t, err)
	r := request(old.Name + "=" + old.Value)
	prev := c.Lookup(r, snap)
	require.True(t, prev.Refresh)
	refreshed := save(c, r, a, prev)
	require.Len(t, refreshed, 1)
	_, fresh := saveOne(t, c, request(), a)
	assert.NotEqual(t, refreshed[0], fresh, "a refresh keeps the age, a new binding starts now")
	assert.NotEqual(t, a1, fresh, "another second, another line")
	assert.Equal(t, "a", bindsTo(fresh))
	assert.Equal(t, "a", bindsTo(refreshed[0]))
}

func TestCookieBackendRemoved(t *testing.T) {
	set := newSet(t)
	c := newCookie(t, [][]byte{key1})
	r := request("affinity=" + c.Issue("b"))
	before := set.Snapshot()
	require.Equal(t, policy.Valid, c.Lookup(r, before).Status)

	_, err := set.Remove("b")
	require.NoError(t, err)
	assert.Equal(t, policy.Binding{Status: policy.Unknown}, unseeded(c.Lookup(r, set.Snapshot())))
	// A request routed with the older snapshot still sees the old membership.
	assert.Equal(t, policy.Binding{ID: "b", Status: policy.Valid}, unseeded(c.Lookup(r, before)))
}

func TestCookieBackendAdded(t *testing.T) {
	set := newSet(t)
	c := newCookie(t, [][]byte{key1})
	r := request("affinity=" + c.Issue("d"))
	require.Equal(t, policy.Unknown, c.Lookup(r, set.Snapshot()).Status)

	_, err := set.Add(backend.Config{ID: "d", URL: "http://127.0.0.1:4"})
	require.NoError(t, err)
	assert.Equal(t, policy.Binding{ID: "d", Status: policy.Valid}, unseeded(c.Lookup(r, set.Snapshot())))
}

func TestCookieSetsOfOneCookie(t *testing.T) {
	// Two sets start at the same version; one Policy must not confuse them.
	setA := newSet(t)
	setB, err := backend.NewSet([]backend.Config{{ID: "x", URL: "http://127.0.0.1:9"}})
	require.NoError(t, err)
	require.Equal(t, setA.Snapshot().Version(), setB.Snapshot().Version())

	c := newCookie(t, [][]byte{key1})
	r := request("affinity=" + c.Issue("x"))
	assert.Equal(t, policy.Unknown, c.Lookup(r, setA.Snapshot()).Status)
	assert.Equal(t, policy.Valid, c.Lookup(r, setB.Snapshot()).Status)
	assert.Equal(t, policy.Unknown, c.Lookup(r, setA.Snapshot()).Status)
}

func TestCookieReplicasAgree(t *testing.T) {
	set := newSet(t)
	clk := &clock{now: t0}
	one := newCookie(t, [][]byte{key1}, cookie.WithClock(clk.Now))
	two := newCookie(t, [][]byte{key1}, cookie.WithClock(clk.Now))

	for _, id := range []string{"a", "b", "c"} {
		assert.Equal(t, one.Issue(id), two.Issue(id), "same keys, same clock, same value")
		got := two.Lookup(request("affinity="+one.Issue(id)), set.Snapshot())
		assert.Equal(t, policy.Binding{ID: id, Status: policy.Valid}, unseeded(got))
	}
}

func TestCookieKeyRotation(t *testing.T) {
	set := newSet(t)
	b := set.Snapshot().Lookup("c")
	old := newCookie(t, [][]byte{key1})
	rotating := newCookie(t, [][]byte{key2, key1})
	rotated := newCookie(t, [][]byte{key2})

	r := request("affinity=" + old.Issue("c"))
	prev := rotating.Lookup(r, set.Snapshot())
	assert.Equal(t, policy.Binding{ID: "c", Status: policy.Valid, Refresh: true}, unseeded(prev), "an old key verifies and asks for a refresh")
	assert.Equal(t, policy.Forged, rotated.Lookup(r, set.Snapshot()).Status, "a dropped key no longer verifies")

	lines := save(rotating, r, b, prev)
	require.Len(t, lines, 1, "the refresh re-signs")
	ck, err := http.ParseSetCookie(lines[0])
	require.NoError(t, err)
	r2 := request(ck.String())
	assert.Equal(t, policy.Binding{ID: "c", Status: policy.Valid}, unseeded(rotated.Lookup(r2, set.Snapshot())), "re-signed with the new key")
	assert.Equal(t, policy.Binding{ID: "c", Status: policy.Valid}, unseeded(rotating.Lookup(r2, set.Snapshot())), "no further refresh")
	assert.Equal(t, policy.Forged, old.Lookup(r2, set.Snapshot()).Status)
}

func TestCookieSave(t *testing.T) {
	set := newSet(t)
	snap := set.Snapshot()
	c := newCookie(t, [][]byte{key1})
	tests := []struct {
		name    string
		prev    policy.Binding
		wantSet bool
	}{
		{"unbound", policy.Binding{Status: policy.None}, true},
		{"bound here", policy.Binding{ID: "a", Status: policy.Valid}, false},
		{"bound here, refresh", policy.Binding{ID: "a", Status: policy.Valid, Refresh: true}, true},
		{"bound elsewhere", policy.Binding{ID: "b", Status: policy.Valid}, true},
		{"malformed", policy.Binding{Status: policy.Malformed}, true},
		{"forged", policy.Binding{Status: policy.Forged}, true},
		{"expired", policy.Binding{Status: policy.Expired}, true},
		{"unknown", policy.Binding{Status: policy.Unknown}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lines := save(c, request(), snap.Lookup("a"), tt.prev)
			if !tt.wantSet {
				assert.Empty(t, lines)
				return
			}
			require.Len(t, lines, 1)
			ck, err := http.ParseSetCookie(lines[0])
			require.NoError(t, err)
			assert.Equal(t, policy.Binding{ID: "a", Status: policy.Valid}, unseeded(c.Lookup(request(ck.String()), snap)), "bound to the backend that served")
		})
	}
	t.Run("nil header", func(t *testing.T) {
		resp := &http.Response{}
		c.Save(request(), resp, snap.Lookup("a"), policy.Binding{})
		assert.Len(t, resp.Header.Values("Set-Cookie"), 1)
	})
	t.Run("keeps other cookies", func(t *testing.T) {
		resp := &http.Response{Header: http.Header{"Set-Cookie": {"session=s1"}}}
		c.Save(request(), resp, snap.Lookup("a"), policy.Binding{})
		assert.Len(t, resp.Header.Values("Set-Cookie"), 2)
	})
}

func TestCookieAttributes(t *testing.T) {
	set := newSet(t)
	b := set.Snapshot().Lookup("a")
	expires := t0.Add(15 * time.Minute)
	tests := []struct {
		name     string
		opts     []cookie.Option
		tls      bool
		want     http.Cookie // Name, Value, Raw and Expires are not compared
		expires  time.Time
		wantAttr []string // in the raw header
		noAttr   []string // not in the raw header
	}{
		{
			name:     "defaults",
			want:     http.Cookie{Path: "/", MaxAge: 900, HttpOnly: true, SameSite: http.SameSiteLaxMode},
			expires:  expires,
			wantAttr: []string{"; Max-Age=900", "; Expires=Sun, 01 Jun 2025 12:15:00 GMT", "; SameSite=Lax", "; HttpOnly"},
			noAttr:   []string{"Secure", "Domain"},
		},
		{
			name:    "defaults over TLS",
			tls:     true,
			want:    http.Cookie{Path: "/", MaxAge: 900, HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode},
			expires: expires,
		},
		{
			name:    "SecureAlways",
			opts:    []cookie.Option{cookie.WithSecure(cookie.SecureAlways)},
			want:    http.Cookie{Path: "/", MaxAge: 900, HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode},
			expires: expires,
		},
		{
			name:    "SecureNever over TLS",
			opts:    []cookie.Option{cookie.WithSecure(cookie.SecureNever)},
			tls:     true,
			want:    http.Cookie{Path: "/", MaxAge: 900, HttpOnly: true, SameSite: http.SameSiteLaxMode},
			expires: expires,
		},
		{
			name:     "SameSite None forces Secure",
			opts:     []cookie.Option{cookie.WithSameSite(http.SameSiteNoneMode)},
			want:     http.Cookie{Path: "/", MaxAge: 900, HttpOnly: true, Secure: true, SameSite: http.SameSiteNoneMode},
			expires:  expires,
			wantAttr: []string{"; SameSite=None", "; Secure"},
		},
		{
			name:    "SameSite Strict",
			opts:    []cookie.Option{cookie.WithSameSite(http.SameSiteStrictMode)},
			want:    http.Cookie{Path: "/", MaxAge: 900, HttpOnly: true, SameSite: http.SameSiteStrictMode},
			expires: expires,
		},
		{
			name:    "SameSite default omitted",
			opts:    []cookie.Option{cookie.WithSameSite(http.SameSiteDefaultMode)},
			want:    http.Cookie{Path: "/", MaxAge: 900, HttpOnly: true},
			expires: expires,
			noAttr:  []string{"SameSite"},
		},
		{
			name:    "not HttpOnly",
			opts:    []cookie.Option{cookie.WithHTTPOnly(false)},
			want:    http.Cookie{Path: "/", MaxAge: 900, SameSite: http.SameSiteLaxMode},
			expires: expires,
			noAttr:  []string{"HttpOnly"},
		},
		{
			name:     "path and domain",
			opts:     []cookie.Option{cookie.WithPath("/shop"), cookie.WithDomain("example.com")},
			want:     http.Cookie{Path: "/shop", Domain: "example.com", MaxAge: 900, HttpOnly: true, SameSite: http.SameSiteLaxMode},
			expires:  expires,
			wantAttr: []string{"; Path=/shop", "; Domain=example.com"},
		},
		{
			name:     "name and TTL",
			opts:     []cookie.Option{cookie.WithName("lb"), cookie.WithTTL(2 * time.Hour)},
			want:     http.Cookie{Path: "/", MaxAge: 7200, HttpOnly: true, SameSite: http.SameSiteLaxMode},
			expires:  t0.Add(2 * time.Hour),
			wantAttr: []string{"lb="},
		},
		{
			name:   "session cookie",
			opts:   []cookie.Option{cookie.WithTTL(0)},
			want:   http.Cookie{Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode},
			noAttr: []string{"Max-Age", "Expires"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := &clock{now: t0}
			c := newCookie(t, [][]byte{key1}, append([]cookie.Option{cookie.WithClock(clk.Now)}, tt.opts...)...)
			r := request()
			if tt.tls {
				r.TLS = &tls.ConnectionState{}
			}
			ck, raw := saveOne(t, c, r, b)

			assert.Equal(t, c.Name(), ck.Name)
			assert.True(t, tt.expires.Equal(ck.Expires), "Expires %v, want %v", ck.Expires, tt.expires)
			got := *ck
			got.Name, got.Value, got.Raw, got.Expires, got.RawExpires = "", "", "", time.Time{}, ""
			assert.Equal(t, tt.want, got)
			for _, a := range tt.wantAttr {
				assert.Contains(t, raw, a)
			}
			for _, a := range tt.noAttr {
				assert.NotContains(t, raw, a)
			}
		})
	}
}

func TestCookieSliding(t *testing.T) {
	set := newSet(t)
	const ttl = 10 * time.Minute
	tests := []struct {
		name        string
		opts        []cookie.Option
		elapsed     time.Duration
		wantRefresh bool
	}{
		{"fresh", nil, 0, false},
		{"just under half the TTL", nil, ttl/2 - time.Second, false},
		{"half the TTL", nil, ttl / 2, true},
		{"nearly expired", nil, ttl - time.Second, true},
		{"on, explicitly", []cookie.Option{cookie.WithSliding(true)}, ttl / 2, true},
		{"off, nearly expired", []cookie.Option{cookie.WithSliding(false)}, ttl - time.Second, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := &clock{now: t0}
			opts := append([]cookie.Option{cookie.WithClock(clk.Now), cookie.WithTTL(ttl)}, tt.opts...)
			c := newCookie(t, [][]byte{key1}, opts...)
			v := c.Issue("b")
			r := request("affinity=" + v)
			clk.Advance(tt.elapsed)
			prev := c.Lookup(r, set.Snapshot())
			assert.Equal(t, policy.Binding{ID: "b", Status: policy.Valid, Refresh: tt.wantRefresh}, unseeded(prev))

			lines := save(c, r, set.Snapshot().Lookup("b"), prev)
			if !tt.wantRefresh {
				assert.Empty(t, lines)
				return
			}
			require.Len(t, lines, 1)
			ck, err := http.ParseSetCookie(lines[0])
			require.NoError(t, err)
			assert.True(t, clk.now.Add(ttl).Equal(ck.Expires), "the refreshed cookie runs a full TTL from now")
			assert.Equal(t, int(ttl/time.Second), ck.MaxAge)
			assert.Equal(t, issued(t, v), issued(t, ck.Value), "the refresh keeps the binding's age")
			clk.Advance(ttl - time.Second)
			assert.Equal(t, policy.Valid, c.Lookup(request(ck.String()), set.Snapshot()).Status)
		})
	}
	t.Run("session cookie", func(t *testing.T) {
		clk := &clock{now: t0}
		c := newCookie(t, [][]byte{key1}, cookie.WithClock(clk.Now), cookie.WithTTL(0))
		r := request("affinity=" + c.Issue("b"))
		clk.Advance(24 * time.Hour)
		assert.Equal(t, policy.Binding{ID: "b", Status: policy.Valid}, unseeded(c.Lookup(r, set.Snapshot())))
	})
}

// TestCookieSlidingKeepsActiveClients follows a browser that requests a
// page every 300 ms under a 2-second TTL, starting at various points of a
// second, and keeps cookies as long as their Max-Age says: it always has
// its cookie, the cookie always binds it to the same backend with the same
// binding, and once it stops, the binding ends two seconds later at most.
func TestCookieSlidingKeepsActiveClients(t *testing.T) {
	set := newSet(t)
	snap := set.Snapshot()
	b := snap.Lookup("c")
	for _, offset := range []time.Duration{0, 100 * time.Millisecond, 500 * time.Millisecond, 900 * time.Millisecond, 999 * time.Millisecond} {
		t.Run(offset.String(), func(t *testing.T) {
			clk := &clock{now: t0.Add(offset)}
			c := newCookie(t, [][]byte{key1}, cookie.WithClock(clk.Now), cookie.WithTTL(2*time.Second))
			lines := save(c, request(), b, policy.Binding{})
			require.Len(t, lines, 1)
			ck, err := http.ParseSetCookie(lines[0])
			require.NoError(t, err)
			born, kept := issued(t, ck.Value), clk.now.Add(time.Duration(ck.MaxAge)*time.Second)
			refreshes := 0
			for i := range 8000 / 300 {
				clk.Advance(300 * time.Millisecond)
				require.True(t, clk.now.Before(kept), "request %d at %v: the browser dropped its cookie at %v", i, clk.now, kept)
				r := request("affinity=" + ck.Value)
				prev := c.Lookup(r, snap)
				require.Equal(t, policy.Binding{ID: "c", Status: policy.Valid, Refresh: prev.Refresh}, unseeded(prev), "request %d at %v", i, clk.now)
				if lines := save(c, r, b, prev); len(lines) > 0 {
					require.Len(t, lines, 1)
					ck, err = http.ParseSetCookie(lines[0])
					require.NoError(t, err)
					kept = clk.now.Add(time.Duration(ck.MaxAge) * time.Second)
					assert.Equal(t, born, issued(t, ck.Value), "a refresh keeps the binding")
					refreshes++
				}
			}
			assert.GreaterOrEqual(t, refreshes, 6, "about one refresh a second over 8 seconds")
			clk.Advance(2 * time.Second)
			assert.Equal(t, policy.Expired, c.Lookup(request("affinity="+ck.Value), snap).Status, "idle for a TTL")
		})
	}
}

// issued returns the issue time of the binding in the cookie value v, read
// as the package documentation describes the format.
func issued(t *testing.T, v string) int64 {
	t.Helper()
	p, err := base64.RawURLEncoding.DecodeString(v)
	require.NoError(t, err)
	require.Len(t, p, 33)
	return int64(binary.BigEndian.Uint32(p[9:13]))
}

func TestCookieMaxLife(t *testing.T) {
	set := newSet(t)
	const ttl, maxLife = 10 * time.Minute, 30 * time.Minute
	clk := &clock{now: t0}
	c := newCookie(t, [][]byte{key1}, cookie.WithClock(clk.Now), cookie.WithTTL(ttl), cookie.WithMaxLife(maxLife))
	r := request("affinity=" + c.Issue("b"))

	// Sliding keeps the binding alive past its TTL, refresh after refresh,
	// but each refresh keeps the binding's age, and the last expires when
	// the max life ends, so the browser drops it then too.
	var elapsed time.Duration
	var last *http.Cookie
	for elapsed+6*time.Minute < maxLife {
		clk.Advance(6 * time.Minute)
		elapsed += 6 * time.Minute
		prev := c.Lookup(r, set.Snapshot())
		require.Equal(t, policy.Valid, prev.Status, "after %v", elapsed)
		if prev.Refresh {
			lines := save(c, r, set.Snapshot().Lookup("b"), prev)
			require.Len(t, lines, 1)
			ck, err := http.ParseSetCookie(lines[0])
			require.NoError(t, err)
			wantExp := clk.now.Add(ttl)
			if end := t0.Add(maxLife); end.Before(wantExp) {
				wantExp = end
			}
			assert.True(t, wantExp.Equal(ck.Expires), "after %v: Expires %v, want %v", elapsed, ck.Expires, wantExp)
			assert.Equal(t, int(wantExp.Sub(clk.now)/time.Second), ck.MaxAge, "after %v", elapsed)
			r, last = request(ck.Name+"="+ck.Value), ck
		}
	}
	require.NotNil(t, last)
	assert.True(t, t0.Add(maxLife).Equal(last.Expires), "the last refresh ends with the max life: %v", last.Expires)
	clk.Advance(maxLife - elapsed)
	assert.Equal(t, policy.Binding{Status: policy.Expired}, c.Lookup(r, set.Snapshot()), "binding outlived its max life")

	t.Run("a new binding starts a new life", func(t *testing.T) {
		lines := save(c, r, set.Snapshot().Lookup("b"), policy.Binding{Status: policy.Expired})
		require.Len(t, lines, 1)
		ck, err := http.ParseSetCookie(lines[0])
		require.NoError(t, err)
		assert.Equal(t, policy.Valid, c.Lookup(request(ck.Name+"="+ck.Value), set.Snapshot()).Status)
	})
	t.Run("validation", func(t *testing.T) {
		for _, tc := range []struct {
			opts    []cookie.Option
			wantErr string
		}{
			{[]cookie.Option{cookie.WithMaxLife(-time.Second)}, "WithMaxLife(-1s): want 0 (none) or at least a second"},
			{[]cookie.Option{cookie.WithMaxLife(time.Millisecond)}, "WithMaxLife(1ms): want 0 (none) or at least a second"},
			{[]cookie.Option{cookie.WithMaxLife(5 * time.Minute)}, "WithMaxLife(5m0s): shorter than the TTL 15m0s"},
			{[]cookie.Option{cookie.WithTTL(time.Hour), cookie.WithMaxLife(59 * time.Minute)}, "WithMaxLife(59m0s): shorter than the TTL 1h0m0s"},
		} {
			_, err := cookie.New([][]byte{key1}, tc.opts...)
			assert.ErrorContains(t, err, tc.wantErr)
		}
		for _, opts := range [][]cookie.Option{
			{cookie.WithTTL(time.Hour), cookie.WithMaxLife(time.Hour)},
			{cookie.WithTTL(0), cookie.WithMaxLife(time.Minute)},
			{cookie.WithTTL(1500 * time.Millisecond), cookie.WithMaxLife(1200 * time.Millisecond)}, // both a second
		} {
			_, err := cookie.New([][]byte{key1}, opts...)
			assert.NoError(t, err)
		}
	})
}

// TestCookieMaxLifeCapsRefreshes checks that once a refresh has brought a
// cookie's expiry to the end of the binding's max life, further requests
// are not refreshed again: another cookie would expire no later.
func TestCookieMaxLifeCapsRefreshes(t *testing.T) {
	set := newSet(t)
	snap := set.Snapshot()
	clk := &clock{now: t0}
	c := newCookie(t, [][]byte{key1}, cookie.WithClock(clk.Now), cookie.WithTTL(10*time.Minute), cookie.WithMaxLife(12*time.Minute))
	r := request("affinity=" + c.Issue("a"))
	clk.Advance(6 * time.Minute)
	prev := c.Lookup(r, snap)
	require.True(t, prev.Refresh)
	lines := save(c, r, snap.Lookup("a"), prev)
	require.Len(t, lines, 1)
	ck, err := http.ParseSetCookie(lines[0])
	require.NoError(t, err)
	assert.Equal(t, 6*60, ck.MaxAge, "capped at the max life")
	r = request(ck.String())
	for range 5 {
		clk.Advance(time.Minute)
		prev := c.Lookup(r, snap)
		assert.Equal(t, policy.Binding{ID: "a", Status: policy.Valid}, unseeded(prev), "at %v", clk.now.Sub(t0))
		assert.Empty(t, save(c, r, snap.Lookup("a"), prev))
	}
	clk.Advance(time.Minute)
	assert.Equal(t, policy.Expired, c.Lookup(r, snap).Status)
}

// TestCookieSeveralOfTheName checks Lookup on requests carrying several
// cookies of the balancer's name, as browsers send cookies set on
// different paths or domains, or left by an older deployment: the first
// valid one binds; failing that, the first one's status is reported.
func TestCookieSeveralOfTheName(t *testing.T) {
	set := newSet(t)
	snap := set.Snapshot()
	clk := &clock{now: t0}
	c := newCookie(t, [][]byte{key1}, cookie.WithClock(clk.Now), cookie.WithTTL(time.Hour), cookie.WithMaxLife(2*time.Hour))
	other := newCookie(t, [][]byte{key2}, cookie.WithClock(clk.Now))
	clk.Advance(-90 * time.Minute)
	expired := c.Issue("a")
	clk.now = t0
	// Made 150 minutes ago by a Policy of the same name and key, with no
	// max life: unexpired, but older than c's max life.
	aged := newCookie(t, [][]byte{key1}, cookie.WithClock(func() time.Time { return t0.Add(-150 * time.Minute) }),
		cookie.WithTTL(400*24*time.Hour)).Issue("a")
	valid, validC := c.Issue("b"), c.Issue("c")
	var many []string
	for i := range 200 {
		many = append(many, fmt.Sprintf("c%d=%d", i, i))
	}
	others := strings.Join(many, "; ")

	tests := []struct {
		name  string
		lines []string
		want  policy.Binding
	}{
		{"garbage first", []string{"affinity=garbage; affinity=" + valid}, policy.Binding{ID: "b", Status: policy.Valid}},
		{"empty first", []string{"affinity=; affinity=" + valid}, policy.Binding{ID: "b", Status: policy.Valid}},
		{"forged first", []string{"affinity=" + other.Issue("a") + "; affinity=" + valid}, policy.Binding{ID: "b", Status: policy.Valid}},
		{"expired first", []string{"affinity=" + expired + "; affinity=" + valid}, policy.Binding{ID: "b", Status: policy.Valid}},
		{"past its max life first", []string{"affinity=" + aged + "; affinity=" + valid}, policy.Binding{ID: "b", Status: policy.Valid}},
		{"unknown backend first", []string{"affinity=" + c.Issue("z") + "; affinity=" + valid}, policy.Binding{ID: "b", Status: policy.Valid}},
		{"on another line", []string{"affinity=garbage; x=1", "y=2; affinity=" + valid}, policy.Binding{ID: "b", Status: policy.Valid}},
		{"after 200 others", []string{others + "; affinity=" + valid}, policy.Binding{ID: "b", Status: policy.Valid}},
		{"after 200 others and garbage", []string{others + "; affinity=garbage; " + others + "; affinity=" + valid}, policy.Binding{ID: "b", Status: policy.Valid}},
		{"the first valid wins", []string{"affinity=" + valid + "; affinity=" + validC}, policy.Binding{ID: "b", Status: policy.Valid}},
		{"valid, then garbage", []string{"affinity=" + validC + "; affinity=garbage"}, policy.Binding{ID: "c", Status: policy.Valid}},
		{"none valid: the first's status", []string{"affinity=garbage; affinity=" + other.Issue("a")}, policy.Binding{Status: policy.Malformed}},
		{"none valid: forged first", []string{"affinity=" + other.Issue("a") + "; affinity=" + expired}, policy.Binding{Status: policy.Forged}},
		{"none valid: expired first", []string{"affinity=" + expired + "; affinity=" + other.Issue("a")}, policy.Binding{Status: policy.Expired}},
		{"none valid: unknown first", []string{"affinity=" + c.Issue("z") + "; affinity=garbage"}, policy.Binding{Status: policy.Unknown}},
		// An authentic binding whose backend left tells more than garbage.
		{"none valid: unknown after garbage", []string{"affinity=garbage; affinity=" + c.Issue("z")}, policy.Binding{Status: policy.Unknown}},
		{"none valid: unknown after expired", []string{"affinity=" + expired + "; affinity=" + c.Issue("z")}, policy.Binding{Status: policy.Unknown}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, unseeded(c.Lookup(request(tt.lines...), snap)))
		})
	}

	// A client re-bound while its backend was down, at another path,
	// carries both bindings: the one whose backend serves wins, and the
	// first again once its backend serves.
	t.Run("the first whose backend serves", func(t *testing.T) {
		r := request("affinity=" + valid + "; affinity=" + validC)
		require.NoError(t, set.SetState("b", backend.Unhealthy))
		assert.Equal(t, policy.Binding{ID: "c", Status: policy.Valid}, unseeded(c.Lookup(r, set.Snapshot())))
		require.NoError(t, set.SetState("c", backend.Unhealthy))
		assert.Equal(t, policy.Binding{ID: "b", Status: policy.Valid}, unseeded(c.Lookup(r, set.Snapshot())), "none serves: the first valid")
		require.NoError(t, set.SetState("b", backend.Healthy))
		require.NoError(t, set.SetState("c", backend.Healthy))
		assert.Equal(t, policy.Binding{ID: "b", Status: policy.Valid}, unseeded(c.Lookup(r, set.Snapshot())))
	})

	t.Run("no allocation", func(t *testing.T) {
		r := request("affinity=garbage; " + others + "; affinity=" + expired + "; affinity=" + valid)
		allocs := testing.AllocsPerRun(100, func() {
			if got := c.Lookup(r, snap); got.Status != policy.Valid {
				t.Fatalf("lookup: %v", got.Status)
			}
		})
		assert.Zero(t, allocs)
	})
}

// TestCookieRefreshOfALaterCookie checks that the refresh of a binding
// found after another cookie of the name keeps that binding's age, not
// the other's.
func TestCookieRefreshOfALaterCookie(t *testing.T) {
	set := newSet(t)
	snap := set.Snapshot()
	clk := &clock{now: t0}
	old := newCookie(t, [][]byte{key1}, cookie.WithClock(clk.Now))
	c := newCookie(t, [][]byte{key2, key1}, cookie.WithClock(clk.Now))
	bound := old.Issue("b")
	clk.Advance(time.Minute)
	decoy := c.Issue("a") // valid, but names another backend; after b's in the header
	clk.Advance(time.Minute)

	r := request("affinity=garbage; affinity=" + bound + "; affinity=" + decoy)
	prev := c.Lookup(r, snap)
	require.Equal(t, policy.Binding{ID: "b", Status: policy.Valid, Refresh: true}, unseeded(prev), "signed with the old key")
	lines := save(c, r, snap.Lookup("b"), prev)
	require.Len(t, lines, 1)
	ck, err := http.ParseSetCookie(lines[0])
	require.NoError(t, err)
	assert.Equal(t, t0.Unix(), issued(t, ck.Value), "the age of the binding refreshed")
	assert.Equal(t, policy.Binding{ID: "b", Status: policy.Valid}, unseeded(c.Lookup(request(ck.String()), snap)))
}

func TestCookieIsOpaque(t *testing.T) {
	set, err := backend.NewSet([]backend.Config{{ID: "checkout-7", URL: "http://10.1.2.3:8080/api"}})
	require.NoError(t, err)
	c := newCookie(t, [][]byte{key1})
	ck, raw := saveOne(t, c, request(), set.Snapshot().Lookup("checkout-7"))

	p, err := base64.RawURLEncoding.DecodeString(ck.Value)
	require.NoError(t, err)
	for _, s := range []string{"checkout-7", "checkout", "10.1.2.3", "8080", "/api"} {
		assert.NotContains(t, raw, s)
		assert.NotContains(t, string(p), s)
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name    string
		keys    [][]byte
		opts    []cookie.Option
		wantErr string
	}{
		{"no keys", nil, nil, "no signing keys"},
		{"short first key", [][]byte{[]byte("short")}, nil, "keys[0] is 5 bytes; need at least 16"},
		{"short second key", [][]byte{key1, []byte("sixsix")}, nil, "keys[1] is 6 bytes; need at least 16"},
		{"empty name", [][]byte{key1}, []cookie.Option{cookie.WithName("")}, `WithName(""): must not be empty`},
		{"name with space", [][]byte{key1}, []cookie.Option{cookie.WithName("my cookie")}, `WithName("my cookie"): character ' '`},
		{"name with equals", [][]byte{key1}, []cookie.Option{cookie.WithName("a=b")}, `WithName("a=b"): character '='`},
		{"name non-ASCII", [][]byte{key1}, []cookie.Option{cookie.WithName("café")}, `WithName("café")`},
		{"negative TTL", [][]byte{key1}, []cookie.Option{cookie.WithTTL(-time.Second)}, "WithTTL(-1s): negative"},
		{"sub-second TTL", [][]byte{key1}, []cookie.Option{cookie.WithTTL(500 * time.Millisecond)}, "WithTTL(500ms): under a second"},
		{"TTL over 400 days", [][]byte{key1}, []cookie.Option{cookie.WithTTL(401 * 24 * time.Hour)}, "WithTTL(9624h0m0s): over 400 days"},
		{"relative path", [][]byte{key1}, []cookie.Option{cookie.WithPath("shop")}, `WithPath("shop"): does not begin with '/'`},
		{"empty path", [][]byte{key1}, []cookie.Option{cookie.WithPath("")}, `WithPath(""): does not begin`},
		{"path with semicolon", [][]byte{key1}, []cookie.Option{cookie.WithPath("/a;Domain=evil")}, `WithPath("/a;Domain=evil"): character ';'`},
		{"path with newline", [][]byte{key1}, []cookie.Option{cookie.WithPath("/a\nb")}, `WithPath("/a\nb"): character '\n'`},
		{"domain with semicolon", [][]byte{key1}, []cookie.Option{cookie.WithDomain("a.com;x")}, `WithDomain("a.com;x"): character ';'`},
		{"domain with space", [][]byte{key1}, []cookie.Option{cookie.WithDomain("a .com")}, `WithDomain("a .com"): character ' '`},
		{"domain with control", [][]byte{key1}, []cookie.Option{cookie.WithDomain("a\x00.com")}, `WithDomain("a\x00.com"): character '\x00'`},
		{"bad SameSite", [][]byte{key1}, []cookie.Option{cookie.WithSameSite(http.SameSite(9))}, "WithSameSite(9): not a SameSite mode"},
		{"SameSite None, never Secure", [][]byte{key1}, []cookie.Option{cookie.WithSameSite(http.SameSiteNoneMode), cookie.WithSecure(cookie.SecureNever)}, "SameSite=None requires Secure"},
		{"bad SecureMode", [][]byte{key1}, []cookie.Option{cookie.WithSecure(cookie.SecureMode(7))}, "WithSecure(SecureMode(7)): not a SecureMode"},
		{"nil clock", [][]byte{key1}, []cookie.Option{cookie.WithClock(nil)}, "WithClock(nil)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := cookie.New(tt.keys, tt.opts...)
			assert.Nil(t, c)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantErr)
			assert.True(t, strings.HasPrefix(err.Error(), "cookie: "), err.Error())
		})
	}
}

// TestNewReportsEveryInvalidValue checks that New reports every invalid
// key and option together, one error each, in the order of the options'
// declarations, rather than the first alone.
func TestNewReportsEveryInvalidValue(t *testing.T) {
	c, err := cookie.New([][]byte{key1, []byte("short"), []byte("tiny")},
		cookie.WithClock(nil),
		cookie.WithName("a b"),
		cookie.WithTTL(-time.Second),
		cookie.WithPath("shop"),
		cookie.WithDomain("a..com"),
		cookie.WithSameSite(http.SameSite(9)),
	)
	assert.Nil(t, c)
	require.Error(t, err)
	assert.Equal(t, []string{
		`cookie: WithName("a b"): character ' ' not allowed in a token`,
		`cookie: WithTTL(-1s): negative; use 0 for a session cookie`,
		`cookie: WithPath("shop"): does not begin with '/'`,
		`cookie: WithDomain("a..com"): has an empty label`,
		`cookie: WithSameSite(9): not a SameSite mode`,
		`cookie: WithClock(nil): a clock is needed`,
		`cookie: keys[1] is 5 bytes; need at least 16`,
		`cookie: keys[2] is 4 bytes; need at least 16`,
	}, strings.Split(err.Error(), "\n"))
}

// TestNewReportsEveryConflict checks that SecureNever is reported with
// each option that requires Secure cookies, not with the first alone.
func TestNewReportsEveryConflict(t *testing.T) {
	_, err := cookie.New([][]byte{key1}, cookie.WithSecure(cookie.SecureNever),
		cookie.WithSameSite(http.SameSiteNoneMode), cookie.WithPartitioned(true), cookie.WithCORS(true))
	require.Error(t, err)
	lines := strings.Split(err.Error(), "\n")
	require.Len(t, lines, 3, err.Error())
	assert.Contains(t, lines[0], "WithSecure(SecureNever) with WithSameSite(http.SameSiteNoneMode)")
	assert.Contains(t, lines[1], "WithSecure(SecureNever) with WithPartitioned(true)")
	assert.Contains(t, lines[2], "WithSecure(SecureNever) with WithCORS(true)")
}

func TestNewCopiesNothing(t *testing.T) {
	set := newSet(t)
	key := append([]byte(nil), key1...)
	c := newCookie(t, [][]byte{key})
	v := c.Issue("a")
	clear(key)
	assert.Equal(t, policy.Valid, c.Lookup(request("affinity="+v), set.Snapshot()).Status, "the caller may reuse its key buffer")
}

func TestCookieConcurrent(t *testing.T) {
	set := newSet(t)
	c := newCookie(t, [][]byte{key2, key1}, cookie.WithSliding(true))
	old := newCookie(t, [][]byte{key1})
	values := []string{c.Issue("a"), c.Issue("b"), old.Issue("c"), "garbage"}

	var churn sync.WaitGroup
	stop := make(chan struct{})
	churn.Go(func() { // membership churn: d comes and goes
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := set.Add(backend.Config{ID: "d", URL: "http://127.0.0.1:4"}); err == nil {
				_, _ = set.Remove("d")
			}
		}
	})
	var readers sync.WaitGroup
	for g := range 8 {
		readers.Go(func() {
			for i := range 500 {
				v := values[(g+i)%len(values)]
				snap := set.Snapshot()
				prev := c.Lookup(request("affinity="+v), snap)
				if v != "garbage" && prev.Status != policy.Valid {
					t.Errorf("lookup %q: %v", v, prev.Status)
					return
				}
				resp := &http.Response{Header: http.Header{}}
				c.Save(request(), resp, snap.Backends()[i%3], prev)
			}
		})
	}
	readers.Wait()
	close(stop)
	churn.Wait()
}

func FuzzCookieLookup(f *testing.F) {
	set := newSet(f)
	c := newCookie(f, [][]byte{key1})
	valid := c.Issue("a")
	for _, seed := range []string{
		"", "affinity=" + valid, `affinity="` + valid + `"`, "a=1; affinity=" + valid[:20], "affinity=" + valid + valid,
		"affinity=garbage; affinity=" + valid, "affinity=" + valid[:43] + "B; b=2; affinity=" + valid,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, header string) {
		got := c.Lookup(request(header), set.Snapshot())
		if got.Status == policy.Valid && set.Snapshot().Lookup(got.ID) == nil {
			t.Errorf("valid binding to %q, not in the set", got.ID)
		}
	})
}

func TestSecureModeString(t *testing.T) {
	for m, want := range map[cookie.SecureMode]string{
		cookie.SecureAuto:    "SecureAuto",
		cookie.SecureAlways:  "SecureAlways",
		cookie.SecureNever:   "SecureNever",
		cookie.SecureMode(7): "SecureMode(7)",
		-1:                   "SecureMode(-1)",
	} {
		assert.Equal(t, want, m.String())
	}
}

// TestCookieRollingKeyRotation checks the rotation the package documents,
// done one replica at a time: at every step the replicas still on the
// previous configuration and those on the next accept each other's
// cookies, so no client moves. Putting the new key first in one step
// would not do: a replica not yet updated refuses what an updated one
// signs.
func TestCookieRollingKeyRotation(t *testing.T) {
	set := newSet(t)
	steps := [][][]byte{{key1}, {key1, key2}, {key2, key1}, {key2}}
	for i := 1; i < len(steps); i++ {
		before, after := newCookie(t, steps[i-1]), newCookie(t, steps[i])
		for _, pair := range [][2]*cookie.Policy{{before, after}, {after, before}} {
			got := pair[1].Lookup(request("affinity="+pair[0].Issue("b")), set.Snapshot())
			assert.Equal(t, policy.Valid, got.Status, "step %d", i)
			assert.Equal(t, "b", got.ID, "step %d", i)
		}
	}
	oneStep := newCookie(t, [][]byte{key2, key1})
	assert.Equal(t, policy.Forged, newCookie(t, [][]byte{key1}).Lookup(request("affinity="+oneStep.Issue("b")), set.Snapshot()).Status)
}

// unseeded returns b without its Seed, which the tests that compare
// bindings whole do not spell out (see TestCookieSeed).
func unseeded(b policy.Binding) policy.Binding {
	b.Seed = 0
	return b
}

func TestCookieSeed(t *testing.T) {
	set := newSet(t)
	clk := &clock{now: t0}
	const ttl = 10 * time.Minute
	c := newCookie(t, [][]byte{key1}, cookie.WithClock(clk.Now), cookie.WithTTL(ttl))
	first := c.Issue("b")
	clk.Advance(time.Second)
	second := c.Issue("b")

	b1 := c.Lookup(request("affinity="+first), set.Snapshot())
	b2 := c.Lookup(request("affinity="+second), set.Snapshot())
	require.Equal(t, policy.Valid, b1.Status)
	assert.NotZero(t, b1.Seed)
	assert.NotEqual(t, b1.Seed, b2.Seed, "clients bound to one backend a second apart")
	assert.Equal(t, b1.Seed, c.Lookup(request("affinity="+first), set.Snapshot()).Seed, "the same in every request")

	// Refreshed by sliding expiry, the binding keeps its seed.
	clk.Advance(ttl / 2)
	prev := c.Lookup(request("affinity="+first), set.Snapshot())
	require.True(t, prev.Refresh)
	lines := save(c, request("affinity="+first), set.Snapshot().Lookup("b"), prev)
	require.Len(t, lines, 1)
	refreshed, err := http.ParseSetCookie(lines[0])
	require.NoError(t, err)
	require.NotEqual(t, first, refreshed.Value)
	assert.Equal(t, b1.Seed, c.Lookup(request(refreshed.String()), set.Snapshot()).Seed, "the refreshed value")

	// Its backend gone, the binding is Unknown, with the same seed.
	gone, err := backend.NewSet([]backend.Config{{ID: "a", URL: "http://127.0.0.1:1"}})
	require.NoError(t, err)
	unknown := c.Lookup(request("affinity="+first), gone.Snapshot())
	require.Equal(t, policy.Unknown, unknown.Status)
	assert.Equal(t, b1.Seed, unknown.Seed)

	for _, v := range []string{"", "garbage", withZeroTag(t, first)} {
		assert.Zero(t, c.Lookup(request("affinity="+v), set.Snapshot()).Seed, "%q: no seed for a binding refused", v)
	}
}
