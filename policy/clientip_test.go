package policy_test

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/cespare/xxhash/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/policy"
)

// ipKeyed is the binding ClientIPKey returns for the client address addr.
func ipKeyed(addr string) policy.Binding {
	b := netip.MustParseAddr(addr).As16()
	return policy.Binding{Status: policy.Keyed, KeyHash: xxhash.Sum64(b[:])}
}

// ipRequest returns a request from the peer remote, with the given
// forwarding header lines ("X-Forwarded-For: ..." or "Forwarded: ...").
func ipRequest(remote string, lines ...string) *http.Request {
	r := &http.Request{RemoteAddr: remote, Header: http.Header{}}
	for _, l := range lines {
		name, value, _ := strings.Cut(l, ": ")
		r.Header.Add(name, value)
	}
	return r
}

func newClientIPKey(t testing.TB, trusted string) *policy.Key {
	t.Helper()
	ps, err := policy.ParsePrefixes(trusted)
	require.NoError(t, err)
	k, err := policy.ClientIPKey(ps)
	require.NoError(t, err)
	return k
}

func TestClientIPKey(t *testing.T) {
	const proxies = "10.0.0.0/8, fd00::/8"
	var hops []string // "10.0.1.40", ..., "10.0.1.1": 40 trusted hops
	for i := 40; i > 0; i-- {
		hops = append(hops, fmt.Sprintf("10.0.1.%d", i))
	}
	tests := []struct {
		name    string
		trusted string
		remote  string
		lines   []string
		want    string // the client address; "" for no key
	}{
		// The peer.
		{"IPv4 peer", "", "192.0.2.1:1234", nil, "192.0.2.1"},
		{"IPv6 peer", "", "[2001:db8::1]:443", nil, "2001:db8::1"},
		{"IPv4-mapped IPv6 peer", "", "[::ffff:192.0.2.1]:1234", nil, "192.0.2.1"},
		{"zoned peer", "", "[fe80::1%eth0]:80", nil, "fe80::1"},
		{"peer without port", "", "192.0.2.1", nil, "192.0.2.1"},
		{"no peer", "", "", nil, ""},
		{"peer not an address", "", "@", nil, ""},
		{"peer a host name", "", "localhost:80", nil, ""},

		// Who is believed.
		{"no trusted proxies: XFF ignored", "", "192.0.2.1:1", []string{"X-Forwarded-For: 203.0.113.7"}, "192.0.2.1"},
		{"spoofed XFF from an untrusted peer", proxies, "192.0.2.1:1", []string{"X-Forwarded-For: 203.0.113.7, 10.0.0.2"}, "192.0.2.1"},
		{"trusted peer: XFF honoured", proxies, "10.0.0.1:1", []string{"X-Forwarded-For: 203.0.113.7"}, "203.0.113.7"},
		{"trusted IPv4-mapped peer", proxies, "[::ffff:10.0.0.1]:1", []string{"X-Forwarded-For: 203.0.113.7"}, "203.0.113.7"},
		{"trusted IPv6 peer", proxies, "[fd00::1]:1", []string{"X-Forwarded-For: 2001:db8::7"}, "2001:db8::7"},
		{"trusted peer, no header", proxies, "10.0.0.1:1", nil, "10.0.0.1"},
		{"client's own XFF before the proxy's", proxies, "10.0.0.1:1", []string{"X-Forwarded-For: 198.51.100.9, 203.0.113.7"}, "203.0.113.7"},
		{"trusted hops skipped", proxies, "10.0.0.1:1", []string{"X-Forwarded-For: 198.51.100.9, 203.0.113.7, 10.0.0.3, 10.0.0.2"}, "203.0.113.7"},
		{"every hop trusted", proxies, "10.0.0.1:1", []string{"X-Forwarded-For: 10.0.0.3, 10.0.0.2"}, "10.0.0.3"},
		{"hops over header lines", proxies, "10.0.0.1:1", []string{"X-Forwarded-For: 198.51.100.9, 203.0.113.7", "X-Forwarded-For: 10.0.0.2"}, "203.0.113.7"},
		{"32 hops at most", proxies, "10.0.0.1:1", []string{"X-Forwarded-For: 203.0.113.7, " + strings.Join(hops, ", ")}, "10.0.1.32"},

		// Garbage stops the walk at the last trusted hop.
		{"garbage first", proxies, "10.0.0.1:1", []string{"X-Forwarded-For: 203.0.113.7, garbage"}, "10.0.0.1"},
		{"garbage behind a trusted hop", proxies, "10.0.0.1:1", []string{"X-Forwarded-For: 203.0.113.7, bogus, 10.0.0.2"}, "10.0.0.2"},
		{"empty element", proxies, "10.0.0.1:1", []string{"X-Forwarded-For: 203.0.113.7, , 10.0.0.2"}, "10.0.0.2"},
		{"trailing comma", proxies, "10.0.0.1:1", []string{"X-Forwarded-For: 203.0.113.7,"}, "10.0.0.1"},
		{"empty header", proxies, "10.0.0.1:1", []string{"X-Forwarded-For: "}, "10.0.0.1"},
		{"zoned hop", proxies, "10.0.0.1:1", []string{"X-Forwarded-For: fe80::1%eth0"}, "10.0.0.1"},
		{"host name", proxies, "10.0.0.1:1", []string{"X-Forwarded-For: example.com"}, "10.0.0.1"},
		{"overlong hop", proxies, "10.0.0.1:1", []string{"X-Forwarded-For: 203.0.113.7, " + strings.Repeat("1", 300) + ", 10.0.0.2"}, "10.0.0.2"},
		{"huge header, sane tail", proxies, "10.0.0.1:1", []string{"X-Forwarded-For: " + strings.Repeat("1.1.1.1, ", 100_000) + "203.0.113.7"}, "203.0.113.7"},

		// Hop syntax.
		{"IPv4 with port", proxies, "10.0.0.1:1", []string{"X-Forwarded-For: 203.0.113.7:4711"}, "203.0.113.7"},
		{"IPv6 with port", proxies, "10.0.0.1:1", []string{"X-Forwarded-For: [2001:db8::7]:4711"}, "2001:db8::7"},
		{"bracketed IPv6", proxies, "10.0.0.1:1", []string{"X-Forwarded-For: [2001:db8::7]"}, "2001:db8::7"},
		{"IPv4-mapped hop", proxies, "10.0.0.1:1", []string{"X-Forwarded-For: ::ffff:203.0.113.7"}, "203.0.113.7"},
		{"bad port", proxies, "10.0.0.1:1", []string{"X-Forwarded-For: 203.0.113.7:"}, "10.0.0.1"},
		{"junk after brackets", proxies, "10.0.0.1:1", []string{"X-Forwarded-For: [2001:db8::7]x"}, "10.0.0.1"},

		// Forwarded, when X-Forwarded-For is absent.
		{"Forwarded", proxies, "10.0.0.1:1", []string{"Forwarded: for=192.0.2.60;proto=http;by=203.0.113.43"}, "192.0.2.60"},
		{"Forwarded quoted IPv6 and port", proxies, "10.0.0.1:1", []string{`Forwarded: for="[2001:db8::1]:4711"`}, "2001:db8::1"},
		{"Forwarded quoted IPv4 and port", proxies, "10.0.0.1:1", []string{`Forwarded: for="192.0.2.60:8080"`}, "192.0.2.60"},
		{"Forwarded obfuscated port", proxies, "10.0.0.1:1", []string{`Forwarded: for="[2001:db8::1]:_p1"`}, "2001:db8::1"},
		{"Forwarded name case", proxies, "10.0.0.1:1", []string{"Forwarded: proto=https; For=192.0.2.60"}, "192.0.2.60"},
		{"Forwarded, two hops", proxies, "10.0.0.1:1", []string{"Forwarded: for=192.0.2.43, for=198.51.100.17"}, "198.51.100.17"},
		{"Forwarded, trusted hop skipped", proxies, "10.0.0.1:1", []string{"Forwarded: for=192.0.2.43, for=10.0.0.2;by=10.0.0.1"}, "192.0.2.43"},
		{"Forwarded unknown", proxies, "10.0.0.1:1", []string{"Forwarded: for=unknown"}, "10.0.0.1"},
		{"Forwarded obfuscated", proxies, "10.0.0.1:1", []string{"Forwarded: for=192.0.2.43, for=_hidden"}, "10.0.0.1"},
		{"Forwarded unknown behind a trusted hop", proxies, "10.0.0.1:1", []string{"Forwarded: for=192.0.2.43, for=unknown, for=10.0.0.2"}, "10.0.0.2"},
		{"Forwarded without for", proxies, "10.0.0.1:1", []string{"Forwarded: proto=https;by=10.0.0.1"}, "10.0.0.1"},
		{"Forwarded unterminated bracket", proxies, "10.0.0.1:1", []string{`Forwarded: for="[2001:db8::1"`}, "10.0.0.1"},
		{"Forwarded quoted comma", proxies, "10.0.0.1:1", []string{`Forwarded: for="192.0.2.1, for=198.51.100.1"`}, "10.0.0.1"},
		{"Forwarded over lines", proxies, "10.0.0.1:1", []string{"Forwarded: for=192.0.2.43", "Forwarded: for=10.0.0.2"}, "192.0.2.43"},
		{"Forwarded from an untrusted peer", proxies, "192.0.2.1:1", []string{"Forwarded: for=203.0.113.7"}, "192.0.2.1"},
		{"X-Forwarded-For wins over Forwarded", proxies, "10.0.0.1:1", []string{"Forwarded: for=198.51.100.1", "X-Forwarded-For: 203.0.113.7"}, "203.0.113.7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := newClientIPKey(t, tt.trusted)
			got := k.Lookup(ipRequest(tt.remote, tt.lines...), nil)
			if tt.want == "" {
				assert.Equal(t, none, got)
				return
			}
			assert.Equal(t, ipKeyed(tt.want), got)
		})
	}
}

