package cookie

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/policy"
)

// The tests of this file hold the cookie to the format the package
// documentation describes, recomputing every field from the key with the
// standard library (and the CMAC that TestCMAC checks against RFC 4493),
// so that another implementation built from the documentation interoperates.

var formatKey = []byte("format key: 32 bytes of secret..")

// hmacSHA256 returns HMAC-SHA-256(key, msg).
func hmacSHA256(key []byte, msg ...[]byte) []byte {
	h := hmac.New(sha256.New, key)
	for _, m := range msg {
		h.Write(m)
	}
	return h.Sum(nil)
}

// docToken returns the token of backend id under key, as documented.
func docToken(key []byte, id string) []byte {
	return hmacSHA256(hmacSHA256(key, []byte("affinity backend token v1")), []byte(id))[:8]
}

func TestCookieFormat(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	c, err := New([][]byte{formatKey}, WithName("lb"), WithTTL(time.Hour),
		WithClock(func() time.Time { return now }))
	require.NoError(t, err)
	v, err := base64.RawURLEncoding.DecodeString(c.Issue("app-1"))
	require.NoError(t, err)
	require.Len(t, v, 33)

	assert.Equal(t, byte(2), v[0], "version")
	assert.Equal(t, docToken(formatKey, "app-1"), v[1:9], "token")
	assert.Equal(t, uint32(1_800_000_000), binary.BigEndian.Uint32(v[9:13]), "issued")
	assert.Equal(t, uint32(1_800_003_600), binary.BigEndian.Uint32(v[13:17]), "expires")
	m, err := newCMAC(hmacSHA256(formatKey, []byte("affinity cookie cmac v2\x00lb"))[:16])
	require.NoError(t, err)
	tag := m.sum(v[1:17])
	assert.Equal(t, tag[:], v[17:], "tag")
}

// format1Payload returns the bytes of a cookie value of format 1, a
// format never released, for the cookie called name, signed with key: the
// fields of format 2 under version 1, tagged with the first 16 bytes of
// HMAC-SHA-256 of the name, a zero byte and the first 17 bytes, under the
// subkey labelled "affinity cookie mac v1".
func format1Payload(key []byte, name, id string, issued, expires uint32) []byte {
	v := make([]byte, 17, 33)
	v[0] = 1
	copy(v[1:9], docToken(key, id))
	binary.BigEndian.PutUint32(v[9:13], issued)
	binary.BigEndian.PutUint32(v[13:17], expires)
	tag := hmacSHA256(hmacSHA256(key, []byte("affinity cookie mac v1")), []byte(name), []byte{0}, v)
	return append(v, tag[:16]...)
}

// format1Value returns format1Payload's bytes, encoded.
func format1Value(key []byte, name, id string, issued, expires uint32) string {
	return base64.RawURLEncoding.EncodeToString(format1Payload(key, name, id, issued, expires))
}

