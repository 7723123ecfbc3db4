package cookie_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/cookie"
	"github.com/affinitylb/affinity/policy"
)

func newHeader(t testing.TB, name string, keys [][]byte, opts ...cookie.Option) *cookie.Header {
	t.Helper()
	h, err := cookie.NewHeader(name, keys, opts...)
	require.NoError(t, err)
	return h
}

// headerRequest returns a request carrying the header name with values.
func headerRequest(name string, values ...string) *http.Request {
	r := request()
	for _, v := range values {
		r.Header.Add(name, v)
	}
	return r
}

// headerSave calls h.Save and returns the response header.
func headerSave(h *cookie.Header, r *http.Request, b *backend.Backend, prev policy.Binding) http.Header {
	resp := &http.Response{Header: http.Header{}}
	h.Save(r, resp, b, prev)
	return resp.Header
}

func TestHeaderRoundTrip(t *testing.T) {
	snap := newSet(t).Snapshot()
	h := newHeader(t, "x-affinity-session", [][]byte{key1})
	assert.Equal(t, "X-Affinity-Session", h.Name())

	r := headerRequest("X-Other", "x")
	prev := h.Lookup(r, snap)
	require.Equal(t, policy.None, prev.Status)
	out := headerSave(h, r, snap.Lookup("b"), prev)
	require.Len(t, out.Values("X-Affinity-Session"), 1)
	assert.Empty(t, out.Values("Set-Cookie"), "a Header sets no cookie")
	v := out.Get("X-Affinity-Session")
	assert.Len(t, v, 44)

	got := h.Lookup(headerRequest("x-affinity-session", v), snap)
	assert.Equal(t, policy.Valid, got.Status)
	assert.Equal(t, "b", got.ID)
	assert.False(t, got.Refresh)
	assert.Empty(t, headerSave(h, r, snap.Lookup("b"), got), "a binding needing no refresh is left as it is")

	r2 := headerRequest("X-Affinity-Session", v)
	assert.Zero(t, testing.AllocsPerRun(100, func() { h.Lookup(r2, snap) }), "Lookup allocates")
}

func TestHeaderLookupStatus(t *testing.T) {
	set := newSet(t)
	snap := set.Snapshot()
	clk := &clock{now: t0}
	h := newHeader(t, "Session", [][]byte{key1}, cookie.WithClock(clk.Now), cookie.WithSliding(false))
	valid := h.Issue("a")
	clk.Advance(-time.Hour)
	stale := h.Issue("a")
	clk.Advance(time.Hour)
	other := newHeader(t, "Session", [][]byte{key2}).Issue("a")
	renamed := newHeader(t, "Other", [][]byte{key1}).Issue("a")
	gone := h.Issue("zz")

	tests := []struct {
		name   string
		values []string
		want   policy.Status
		id     string
	}{
		{"no header", nil, policy.None, ""},
		{"empty", []string{""}, policy.None, ""},
		{"valid", []string{valid}, policy.Valid, "a"},
		{"first value only", []string{"junk", valid}, policy.Malformed, ""},
		{"first value wins", []string{valid, "junk"}, policy.Valid, "a"},
		{"too long", []string{valid + valid}, policy.Malformed, ""},
		{"huge", []string{strings.Repeat("A", 1<<16)}, policy.Malformed, ""},
		{"not base64url", []string{strings.Repeat("*", 44)}, policy.Malformed, ""},
		{"other key", []string{other}, policy.Forged, ""},
		{"other name", []string{renamed}, policy.Forged, ""},
		{"edited", []string{withZeroTag(t, valid)}, policy.Forged, ""},
		{"expired", []string{stale}, policy.Expired, ""},
		{"backend gone", []string{gone}, policy.Unknown, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := h.Lookup(headerRequest("Session", tt.values...), snap)
			assert.Equal(t, tt.want, got.Status)
			assert.Equal(t, tt.id, got.ID)
		})
	}
	assert.Equal(t, policy.None, h.Lookup(nil, snap).Status, "a nil request")
}

