package gateway_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/cookie"
	"github.com/affinitylb/affinity/gateway"
	"github.com/affinitylb/affinity/policy"
)

var testKeys = [][]byte{[]byte("gateway test key: 32 bytes long!")}

// issued saves a new binding to backend id with p and returns the response
// header.
func issued(t *testing.T, p policy.Policy, id string) http.Header {
	t.Helper()
	set, err := backend.NewSet([]backend.Config{{ID: id, URL: "http://127.0.0.1:1"}})
	require.NoError(t, err)
	snap := set.Snapshot()
	r := httptest.NewRequest(http.MethodGet, "http://example.com/", nil)
	resp := &http.Response{Header: http.Header{}}
	p.Save(r, resp, snap.Lookup(id), p.Lookup(r, snap))
	return resp.Header
}

func TestNewPolicyMapping(t *testing.T) {
	tests := []struct {
		name       string
		sp         gateway.SessionPersistence
		header     string // for the Header type: the header's name
		cookieName string // for the Cookie type
		path       string
		maxAge     int // 0: a session cookie
	}{
		{"zero value", gateway.SessionPersistence{}, "", "affinity", "/", 0},
		{"session cookie", gateway.SessionPersistence{SessionName: "s", Path: "/cart", CookieConfig: &gateway.CookieConfig{LifetimeType: gateway.Session}}, "", "s", "/cart", 0},
		{"session cookie with absolute timeout", gateway.SessionPersistence{SessionName: "s", AbsoluteTimeout: time.Hour}, "", "s", "/", 0},
		{"permanent cookie", gateway.SessionPersistence{SessionName: "s", AbsoluteTimeout: time.Hour, Type: gateway.Cookie, CookieConfig: &gateway.CookieConfig{LifetimeType: gateway.Permanent}}, "", "s", "/", 3600},
		{"permanent cookie with idle timeout", gateway.SessionPersistence{SessionName: "s", AbsoluteTimeout: time.Hour, IdleTimeout: 10 * time.Minute, CookieConfig: &gateway.CookieConfig{LifetimeType: gateway.Permanent}}, "", "s", "/", 600},
		{"header", gateway.SessionPersistence{SessionName: "x-session", Type: gateway.Header}, "X-Session", "", "", 0},
		{"header default name", gateway.SessionPersistence{Type: gateway.Header, IdleTimeout: time.Minute, AbsoluteTimeout: time.Hour}, "Affinity", "", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := gateway.NewPolicy(tt.sp, testKeys)
			require.NoError(t, err)
			_, strips := p.(policy.Stripper)
			assert.True(t, strips)
			out := issued(t, p, "app1")
			if tt.header != "" {
				require.IsType(t, &cookie.Header{}, p)
				assert.Equal(t, tt.header, p.(*cookie.Header).Name())
				assert.Len(t, out.Get(tt.header), 44)
				assert.Empty(t, out.Values("Set-Cookie"))
				return
			}
			require.IsType(t, &cookie.Policy{}, p)
			lines := out.Values("Set-Cookie")
			require.Len(t, lines, 1)
			c, err := http.ParseSetCookie(lines[0])
			require.NoError(t, err)
			assert.Equal(t, tt.cookieName, c.Name)
			assert.Equal(t, tt.path, c.Path)
			assert.Equal(t, tt.maxAge, c.MaxAge)
			assert.Equal(t, tt.maxAge == 0, c.RawExpires == "", "Expires with Max-Age only: %s", lines[0])
		})
	}
}

func TestNewPolicyTimeoutsEnforced(t *testing.T) {
	set, err := backend.NewSet([]backend.Config{{ID: "app1", URL: "http://127.0.0.1:1"}})
	require.NoError(t, err)
	snap := set.Snapshot()
	// The timeouts are signed into the value and enforced by Lookup, with
	// the real clock: a value issued one AbsoluteTimeout ago is refused. A
	// Policy made by hand with the same options and name, and a clock set
	// back, issues it.
	tests := []struct {
		name string
		sp   gateway.SessionPersistence
		old  []cookie.Option
	}{
		{"session cookie", gateway.SessionPersistence{SessionName: "s", AbsoluteTimeout: time.Hour},
			[]cookie.Option{cookie.WithName("s"), cookie.WithTTL(0)}},
		{"permanent cookie", gateway.SessionPersistence{SessionName: "s", AbsoluteTimeout: time.Hour, CookieConfig: &gateway.CookieConfig{LifetimeType: gateway.Permanent}},
			[]cookie.Option{cookie.WithName("s"), cookie.WithTTL(2 * time.Hour)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := gateway.NewPolicy(tt.sp, testKeys)
			require.NoError(t, err)
			back := func() time.Time { return time.Now().Add(-time.Hour - time.Second) }
			old, err := cookie.New(testKeys, append(tt.old, cookie.WithClock(back))...)
			require.NoError(t, err)
			r := httptest.NewRequest(http.MethodGet, "http://example.com/", nil)
			r.Header.Set("Cookie", "s="+old.Issue("app1"))
			assert.Equal(t, policy.Expired, p.Lookup(r, snap).Status)
		})
	}
}

