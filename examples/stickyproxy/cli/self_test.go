package cli

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSelfCheck(t *testing.T) {
	ap := netip.MustParseAddrPort
	machine := netip.MustParseAddr("192.0.2.10") // an interface's address
	tests := []struct {
		name      string
		listeners []selfListener
		url       string
		self      string // the error names this flag; "": not the proxy
	}{
		{"the listener", []selfListener{{"-listen", ap("127.0.0.1:8080")}}, "http://127.0.0.1:8080", "-listen"},
		{"the listener, with a path", []selfListener{{"-listen", ap("127.0.0.1:8080")}}, "http://127.0.0.1:8080/app/", "-listen"},
		{"the listener, https", []selfListener{{"-listen", ap("127.0.0.1:8080")}}, "https://127.0.0.1:8080", "-listen"},
		{"the admin listener", []selfListener{{"-listen", ap("127.0.0.1:8080")}, {"-admin", ap("127.0.0.1:9090")}}, "http://127.0.0.1:9090", "-admin"},
		{"localhost", []selfListener{{"-listen", ap("127.0.0.1:8080")}}, "http://localhost:8080", "-listen"},
		{"localhost in capitals, a trailing dot", []selfListener{{"-listen", ap("127.0.0.1:8080")}}, "http://LocalHost.:8080", "-listen"},
		{"a name under localhost", []selfListener{{"-listen", ap("[::1]:8080")}}, "http://app.localhost:8080", "-listen"},
		{"IPv6 loopback", []selfListener{{"-listen", ap("[::1]:8080")}}, "http://[::1]:8080", "-listen"},
		{"IPv4-mapped", []selfListener{{"-listen", ap("127.0.0.1:8080")}}, "http://[::ffff:127.0.0.1]:8080", "-listen"},
		{"the unspecified address", []selfListener{{"-listen", ap("127.0.0.1:8080")}}, "http://0.0.0.0:8080", "-listen"},
		{"the default port", []selfListener{{"-listen", ap("127.0.0.1:80")}}, "http://127.0.0.1", "-listen"},
		{"the default port of https", []selfListener{{"-listen", ap("127.0.0.1:443")}}, "https://localhost/", "-listen"},
		{"the listener, h2c", []selfListener{{"-listen", ap("127.0.0.1:8080")}}, "h2c://127.0.0.1:8080", "-listen"},
		{"the default port of h2c", []selfListener{{"-listen", ap("127.0.0.1:80")}}, "h2c://localhost", "-listen"},
		{"on every address: loopback", []selfListener{{"-listen", ap("[::]:8080")}}, "http://127.0.0.1:8080", "-listen"},
		{"on every address: another loopback", []selfListener{{"-listen", ap("0.0.0.0:8080")}}, "http://127.0.0.2:8080", "-listen"},
		{"on every address: localhost", []selfListener{{"-listen", ap("0.0.0.0:8080")}}, "http://localhost:8080", "-listen"},
		{"on every address: the machine's", []selfListener{{"-listen", ap("[::]:8080")}}, "http://192.0.2.10:8080", "-listen"},
		{"on every address: the admin's", []selfListener{{"-listen", ap("127.0.0.1:8080")}, {"-admin", ap("[::]:9090")}}, "http://[::1]:9090", "-admin"},

		{"another port", []selfListener{{"-listen", ap("127.0.0.1:8080")}, {"-admin", ap("127.0.0.1:9090")}}, "http://127.0.0.1:8081", ""},
		{"the default port, not the listener's", []selfListener{{"-listen", ap("127.0.0.1:8080")}}, "http://localhost", ""},
		{"another loopback than the listener's", []selfListener{{"-listen", ap("127.0.0.1:8080")}}, "http://127.0.0.2:8080", ""},
		{"IPv6 loopback, listener on IPv4", []selfListener{{"-listen", ap("127.0.0.1:8080")}}, "http://[::1]:8080", ""},
		{"the machine's, listener on loopback", []selfListener{{"-listen", ap("127.0.0.1:8080")}}, "http://192.0.2.10:8080", ""},
		{"on every address: another machine", []selfListener{{"-listen", ap("0.0.0.0:8080")}}, "http://192.0.2.11:8080", ""},
		{"a name, not resolved", []selfListener{{"-listen", ap("0.0.0.0:8080")}}, "http://app.example:8080", ""},
		{"a name ending in localhost", []selfListener{{"-listen", ap("127.0.0.1:8080")}}, "http://evillocalhost:8080", ""},
		{"no listeners", nil, "http://127.0.0.1:8080", ""},
		{"not a URL: the set's to refuse", []selfListener{{"-listen", ap("127.0.0.1:8080")}}, "127.0.0.1:8080", ""},
		{"a bad port: the set's to refuse", []selfListener{{"-listen", ap("127.0.0.1:8080")}}, "http://127.0.0.1:99999", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := self{listeners: tt.listeners, local: func(ip netip.Addr) bool { return ip == machine }}
			err := s.check(tt.url)
			if tt.self == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), `backend "`+tt.url+`" is this proxy`)
			assert.Contains(t, err.Error(), "("+tt.self+")")
		})
	}
}