func TestHeaderSliding(t *testing.T) {
	snap := newSet(t).Snapshot()
	clk := &clock{now: t0}
	h := newHeader(t, "Session", [][]byte{key1}, cookie.WithClock(clk.Now), cookie.WithTTL(time.Minute), cookie.WithMaxLife(3*time.Minute))
	v := headerSave(h, headerRequest("X"), snap.Lookup("a"), policy.Binding{}).Get("Session")
	require.NotEmpty(t, v)

	clk.Advance(40 * time.Second) // at most half the TTL left
	r := headerRequest("Session", v)
	b := h.Lookup(r, snap)
	require.Equal(t, policy.Valid, b.Status)
	require.True(t, b.Refresh)
	v2 := headerSave(h, r, snap.Lookup("a"), b).Get("Session")
	require.NotEmpty(t, v2)
	assert.NotEqual(t, v, v2)

	// The refreshed value keeps the binding's age: it ends at the maximum
	// life however active the client.
	for range 3 { // at 80s, 120s and 160s
		clk.Advance(40 * time.Second)
		r = headerRequest("Session", v2)
		b = h.Lookup(r, snap)
		require.Equal(t, policy.Valid, b.Status, "at %v", clk.now.Sub(t0))
		if next := headerSave(h, r, snap.Lookup("a"), b).Get("Session"); next != "" {
			v2 = next
		}
	}
	clk.Advance(40 * time.Second) // 200s: past the 3-minute maximum life
	assert.Equal(t, policy.Expired, h.Lookup(headerRequest("Session", v2), snap).Status)
}

func TestHeaderKeyRotation(t *testing.T) {
	snap := newSet(t).Snapshot()
	old := newHeader(t, "Session", [][]byte{key1})
	rotated := newHeader(t, "Session", [][]byte{key2, key1})
	r := headerRequest("Session", old.Issue("c"))
	b := rotated.Lookup(r, snap)
	require.Equal(t, policy.Valid, b.Status)
	assert.True(t, b.Refresh, "a value signed with an old key is re-signed")
	v := headerSave(rotated, r, snap.Lookup("c"), b).Get("Session")
	assert.Equal(t, policy.Valid, newHeader(t, "Session", [][]byte{key2}).Lookup(headerRequest("Session", v), snap).Status)
}

func TestHeaderSharesCookieFormat(t *testing.T) {
	snap := newSet(t).Snapshot()
	h := newHeader(t, "mcp-session-id", [][]byte{key1})
	c := newCookie(t, [][]byte{key1}, cookie.WithName("Mcp-Session-Id"))
	got := c.Lookup(request("Mcp-Session-Id="+h.Issue("a")), snap)
	assert.Equal(t, policy.Valid, got.Status)
	assert.Equal(t, "a", got.ID)
	got = h.Lookup(headerRequest("Mcp-Session-Id", c.Issue("b")), snap)
	assert.Equal(t, policy.Valid, got.Status)
	assert.Equal(t, "b", got.ID)
}

func TestHeaderSaveReplacesBackendValue(t *testing.T) {
	snap := newSet(t).Snapshot()
	h := newHeader(t, "Session", [][]byte{key1})
	resp := &http.Response{Header: http.Header{"Session": {"from the backend"}}}
	h.Save(request(), resp, snap.Lookup("a"), policy.Binding{})
	require.Len(t, resp.Header["Session"], 1)
	assert.Equal(t, policy.Valid, h.Lookup(headerRequest("Session", resp.Header["Session"][0]), snap).Status)

	resp = &http.Response{} // nil Header
	h.Save(nil, resp, snap.Lookup("a"), policy.Binding{})
	assert.Len(t, resp.Header["Session"], 1)
}

func TestHeaderExposedToCORS(t *testing.T) {
	snap := newSet(t).Snapshot()
	h := newHeader(t, "Session", [][]byte{key1})
	tests := []struct {
		name string
		in   http.Header
		want []string
	}{
		{"same origin", http.Header{}, nil},
		{"cross origin", http.Header{"Access-Control-Allow-Origin": {"https://app.example"}}, []string{"Session"}},
		{"others exposed", http.Header{"Access-Control-Allow-Origin": {"*"}, "Access-Control-Expose-Headers": {"X-A, X-B"}}, []string{"X-A, X-B", "Session"}},
		{"already exposed", http.Header{"Access-Control-Allow-Origin": {"*"}, "Access-Control-Expose-Headers": {"X-A, session"}}, []string{"X-A, session"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := &http.Response{Header: tt.in}
			h.Save(request(), resp, snap.Lookup("a"), policy.Binding{})
			assert.Equal(t, tt.want, resp.Header["Access-Control-Expose-Headers"])
		})
	}
}

