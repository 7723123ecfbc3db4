package policy_test

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/cespare/xxhash/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/policy"
)

// keyed is the binding a Key returns for the key k.
func keyed(k string) policy.Binding {
	return policy.Binding{Status: policy.Keyed, KeyHash: xxhash.Sum64String(k)}
}

var none = policy.Binding{Status: policy.None}

func TestHeaderKey(t *testing.T) {
	long := strings.Repeat("k", 1024)
	tests := []struct {
		name   string
		header string // the name the Key is made with
		values []string
		want   policy.Binding
	}{
		{"absent", "X-Client", nil, none},
		{"present", "X-Client", []string{"c-42"}, keyed("c-42")},
		{"name canonicalized", "x-client", []string{"c-42"}, keyed("c-42")},
		{"trimmed", "X-Client", []string{" \tc-42 \t"}, keyed("c-42")},
		{"inner spaces kept", "X-Client", []string{"a b"}, keyed("a b")},
		{"first value wins", "X-Client", []string{"c-1", "c-2"}, keyed("c-1")},
		{"first value decides", "X-Client", []string{"", "c-2"}, none},
		{"empty", "X-Client", []string{""}, none},
		{"blank", "X-Client", []string{" \t "}, none},
		{"1 KiB", "X-Client", []string{long}, keyed(long)},
		{"over 1 KiB", "X-Client", []string{long + "k"}, none},
		{"over 1 KiB before trimming", "X-Client", []string{" " + long + " "}, keyed(long)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := policy.HeaderKey(tt.header)
			require.NoError(t, err)
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			for _, v := range tt.values {
				r.Header.Add("X-Client", v)
			}
			r.Header.Set("X-Client-Id", "decoy")
			assert.Equal(t, tt.want, k.Lookup(r, nil))
		})
	}
}

func TestQueryKey(t *testing.T) {
	long := strings.Repeat("v", 1024)
	tests := []struct {
		name  string
		param string
		query string
		want  policy.Binding
	}{
		{"no query", "k", "", none},
		{"only", "k", "k=abc", keyed("abc")},
		{"among others", "k", "a=1&k=abc&b=2", keyed("abc")},
		{"percent-escaped space", "k", "k=a%20b", keyed("a b")},
		{"plus is a space", "k", "k=a+b", keyed("a b")},
		{"escaped ampersand", "k", "k=a%26b", keyed("a&b")},
		{"escaped percent", "k", "k=100%25", keyed("100%")},
		{"lower-case hex", "k", "k=%c3%a9", keyed("é")},
		{"escaped name", "key", "k%65y=v", keyed("v")},
		{"name with space", "a b", "a+b=1&a%20b=2", keyed("1")},
		{"repeated: first wins", "k", "k=1&k=2", keyed("1")},
		{"repeated: first decides", "k", "k=&k=2", none},
		{"longer name first", "k", "kk=1&k=2", keyed("2")},
		{"name is a prefix", "k", "kk=1", none},
		{"name is a suffix", "k", "xk=1", none},
		{"shorter name", "key", "ke=1", none},
		{"value is the name", "k", "x=k", none},
		{"empty value", "k", "k=", none},
		{"no equals", "k", "k", none},
		{"equals in value", "k", "k=a=b", keyed("a=b")},
		{"semicolon is no separator", "k", "k=a;b=c", keyed("a;b=c")},
		{"bad escape", "k", "k=%zz", none},
		{"truncated escape", "k", "k=ab%2", none},
		{"lone percent", "k", "k=%", none},
		{"bad escape in an earlier name", "k", "%zz=1&k=2", keyed("2")},
		{"empty pairs", "k", "&&k=1&", keyed("1")},
		{"1 KiB", "k", "k=" + long, keyed(long)},
		{"over 1 KiB", "k", "k=" + long + "v", none},
		{"over 1 KiB as sent", "k", "k=" + strings.Repeat("%20", 342), none},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := policy.QueryKey(tt.param)
			require.NoError(t, err)
			r := httptest.NewRequest(http.MethodGet, "/path", nil)
			r.URL.RawQuery = tt.query
			assert.Equal(t, tt.want, k.Lookup(r, nil))
		})
	}
	t.Run("no URL", func(t *testing.T) {
		k, err := policy.QueryKey("k")
		require.NoError(t, err)
		assert.Equal(t, none, k.Lookup(&http.Request{}, nil))
	})
}