func TestClientIPKeyDistinguishesClients(t *testing.T) {
	k := newClientIPKey(t, "")
	a := k.Lookup(ipRequest("192.0.2.1:1"), nil)
	assert.Equal(t, a, k.Lookup(ipRequest("192.0.2.1:2"), nil), "the port does not matter")
	assert.Equal(t, a, k.Lookup(ipRequest("[::ffff:192.0.2.1]:3"), nil), "nor the IPv4-mapped spelling")
	assert.NotEqual(t, a.KeyHash, k.Lookup(ipRequest("192.0.2.2:1"), nil).KeyHash)
	assert.NotEqual(t, a.KeyHash, k.Lookup(ipRequest("[2001:db8::1]:1"), nil).KeyHash)
}

func TestClientIPKeyCopiesPrefixes(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	k, err := policy.ClientIPKey(trusted)
	require.NoError(t, err)
	trusted[0] = netip.MustParsePrefix("192.0.2.0/24")
	r := ipRequest("10.0.0.1:1", "X-Forwarded-For: 203.0.113.7")
	assert.Equal(t, ipKeyed("203.0.113.7"), k.Lookup(r, nil))
}

func TestClientIPKeyErrors(t *testing.T) {
	tests := []struct {
		name    string
		trusted []netip.Prefix
		wantErr string
	}{
		{"zero prefix", []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), {}}, "trusted[1]: invalid prefix"},
		{"bits beyond length", []netip.Prefix{netip.MustParsePrefix("10.0.0.1/8")}, "trusted[0]: prefix 10.0.0.1/8 has bits set beyond its length: write 10.0.0.0/8, or 10.0.0.1/32"},
		{"IPv4-mapped", []netip.Prefix{netip.MustParsePrefix("::ffff:10.0.0.0/104")}, "trusted[0]: prefix ::ffff:10.0.0.0/104 is IPv4-mapped"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := policy.ClientIPKey(tt.trusted)
			assert.Nil(t, k)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantErr)
			assert.True(t, strings.HasPrefix(err.Error(), "policy: "), err.Error())
		})
	}
}