func TestHeaderStrip(t *testing.T) {
	h := newHeader(t, "Session", [][]byte{key1})
	hd := http.Header{"Session": {"v"}, "Cookie": {"affinity=x"}, "Other": {"o"}}
	h.Strip(hd)
	assert.Equal(t, http.Header{"Cookie": {"affinity=x"}, "Other": {"o"}}, hd)
}

func TestNewHeaderErrors(t *testing.T) {
	tests := []struct {
		name string
		hdr  string
		keys [][]byte
		opts []cookie.Option
		want []string
	}{
		{"empty name", "", [][]byte{key1}, nil, []string{`cookie: NewHeader("")`}},
		{"name with space", "a b", [][]byte{key1}, nil, []string{`cookie: NewHeader("a b")`}},
		{"name too long", strings.Repeat("a", 129), [][]byte{key1}, nil, []string{"129 bytes; at most 128"}},
		{"cookie header", "cookie", [][]byte{key1}, nil, []string{`NewHeader("cookie"): a header HTTP or the proxy gives a meaning`}},
		{"hop-by-hop header", "Connection", [][]byte{key1}, nil, []string{`NewHeader("Connection"): a header HTTP or the proxy gives a meaning`}},
		{"no keys", "Session", nil, nil, []string{"no signing keys"}},
		{"bad ttl", "Session", [][]byte{key1}, []cookie.Option{cookie.WithTTL(-time.Second)}, []string{"WithTTL(-1s)"}},
		{"bad clock", "Session", [][]byte{key1}, []cookie.Option{cookie.WithClock(nil)}, []string{"WithClock(nil)"}},
		{"cookie-only options", "Session", [][]byte{key1}, []cookie.Option{
			cookie.WithName("n"), cookie.WithPath("/p"), cookie.WithDomain("example.com"),
			cookie.WithSameSite(http.SameSiteStrictMode), cookie.WithHTTPOnly(true),
			cookie.WithSecure(cookie.SecureAlways), cookie.WithPartitioned(false), cookie.WithCORS(true),
		}, []string{
			`WithName("n"): does not apply to a Header`,
			`WithPath("/p"): does not apply to a Header`,
			`WithDomain("example.com"): does not apply to a Header`,
			`WithSameSite(3): does not apply to a Header`,
			`WithHTTPOnly(true): does not apply to a Header`,
			`WithSecure(SecureAlways): does not apply to a Header`,
			`WithPartitioned(false): does not apply to a Header`,
			`WithCORS(true): does not apply to a Header`,
		}},
		{"every error at once", "a b", [][]byte{[]byte("short")}, []cookie.Option{cookie.WithPath("/"), cookie.WithMaxLife(-time.Second)},
			[]string{`NewHeader("a b")`, "keys[0] is 5 bytes", `WithPath("/")`, "WithMaxLife(-1s)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := cookie.NewHeader(tt.hdr, tt.keys, tt.opts...)
			require.Error(t, err)
			assert.Nil(t, h)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
			assert.Equal(t, len(tt.want), strings.Count(err.Error(), "\n")+1, "one error per invalid value: %v", err)
		})
	}
}

func TestHeaderNeverPanics(t *testing.T) {
	snap := newSet(t).Snapshot()
	h := newHeader(t, "Session", [][]byte{key1})
	for _, v := range []string{"\x00", "é", strings.Repeat("\xff", 44), "=", "\r\n"} {
		assert.NotPanics(t, func() {
			b := h.Lookup(headerRequest("Session", v), snap)
			h.Save(headerRequest("Session", v), &http.Response{}, snap.Lookup("a"), b)
		})
	}
	assert.NotPanics(t, func() { h.Lookup(headerRequest("Session", h.Issue("a")), nil) })
}

func TestHeaderCarriesGroup(t *testing.T) {
	set, err := backend.NewSet([]backend.Config{{ID: "g1", URL: "http://127.0.0.1:1", Group: "green"}})
	require.NoError(t, err)
	snap := set.Snapshot()
	h := newHeader(t, "Session", [][]byte{key1})
	v := headerSave(h, request(), snap.Lookup("g1"), policy.Binding{}).Get("Session")
	b := h.Lookup(headerRequest("Session", v), snap)
	assert.Equal(t, policy.Valid, b.Status)
	assert.Equal(t, "g1", b.ID)
	assert.Equal(t, "green", b.Group)
	c := newCookie(t, [][]byte{key1}, cookie.WithName("Session"))
	assert.Equal(t, b, c.Lookup(request("Session="+v), snap), "the cookie's format, group included")
}