func TestCookieKey(t *testing.T) {
	tests := []struct {
		name  string
		lines []string
		want  policy.Binding
	}{
		{"absent", nil, none},
		{"only", []string{"sid=abc"}, keyed("abc")},
		{"among others", []string{"a=1; sid=abc; b=2"}, keyed("abc")},
		{"quoted", []string{`sid="abc"`}, keyed("abc")},
		{"longer name first", []string{"sidx=1; sid=2"}, keyed("2")},
		{"name is a prefix", []string{"sidx=1"}, none},
		{"first wins", []string{"sid=1", "sid=2"}, keyed("1")},
		{"empty", []string{"sid="}, none},
		{"256 bytes", []string{"sid=" + strings.Repeat("v", 256)}, keyed(strings.Repeat("v", 256))},
		{"over 256 bytes", []string{"sid=" + strings.Repeat("v", 257)}, none},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := policy.CookieKey("sid")
			require.NoError(t, err)
			assert.Equal(t, tt.want, k.Lookup(request(tt.lines...), nil))
		})
	}
}

func TestKeysHashTheValue(t *testing.T) {
	header, err := policy.HeaderKey("X-Client")
	require.NoError(t, err)
	query, err := policy.QueryKey("client")
	require.NoError(t, err)
	cookie, err := policy.CookieKey("client")
	require.NoError(t, err)
	lookup := func(v string) []policy.Binding {
		r := httptest.NewRequest(http.MethodGet, "/?client="+url.QueryEscape(v), nil)
		r.Header.Set("X-Client", v)
		r.Header.Set("Cookie", "client="+v)
		return []policy.Binding{header.Lookup(r, nil), query.Lookup(r, nil), cookie.Lookup(r, nil)}
	}
	a1, a2, b := lookup("alice"), lookup("alice"), lookup("bob")
	for i := range a1 {
		assert.Equal(t, policy.Keyed, a1[i].Status)
		assert.Equal(t, a1[i], a2[i], "same key, same KeyHash")
		assert.NotEqual(t, a1[i].KeyHash, b[i].KeyHash, "different keys, different KeyHashes")
		assert.Equal(t, a1[0], a1[i], "the hash of the value, wherever it was found")
	}
}

// TestHashKey holds HashKey to XXH64 with seed 0, by the reference
// implementation's test vectors, so that the hash never changes under
// replicas or under a policy of the user's that relies on it.
func TestHashKey(t *testing.T) {
	assert.Equal(t, uint64(0xef46db3751d8e999), policy.HashKey(""))
	assert.Equal(t, uint64(0x44bc2cf5ad770999), policy.HashKey("abc"))
}

// TestKeysHashWithHashKey checks that every built-in key policy sets
// KeyHash to the HashKey of the key it found, as written or decoded: what
// a policy of the user's, hashing with HashKey, sets for the same key.
func TestKeysHashWithHashKey(t *testing.T) {
	header, err := policy.HeaderKey("X-Client")
	require.NoError(t, err)
	query, err := policy.QueryKey("client")
	require.NoError(t, err)
	cookie, err := policy.CookieKey("client")
	require.NoError(t, err)
	ip, err := policy.ClientIPKey(nil)
	require.NoError(t, err)
	r := httptest.NewRequest(http.MethodGet, "/?client=a%20b+c", nil)
	r.Header.Set("X-Client", " a b c\t")
	r.Header.Set("Cookie", `client="a b c"`)
	r.RemoteAddr = "192.0.2.7:1234"
	addr := netip.MustParseAddr("192.0.2.7").As16()
	for _, tc := range []struct {
		name string
		p    *policy.Key
		key  string
	}{
		{"header", header, "a b c"},
		{"query, decoded", query, "a b c"},
		{"cookie, unquoted", cookie, "a b c"},
		{"client IP, 16-byte form", ip, string(addr[:])},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, policy.Binding{Status: policy.Keyed, KeyHash: policy.HashKey(tc.key)}, tc.p.Lookup(r, nil))
		})
	}
}

func TestKeySaveWritesNothing(t *testing.T) {
	k, err := policy.HeaderKey("X-Client")
	require.NoError(t, err)
	set := newSet(t)
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("X-Client", "c")
	resp := &http.Response{}
	k.Save(r, resp, set.Snapshot().Lookup("a"), k.Lookup(r, set.Snapshot()))
	assert.Nil(t, resp.Header)
}

