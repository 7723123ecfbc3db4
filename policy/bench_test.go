package policy_test

import (
	"net/http"
	"net/netip"
	"testing"

	"github.com/affinitylb/affinity/policy"
)

func BenchmarkHeaderKey(b *testing.B) {
	k, err := policy.HeaderKey("X-Client-ID")
	if err != nil {
		b.Fatal(err)
	}
	r := request()
	r.Header.Set("X-Client-ID", "2f1c9b7e-5d4a-4e1b-9a7c-3b8d6f0e2a41")
	benchKey(b, k, r)
}

func BenchmarkQueryKey(b *testing.B) {
	k, err := policy.QueryKey("client")
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct{ name, query string }{
		{"plain", "page=2&sort=price&client=2f1c9b7e-5d4a-4e1b&lang=en"},
		{"escaped", "page=2&sort=price&client=2f1c%209b7e+5d4a&lang=en"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			r := request()
			r.URL.RawQuery = tc.query
			benchKey(b, k, r)
		})
	}
}

func BenchmarkCookieKey(b *testing.B) {
	k, err := policy.CookieKey("PHPSESSID")
	if err != nil {
		b.Fatal(err)
	}
	benchKey(b, k, request("theme=dark; PHPSESSID=0123456789abcdef; lang=en"))
}

func BenchmarkClientIPKey(b *testing.B) {
	k, err := policy.ClientIPKey([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")})
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct{ name, remote, xff string }{
		{"peer", "203.0.113.7:51234", ""},
		{"trusted proxy, 3 hops", "10.0.0.1:51234", "198.51.100.9, 203.0.113.7, 10.0.0.3"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			r := request()
			r.RemoteAddr = tc.remote
			if tc.xff != "" {
				r.Header.Set("X-Forwarded-For", tc.xff)
			}
			benchKey(b, k, r)
		})
	}
}

// benchKey measures k.Lookup(r), which must find a key.
func benchKey(b *testing.B, k *policy.Key, r *http.Request) {
	b.Helper()
	if got := k.Lookup(r, nil); got.Status != policy.Keyed {
		b.Fatalf("lookup: %v", got.Status)
	}
	b.ReportAllocs()
	for b.Loop() {
		k.Lookup(r, nil)
	}
}

func BenchmarkChain(b *testing.B) {
	snap := newSet(b).Snapshot()
	c := newCookie(b, [][]byte{key1})
	header, err := policy.HeaderKey("X-Client-ID")
	if err != nil {
		b.Fatal(err)
	}
	ch, err := policy.NewChain(c, header)
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		cookie string
		want   policy.Status
	}{
		{"cookie", "affinity=" + c.Issue("b"), policy.Valid},
		{"key", "", policy.Keyed},
	} {
		b.Run(tc.name, func(b *testing.B) {
			r := request()
			if tc.cookie != "" {
				r.Header.Set("Cookie", tc.cookie)
			}
			r.Header.Set("X-Client-ID", "2f1c9b7e-5d4a-4e1b-9a7c-3b8d6f0e2a41")
			if got := ch.Lookup(r, snap); got.Status != tc.want {
				b.Fatalf("lookup: %v", got.Status)
			}
			b.ReportAllocs()
			for b.Loop() {
				ch.Lookup(r, snap)
			}
		})
	}
}
