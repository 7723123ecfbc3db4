package clientip_test

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/internal/clientip"
)

// trusted are the proxies of these tests.
var trusted = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}

// request returns a request from the peer remote, with the given
// forwarding header lines ("X-Forwarded-For: ..." or "Forwarded: ...").
func request(remote string, lines ...string) *http.Request {
	r := &http.Request{RemoteAddr: remote, Header: http.Header{}}
	for _, l := range lines {
		name, value, _ := strings.Cut(l, ": ")
		r.Header.Add(name, value)
	}
	return r
}

// The rules are tested in full through policy.ClientIPKey; these cases
// pin what Of and Forwarded each make of them.
func TestOfAndForwarded(t *testing.T) {
	tests := []struct {
		name      string
		remote    string
		lines     []string
		of        string // Of's address; "" for none
		forwarded string // Forwarded's address; "" for none
	}{
		{"untrusted peer", "192.0.2.1:1", nil, "192.0.2.1", ""},
		{"untrusted peer, spoofed XFF", "192.0.2.1:1", []string{"X-Forwarded-For: 203.0.113.7"}, "192.0.2.1", ""},
		{"trusted peer, no header", "10.0.0.1:1", nil, "10.0.0.1", ""},
		{"trusted peer, XFF", "10.0.0.1:1", []string{"X-Forwarded-For: 203.0.113.7"}, "203.0.113.7", "203.0.113.7"},
		{"trusted IPv4-mapped peer", "[::ffff:10.0.0.1]:1", []string{"X-Forwarded-For: 203.0.113.7"}, "203.0.113.7", "203.0.113.7"},
		{"trusted hops skipped", "10.0.0.1:1", []string{"X-Forwarded-For: 198.51.100.9, 203.0.113.7, 10.0.0.3"}, "203.0.113.7", "203.0.113.7"},
		{"every hop trusted", "10.0.0.1:1", []string{"X-Forwarded-For: 10.0.0.3, 10.0.0.2"}, "10.0.0.3", ""},
		{"garbage behind a trusted hop", "10.0.0.1:1", []string{"X-Forwarded-For: 203.0.113.7, bogus, 10.0.0.2"}, "10.0.0.2", ""},
		{"garbage first", "10.0.0.1:1", []string{"X-Forwarded-For: bogus"}, "10.0.0.1", ""},
		{"empty XFF", "10.0.0.1:1", []string{"X-Forwarded-For: "}, "10.0.0.1", ""},
		{"Forwarded", "[fd00::1]:1", []string{`Forwarded: for="[2001:db8::7]:4711";proto=https, for=10.0.0.3`}, "2001:db8::7", "2001:db8::7"},
		{"Forwarded unknown", "10.0.0.1:1", []string{"Forwarded: for=unknown"}, "10.0.0.1", ""},
		{"XFF before Forwarded", "10.0.0.1:1", []string{"Forwarded: for=192.0.2.43", "X-Forwarded-For: 203.0.113.7"}, "203.0.113.7", "203.0.113.7"},
		{"bare address peer", "10.0.0.1", []string{"X-Forwarded-For: 203.0.113.7"}, "203.0.113.7", "203.0.113.7"},
		{"no peer address", "@", []string{"X-Forwarded-For: 203.0.113.7"}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := request(tt.remote, tt.lines...)
			a, ok := clientip.Of(r, trusted)
			if assert.Equal(t, tt.of != "", ok, "Of found an address") && ok {
				assert.Equal(t, netip.MustParseAddr(tt.of), a, "Of")
			}
			a, ok = clientip.Forwarded(r, trusted)
			if assert.Equal(t, tt.forwarded != "", ok, "Forwarded found an address") && ok {
				assert.Equal(t, netip.MustParseAddr(tt.forwarded), a, "Forwarded")
			}
		})
	}
}

func TestNothingTrusted(t *testing.T) {
	r := request("10.0.0.1:1", "X-Forwarded-For: 203.0.113.7")
	a, ok := clientip.Of(r, nil)
	require.True(t, ok)
	assert.Equal(t, netip.MustParseAddr("10.0.0.1"), a)
	_, ok = clientip.Forwarded(r, nil)
	assert.False(t, ok)
}

func TestAllocatesNothing(t *testing.T) {
	xff := request("10.0.0.1:1234", "X-Forwarded-For: 198.51.100.9, [2001:db8::7]:4711, 10.0.0.3")
	fwd := request("[fd00::1]:1234", `Forwarded: for="[2001:db8::7]:4711";proto=https, for=10.0.0.3`)
	for _, tc := range []struct {
		name string
		f    func(*http.Request, []netip.Prefix) (netip.Addr, bool)
		r    *http.Request
	}{
		{"Of, X-Forwarded-For", clientip.Of, xff},
		{"Of, Forwarded", clientip.Of, fwd},
		{"Forwarded, X-Forwarded-For", clientip.Forwarded, xff},
		{"Forwarded, Forwarded", clientip.Forwarded, fwd},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ok := tc.f(tc.r, trusted)
			require.True(t, ok)
			assert.Zero(t, testing.AllocsPerRun(100, func() { tc.f(tc.r, trusted) }))
		})
	}
}