// TestCookieFormat1Refused checks that a cookie of format 1, even one
// authentic under that format's rules, is Malformed as any unknown version
// is, and that its client is placed afresh: Save binds it to the backend
// chosen for it, with a new binding of format 2 whose age starts now.
func TestCookieFormat1Refused(t *testing.T) {
	set, err := backend.NewSet([]backend.Config{{ID: "app-1", URL: "http://127.0.0.1:1"}, {ID: "app-2", URL: "http://127.0.0.1:2"}})
	require.NoError(t, err)
	snap := set.Snapshot()
	now := time.Unix(1_800_000_000, 0)
	c, err := New([][]byte{formatKey}, WithName("lb"), WithTTL(time.Hour), WithMaxLife(24*time.Hour),
		WithClock(func() time.Time { return now }))
	require.NoError(t, err)
	other := []byte("other key: 32 bytes of secret...")

	request := func(value string) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "http://lb/", nil)
		r.Header.Set("Cookie", "lb="+value)
		return r
	}
	tests := []struct {
		name  string
		value string
		want  policy.Binding
	}{
		{"authentic", format1Value(formatKey, "lb", "app-2", 1_799_999_000, 1_800_002_600), policy.Binding{Status: policy.Malformed}},
		{"session cookie", format1Value(formatKey, "lb", "app-1", 1_799_999_000, 0), policy.Binding{Status: policy.Malformed}},
		{"expired", format1Value(formatKey, "lb", "app-2", 1_799_990_000, 1_799_999_999), policy.Binding{Status: policy.Malformed}},
		{"other key", format1Value(other, "lb", "app-2", 1_799_999_000, 1_800_002_600), policy.Binding{Status: policy.Malformed}},
		{"other name", format1Value(formatKey, "affinity", "app-2", 1_799_999_000, 1_800_002_600), policy.Binding{Status: policy.Malformed}},
		{"unknown backend", format1Value(formatKey, "lb", "app-9", 1_799_999_000, 1_800_002_600), policy.Binding{Status: policy.Malformed}},
		{"as format 2", asFormat2(format1Payload(formatKey, "lb", "app-2", 1_799_999_000, 1_800_002_600)), policy.Binding{Status: policy.Forged}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, c.Lookup(request(tt.value), snap))
		})
	}

	t.Run("placed afresh", func(t *testing.T) {
		r := request(format1Value(formatKey, "lb", "app-2", 1_799_999_000, 1_800_002_600))
		prev := c.Lookup(r, snap)
		require.Equal(t, policy.Binding{Status: policy.Malformed}, prev)
		// The picker, not the cookie, chooses: here app-1.
		resp := &http.Response{Header: http.Header{}}
		c.Save(r, resp, snap.Lookup("app-1"), prev)
		lines := resp.Header.Values("Set-Cookie")
		require.Len(t, lines, 1)
		ck, err := http.ParseSetCookie(lines[0])
		require.NoError(t, err)
		v, err := base64.RawURLEncoding.DecodeString(ck.Value)
		require.NoError(t, err)
		require.Len(t, v, 33)
		assert.Equal(t, byte(2), v[0], "version")
		assert.Equal(t, uint32(1_800_000_000), binary.BigEndian.Uint32(v[9:13]), "issued now, not when the format 1 cookie says")
		assert.Equal(t, policy.Binding{ID: "app-1", Status: policy.Valid}, unseeded(c.Lookup(request(ck.Value), snap)))
	})
}

// asFormat2 returns the value of payload v, marked as format 2.
func asFormat2(v []byte) string {
	v[0] = 2
	return base64.RawURLEncoding.EncodeToString(v)
}

// docGroupToken returns the token of group under key, as documented.
func docGroupToken(key []byte, group string) []byte {
	return hmacSHA256(hmacSHA256(key, []byte("affinity backend token v1")), []byte{0}, []byte(group))[:6]
}

