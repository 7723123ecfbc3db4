package policy_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/cookie"
)

var (
	key1 = []byte("key one: 32 bytes of test secret")
	key2 = []byte("key two: 32 bytes of test secret")
)

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

// newCookie returns a cookie policy, the usual first member of a Chain.
func newCookie(t testing.TB, keys [][]byte, opts ...cookie.Option) *cookie.Policy {
	t.Helper()
	c, err := cookie.New(keys, opts...)
	require.NoError(t, err)
	return c
}

// newAppCookie returns an application cookie policy following PHPSESSID.
func newAppCookie(t testing.TB, keys [][]byte, opts ...cookie.Option) *cookie.App {
	t.Helper()
	a, err := cookie.NewApp("PHPSESSID", keys, opts...)
	require.NoError(t, err)
	return a
}

// request returns a request carrying the given Cookie header lines.
func request(lines ...string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "http://example.com/", nil)
	for _, l := range lines {
		r.Header.Add("Cookie", l)
	}
	return r
}