func TestParsePrefixes(t *testing.T) {
	tests := []struct {
		list string
		want []string
	}{
		{"", nil},
		{" , ,", nil},
		{"10.0.0.0/8", []string{"10.0.0.0/8"}},
		{"10.0.0.0/8,2001:db8::/32", []string{"10.0.0.0/8", "2001:db8::/32"}},
		{" 10.0.0.0/8 , 192.0.2.7 ,, 2001:db8::1 ", []string{"10.0.0.0/8", "192.0.2.7/32", "2001:db8::1/128"}},
		{"0.0.0.0/0, ::/0", []string{"0.0.0.0/0", "::/0"}},
	}
	for _, tt := range tests {
		t.Run(tt.list, func(t *testing.T) {
			got, err := policy.ParsePrefixes(tt.list)
			require.NoError(t, err)
			var want []netip.Prefix
			for _, s := range tt.want {
				want = append(want, netip.MustParsePrefix(s))
			}
			assert.Equal(t, want, got)
		})
	}
}

func TestParsePrefixesErrors(t *testing.T) {
	tests := []struct {
		list    string
		wantErr []string
	}{
		{"10.0.0.0/8, bogus", []string{`"bogus"`, "not an IP address"}},
		{"10.0.0.0/33", []string{`"10.0.0.0/33"`, "not an IP prefix"}},
		{"10.0.0.0/", []string{`"10.0.0.0/"`}},
		{"example.com/24", []string{`"example.com/24"`}},
		{"10.0.0.1/8", []string{"10.0.0.1/8", "bits set beyond its length", "write 10.0.0.0/8, or 10.0.0.1/32"}},
		{"fe80::1%eth0", []string{`"fe80::1%eth0"`, "zone"}},
		{"fe80::%eth0/64", []string{`"fe80::%eth0/64"`}},
		{"::ffff:10.0.0.1", []string{"::ffff:10.0.0.1/128", "IPv4-mapped"}},
		{"10.0.0.0/8 192.0.2.0/24", []string{`"10.0.0.0/8 192.0.2.0/24"`}},
	}
	for _, tt := range tests {
		t.Run(tt.list, func(t *testing.T) {
			ps, err := policy.ParsePrefixes(tt.list)
			assert.Nil(t, ps)
			require.Error(t, err)
			assert.True(t, strings.HasPrefix(err.Error(), "policy: "), err.Error())
			for _, w := range tt.wantErr {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

// FuzzClientIP feeds hostile forwarding headers to a ClientIPKey behind a
// trusted proxy: it must never panic, and it must key every request whose
// peer is an address, ignoring the headers when the peer is not trusted.
func FuzzClientIP(f *testing.F) {
	seeds := []struct{ remote, xff, fwd string }{
		{"10.0.0.1:1", "203.0.113.7, 10.0.0.2", ""},
		{"10.0.0.1:1", "", `for="[2001:db8::1]:4711";proto=https, for=10.0.0.2`},
		{"10.0.0.1:1", "", "for=unknown, for=_hidden;by=_x"},
		{"[::ffff:10.0.0.1]:1", "[2001:db8::7]:80, ::ffff:1.2.3.4, fe80::1%eth0", ""},
		{"192.0.2.1:1", "10.0.0.2", `for="`},
		{"10.0.0.1:1", ",,,", `for=";;"`},
		{"@", "203.0.113.7", ""},
	}
	for _, s := range seeds {
		f.Add(s.remote, s.xff, s.fwd)
	}
	trusted, err := policy.ParsePrefixes("10.0.0.0/8, 2001:db8::/48")
	require.NoError(f, err)
	k, err := policy.ClientIPKey(trusted)
	require.NoError(f, err)
	untrusting := newClientIPKey(f, "")
	isTrusted := func(a netip.Addr) bool {
		return trusted[0].Contains(a.Unmap()) || trusted[1].Contains(a.WithZone(""))
	}
	f.Fuzz(func(t *testing.T, remote, xff, fwd string) {
		var lines []string
		if xff != "" {
			lines = append(lines, "X-Forwarded-For: "+xff)
		}
		if fwd != "" {
			lines = append(lines, "Forwarded: "+fwd)
		}
		got := k.Lookup(ipRequest(remote, lines...), nil)
		peer := untrusting.Lookup(ipRequest(remote), nil)
		if peer.Status == policy.None {
			assert.Equal(t, none, got, "no peer address, no key")
			return
		}
		assert.Equal(t, policy.Keyed, got.Status)
		if p, err := netip.ParseAddrPort(remote); err == nil && !isTrusted(p.Addr()) {
			assert.Equal(t, peer, got, "an untrusted peer is the client")
		}
	})
}