// TestCookieFormat3 holds a binding to a backend of a named group to
// format 3, and a binding to the default group to format 2.
func TestCookieFormat3(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	c, err := New([][]byte{formatKey}, WithName("lb"), WithTTL(time.Hour),
		WithClock(func() time.Time { return now }))
	require.NoError(t, err)
	set, err := backend.NewSet([]backend.Config{
		{ID: "app-1", URL: "http://127.0.0.1:1", Group: "green"},
		{ID: "app-2", URL: "http://127.0.0.1:2"},
	})
	require.NoError(t, err)
	snap := set.Snapshot()
	saved := func(id string) string {
		r := httptest.NewRequest(http.MethodGet, "http://lb/", nil)
		prev := c.Lookup(r, snap)
		resp := &http.Response{Header: http.Header{}}
		c.Save(r, resp, snap.Lookup(id), prev)
		ck, err := http.ParseSetCookie(resp.Header.Get("Set-Cookie"))
		require.NoError(t, err)
		return ck.Value
	}

	s := saved("app-1")
	assert.Len(t, s, 52)
	v, err := base64.RawURLEncoding.DecodeString(s)
	require.NoError(t, err)
	require.Len(t, v, 39)
	assert.Equal(t, byte(3), v[0], "version")
	assert.Equal(t, docToken(formatKey, "app-1"), v[1:9], "token")
	assert.Equal(t, docGroupToken(formatKey, "green"), v[9:15], "group")
	assert.Equal(t, uint32(1_800_000_000), binary.BigEndian.Uint32(v[15:19]), "issued")
	assert.Equal(t, uint32(1_800_003_600), binary.BigEndian.Uint32(v[19:23]), "expires")
	m, err := newCMAC(hmacSHA256(formatKey, []byte("affinity cookie cmac v2\x00lb"))[:16])
	require.NoError(t, err)
	tag := m.sum(v[1:23])
	assert.Equal(t, tag[:], v[23:], "tag")

	v2, err := base64.RawURLEncoding.DecodeString(saved("app-2"))
	require.NoError(t, err)
	assert.Len(t, v2, 33, "the default group: format 2")
	assert.Equal(t, byte(2), v2[0])

	request := func(value string) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "http://lb/", nil)
		r.Header.Set("Cookie", "lb="+value)
		return r
	}
	edited := func(b []byte, i int) string {
		e := append([]byte(nil), b...)
		e[i] ^= 1
		return base64.RawURLEncoding.EncodeToString(e)
	}
	asVersion := func(b []byte, ver byte) string {
		e := append([]byte(nil), b...)
		e[0] = ver
		return base64.RawURLEncoding.EncodeToString(e)
	}
	tests := []struct {
		name  string
		value string
		want  policy.Binding
	}{
		{"format 3", s, policy.Binding{ID: "app-1", Status: policy.Valid, Group: "green"}},
		{"format 2, the default group", base64.RawURLEncoding.EncodeToString(v2), policy.Binding{ID: "app-2", Status: policy.Valid}},
		{"group edited", edited(v, 9), policy.Binding{Status: policy.Forged}},
		{"issued edited", edited(v, 16), policy.Binding{Status: policy.Forged}},
		{"tag edited", edited(v, 30), policy.Binding{Status: policy.Forged}},
		{"format 3 marked 2", asVersion(v, 2), policy.Binding{Status: policy.Malformed}},
		{"format 2 marked 3", asVersion(v2, 3), policy.Binding{Status: policy.Malformed}},
		{"format 3 marked 4", asVersion(v, 4), policy.Binding{Status: policy.Malformed}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, unseeded(c.Lookup(request(tt.value), snap)))
		})
	}

	t.Run("format 2 for a backend now in a group", func(t *testing.T) {
		// A cookie issued before app-1 joined green: read as the default
		// group, and refreshed so that the next one names green.
		old := c.Issue("app-1")
		require.Len(t, old, 44)
		prev := c.Lookup(request(old), snap)
		assert.Equal(t, policy.Binding{ID: "app-1", Status: policy.Valid, Refresh: true}, unseeded(prev))
		resp := &http.Response{Header: http.Header{}}
		c.Save(request(old), resp, snap.Lookup("app-1"), prev)
		ck, err := http.ParseSetCookie(resp.Header.Get("Set-Cookie"))
		require.NoError(t, err)
		assert.Equal(t, policy.Binding{ID: "app-1", Status: policy.Valid, Group: "green"}, unseeded(c.Lookup(request(ck.Value), snap)))
	})

	t.Run("backend left", func(t *testing.T) {
		_, err := set.Remove("app-1")
		require.NoError(t, err)
		assert.Equal(t, policy.Binding{Status: policy.Unknown}, unseeded(c.Lookup(request(s), set.Snapshot())),
			"green has no member left and no weight: the set does not know it")
		require.NoError(t, set.SetGroupWeight("green", 0))
		assert.Equal(t, policy.Binding{Status: policy.Unknown, Group: "green"}, unseeded(c.Lookup(request(s), set.Snapshot())),
			"green has no member left, but a weight")
	})
}

// unseeded returns b without its Seed, which the tests that compare
// bindings whole do not spell out.
func unseeded(b policy.Binding) policy.Binding {
	b.Seed = 0
	return b
}
