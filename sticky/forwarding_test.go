package sticky_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/sticky"
)

// forwardingProbe returns a handler trusting trusted in front of a backend
// that records the headers of the last request it got, and a function
// returning them.
func forwardingProbe(t *testing.T, trusted ...netip.Prefix) (*sticky.Handler, func() http.Header) {
	t.Helper()
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
	h, err := sticky.New(set, newCookie(t), sticky.WithTrustedProxies(trusted...))
	require.NoError(t, err)
	return h, func() http.Header {
		mu.Lock()
		defer mu.Unlock()
		return seen
	}
}

// TestForwardedProtoSpoofing sends the handler, in process with a chosen
// peer address, requests whose X-Forwarded-Proto takes odd forms, and
// checks what the backend sees and whether the cookie is Secure: an
// untrusted peer (an IPv6 one, or IPv4-mapped outside the prefix) never
// makes it Secure; a trusted one (IPv4-mapped inside the prefix included)
// does when the last element of the list says https, whether the list
// comes in one field line or several (RFC 9110, section 5.3: the same
// field).
func TestForwardedProtoSpoofing(t *testing.T) {
	h, seen := forwardingProbe(t, netip.MustParsePrefix("127.0.0.2/32"))
	for _, tc := range []struct {
		name   string
		peer   string
		proto  []string
		secure bool
	}{
		{"untrusted upper case", "127.0.0.3:1000", []string{"HTTPS"}, false},
		{"untrusted two lines", "127.0.0.3:1000", []string{"http", "https"}, false},
		{"untrusted list", "127.0.0.3:1000", []string{"http, https"}, false},
		{"untrusted ipv6", "[::1]:1000", []string{"https"}, false},
		{"untrusted mapped", "[::ffff:127.0.0.3]:1000", []string{"https"}, false},
		{"untrusted prefix-like ipv6", "[::127.0.0.2]:1000", []string{"https"}, false},
		{"trusted mapped", "[::ffff:127.0.0.2]:1000", []string{"https"}, true},
		{"trusted upper case", "127.0.0.2:1000", []string{" HTTPS "}, true},
		{"trusted two lines, https last", "127.0.0.2:1000", []string{"http", "https"}, true},
		{"trusted two lines, http last", "127.0.0.2:1000", []string{"https", "http"}, false},
		{"trusted list, http last", "127.0.0.2:1000", []string{"https, http"}, false},
		{"trusted list, https last", "127.0.0.2:1000", []string{"http, https"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "http://shop.example/", nil)
			req.RemoteAddr = tc.peer
			req.Header["X-Forwarded-Proto"] = tc.proto
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			require.Equal(t, http.StatusOK, rec.Code)
			ck := balancerCookie(rec.Header(), "affinity")
			require.NotNil(t, ck)
			assert.Equal(t, tc.secure, ck.Secure, "Secure")
			if ap := netip.MustParseAddrPort(tc.peer); ap.Addr().Unmap() != netip.MustParseAddr("127.0.0.2") {
				assert.Equal(t, []string{"http"}, seen()["X-Forwarded-Proto"], "an untrusted peer's claim reached the backend")
			}
		})
	}
}

// TestUpgradeForms sends upgrade requests in several forms through the
// handler to a backend that switches to its "echo" protocol when asked
// for it, and checks that a request asking for echo is upgraded whatever
// its Connection header's form, and one asking for h2c never is.
func TestUpgradeForms(t *testing.T) {
	set, err := backend.NewSet([]backend.Config{protocolServer(t, "p1", nil)})
	require.NoError(t, err)
	h, err := sticky.New(set, newCookie(t))
	require.NoError(t, err)
	addr := strings.TrimPrefix(front(t, h), "http://")
	for _, tc := range []struct {
		name    string
		headers string
		want    int
	}{
		{"plain", "Connection: Upgrade\r\nUpgrade: echo\r\n", http.StatusSwitchingProtocols},
		{"keep-alive first", "Connection: keep-alive, Upgrade\r\nUpgrade: echo\r\n", http.StatusSwitchingProtocols},
		{"lower case", "connection: upgrade\r\nupgrade: echo\r\n", http.StatusSwitchingProtocols},
		{"two Connection lines", "Connection: keep-alive\r\nConnection: Upgrade\r\nUpgrade: echo\r\n", http.StatusSwitchingProtocols},
		{"echo, then an h2c line", "Connection: Upgrade\r\nUpgrade: echo\r\nUpgrade: h2c\r\n", http.StatusSwitchingProtocols},
		{"h2c line, then echo", "Connection: Upgrade\r\nUpgrade: h2c\r\nUpgrade: echo\r\n", http.StatusUpgradeRequired},
		{"mixed case h2c", "Connection: Upgrade\r\nUpgrade: H2c \r\n", http.StatusUpgradeRequired},
		{"h2c", "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n", http.StatusUpgradeRequired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			require.NoError(t, err)
			t.Cleanup(func() { conn.Close() })
			require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
			_, err = io.WriteString(conn, "GET /echo HTTP/1.1\r\nHost: test\r\n"+tc.headers+"\r\n")
			require.NoError(t, err)
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			require.NoError(t, err)
			assert.Equal(t, tc.want, resp.StatusCode)
		})
	}
}

// TestTrustedProxiesRefusesPrefixesThatNeverMatch checks that New refuses
// trusted proxies that can never match a peer, as policy.ClientIPKey and
// policy.ParsePrefixes do: an IPv4-mapped IPv6 prefix (peers are compared
// unmapped, so ::ffff:10.0.0.0/104 trusts no one while its operator
// believes the proxies behind it trusted).
func TestTrustedProxiesRefusesPrefixesThatNeverMatch(t *testing.T) {
	set, err := backend.NewSet([]backend.Config{{ID: "a", URL: "http://127.0.0.1:1"}})
	require.NoError(t, err)
	for _, p := range []string{"::ffff:127.0.0.0/104", "::ffff:127.0.0.2/128"} {
		_, err := sticky.New(set, newCookie(t), sticky.WithTrustedProxies(netip.MustParsePrefix(p)))
		assert.Error(t, err, p)
	}
}

// TestUntrustedHostForms sends, from an untrusted peer, Host headers that
// look like lists or carry a forged forwarding header, and reports what
// the backend sees as its Host and X-Forwarded-Host.
func TestUntrustedHostForms(t *testing.T) {
	h, seen := forwardingProbe(t, netip.MustParsePrefix("127.0.0.2/32"))
	addr := strings.TrimPrefix(front(t, h), "http://")
	for _, host := range []string{"a.example,evil.example", "a.example, evil.example", "a.example\r\nX-Forwarded-Host: evil.example"} {
		conn, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
		_, err = io.WriteString(conn, "GET / HTTP/1.1\r\nHost: "+host+"\r\nX-Forwarded-Host: evil.example\r\n\r\n")
		require.NoError(t, err)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		require.NoError(t, err)
		conn.Close()
		s := seen()
		t.Logf("Host %q: status %d, X-Forwarded-Host %q", host, resp.StatusCode, s["X-Forwarded-Host"])
		if resp.StatusCode == http.StatusOK {
			assert.NotEqual(t, []string{"evil.example"}, s["X-Forwarded-Host"])
		}
	}
}