func TestNewPolicyErrors(t *testing.T) {
	permanent := &gateway.CookieConfig{LifetimeType: gateway.Permanent}
	tests := []struct {
		name string
		sp   gateway.SessionPersistence
		keys [][]byte
		want []string
	}{
		{"bad name", gateway.SessionPersistence{SessionName: "a;b"}, testKeys, []string{`gateway: SessionName("a;b")`}},
		{"long name", gateway.SessionPersistence{SessionName: strings.Repeat("n", 129)}, testKeys, []string{"129 bytes; at most 128"}},
		{"negative timeout", gateway.SessionPersistence{AbsoluteTimeout: -time.Second}, testKeys, []string{"AbsoluteTimeout(-1s): negative"}},
		{"sub-second timeout", gateway.SessionPersistence{Type: gateway.Header, IdleTimeout: time.Millisecond}, testKeys, []string{"IdleTimeout(1ms): under a second"}},
		{"fractional timeout", gateway.SessionPersistence{AbsoluteTimeout: 1500 * time.Millisecond}, testKeys, []string{"AbsoluteTimeout(1.5s): not a whole number of seconds"}},
		{"idle past absolute", gateway.SessionPersistence{Type: gateway.Header, AbsoluteTimeout: time.Minute, IdleTimeout: time.Hour}, testKeys, []string{"IdleTimeout(1h0m0s): longer than AbsoluteTimeout(1m0s)"}},
		{"idle over 400 days", gateway.SessionPersistence{Type: gateway.Header, IdleTimeout: 401 * 24 * time.Hour}, testKeys, []string{"IdleTimeout(9624h0m0s): over 400 days"}},
		{"idle with a session cookie", gateway.SessionPersistence{IdleTimeout: time.Minute}, testKeys, []string{"IdleTimeout(1m0s) with LifetimeType Session"}},
		{"permanent without absolute", gateway.SessionPersistence{CookieConfig: permanent}, testKeys, []string{"LifetimeType Permanent without AbsoluteTimeout"}},
		{"permanent over 400 days", gateway.SessionPersistence{CookieConfig: permanent, AbsoluteTimeout: 401 * 24 * time.Hour}, testKeys, []string{"AbsoluteTimeout(9624h0m0s): over 400 days"}},
		{"bad lifetime", gateway.SessionPersistence{CookieConfig: &gateway.CookieConfig{LifetimeType: "Forever"}}, testKeys, []string{`CookieConfig.LifetimeType("Forever")`}},
		{"bad type", gateway.SessionPersistence{Type: "Query"}, testKeys, []string{`Type("Query"): want Cookie or Header`}},
		{"bad path", gateway.SessionPersistence{Path: "cart"}, testKeys, []string{`Path("cart"): does not begin with '/'`}},
		{"path with header", gateway.SessionPersistence{Type: gateway.Header, Path: "/cart"}, testKeys, []string{`Path("/cart"): applies to Type Cookie only`}},
		{"cookie config with header", gateway.SessionPersistence{Type: gateway.Header, CookieConfig: &gateway.CookieConfig{}}, testKeys, []string{"CookieConfig({LifetimeType:}): applies to Type Cookie only"}},
		{"no keys", gateway.SessionPersistence{}, nil, []string{"cookie: no signing keys"}},
		{"short key", gateway.SessionPersistence{Type: gateway.Header}, [][]byte{[]byte("short")}, []string{"cookie: keys[0] is 5 bytes"}},
		{"every error at once", gateway.SessionPersistence{SessionName: " ", Path: "x", AbsoluteTimeout: -1, CookieConfig: &gateway.CookieConfig{LifetimeType: "Forever"}}, nil,
			[]string{"SessionName", "Path", "AbsoluteTimeout(-1ns)", `LifetimeType("Forever")`, "no signing keys"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := gateway.NewPolicy(tt.sp, tt.keys)
			require.Error(t, err)
			assert.Nil(t, p)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
			assert.Equal(t, len(tt.want), strings.Count(err.Error(), "\n")+1, "one error per invalid value: %v", err)
		})
	}
}