func TestZeroKey(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "/?k=1", nil)
	r.Header.Set("K", "1")
	assert.Equal(t, none, (&policy.Key{}).Lookup(r, nil))
}

func TestKeyConstructorErrors(t *testing.T) {
	tests := []struct {
		name    string
		make    func() (*policy.Key, error)
		wantErr string
	}{
		{"empty header name", func() (*policy.Key, error) { return policy.HeaderKey("") }, "empty header name"},
		{"header name with space", func() (*policy.Key, error) { return policy.HeaderKey("X Client") }, `header name "X Client": character ' '`},
		{"header name with colon", func() (*policy.Key, error) { return policy.HeaderKey("X-Client:") }, `header name "X-Client:": character ':'`},
		{"header name with newline", func() (*policy.Key, error) { return policy.HeaderKey("X\nY") }, `header name "X\nY": character '\n'`},
		{"empty query parameter", func() (*policy.Key, error) { return policy.QueryKey("") }, "empty query parameter name"},
		{"empty cookie name", func() (*policy.Key, error) { return policy.CookieKey("") }, "empty cookie name"},
		{"cookie name with equals", func() (*policy.Key, error) { return policy.CookieKey("a=b") }, `cookie name "a=b": character '='`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := tt.make()
			assert.Nil(t, k)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantErr)
			assert.True(t, strings.HasPrefix(err.Error(), "policy: "), err.Error())
		})
	}
}

// FuzzQueryKey checks QueryKey against a reading of the query built on
// net/url's unescaping.
func FuzzQueryKey(f *testing.F) {
	for _, seed := range []string{"", "k=1", "k=a%20b&k=2", "kk=1&k=a+b", "%6b=v", "k=%zz", "k=%", "a=1&&k", "k=" + strings.Repeat("%41", 400)} {
		f.Add(seed)
	}
	k, err := policy.QueryKey("k")
	require.NoError(f, err)
	f.Fuzz(func(t *testing.T, query string) {
		r := &http.Request{URL: &url.URL{RawQuery: query}}
		assert.Equal(t, wantQueryKey(query, "k"), k.Lookup(r, nil), "query %q", query)
	})
}

// wantQueryKey is QueryKey's reading of the query, with net/url to unescape.
func wantQueryKey(query, name string) policy.Binding {
	for pair := range strings.SplitSeq(query, "&") {
		n, v, _ := strings.Cut(pair, "=")
		if n, err := url.QueryUnescape(n); err != nil || n != name {
			continue
		}
		if len(v) > 1024 {
			return none
		}
		v, err := url.QueryUnescape(v)
		if err != nil || v == "" {
			return none
		}
		return keyed(v)
	}
	return none
}

func TestKeyLookupAllocatesNothing(t *testing.T) {
	header, err := policy.HeaderKey("X-Client")
	require.NoError(t, err)
	query, err := policy.QueryKey("client")
	require.NoError(t, err)
	cookie, err := policy.CookieKey("sid")
	require.NoError(t, err)
	ip := newClientIPKey(t, "10.0.0.0/8, fd00::/8")
	chain := newChain(t, newCookie(t, [][]byte{key1}), header)

	r := ipRequest("10.0.0.1:1234",
		"X-Client: c-42",
		"Cookie: theme=dark; sid=abc",
		"X-Forwarded-For: 198.51.100.9, [2001:db8::7]:4711, 10.0.0.3")
	r.URL = &url.URL{RawQuery: "page=2&client=a%20b+c&lang=en"}
	fwd := ipRequest("[fd00::1]:1234", `Forwarded: for="[2001:db8::7]:4711";proto=https, for=10.0.0.3`)
	for _, tc := range []struct {
		name string
		p    policy.Policy
		r    *http.Request
	}{
		{"header", header, r},
		{"query", query, r},
		{"cookie", cookie, r},
		{"X-Forwarded-For", ip, r},
		{"Forwarded", ip, fwd},
		{"chain", chain, r},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, policy.Keyed, tc.p.Lookup(tc.r, nil).Status)
			assert.Zero(t, testing.AllocsPerRun(100, func() { tc.p.Lookup(tc.r, nil) }))
		})
	}
}
