package policy_test

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/policy"
)

func benchSet(b *testing.B, n int) *backend.Set {
	b.Helper()
	cfgs := make([]backend.Config, n)
	for i := range cfgs {
		cfgs[i] = backend.Config{ID: fmt.Sprintf("b%d", i), URL: fmt.Sprintf("http://10.0.%d.%d:80", i/256, i%256)}
	}
	set, err := backend.NewSet(cfgs)
	if err != nil {
		b.Fatal(err)
	}
	return set
}

func BenchmarkCookieLookup(b *testing.B) {
	for _, n := range []int{3, 10_000} {
		b.Run(fmt.Sprintf("backends=%d", n), func(b *testing.B) {
			snap := benchSet(b, n).Snapshot()
			c := newCookie(b, [][]byte{key1})
			r := request("session=0123456789; affinity=" + c.Issue("b1") + "; theme=dark")
			if got := c.Lookup(r, snap); got.Status != policy.Valid {
				b.Fatalf("lookup: %v", got.Status)
			}
			b.ReportAllocs()
			for b.Loop() {
				c.Lookup(r, snap)
			}
		})
	}
}

// BenchmarkCookieLookupAlone times a lookup of the balancer's cookie sent
// alone, as a client of the balancer alone sends it: the usual case, read
// without the general scan.
func BenchmarkCookieLookupAlone(b *testing.B) {
	snap := newSet(b).Snapshot()
	c := newCookie(b, [][]byte{key1})
	r := request("affinity=" + c.Issue("b"))
	if got := c.Lookup(r, snap); got.Status != policy.Valid {
		b.Fatalf("lookup: %v", got.Status)
	}
	b.ReportAllocs()
	for b.Loop() {
		c.Lookup(r, snap)
	}
}

// BenchmarkCookieLookupCrowded times a lookup whose binding comes after
// 200 cookies of the site's and a stale duplicate of the binding's name.
func BenchmarkCookieLookupCrowded(b *testing.B) {
	snap := newSet(b).Snapshot()
	c := newCookie(b, [][]byte{key1})
	var site strings.Builder
	for i := range 200 {
		fmt.Fprintf(&site, "pref%d=%d; ", i, i)
	}
	r := request(site.String() + "affinity=" + newCookie(b, [][]byte{key2}).Issue("a") + "; affinity=" + c.Issue("b"))
	if got := c.Lookup(r, snap); got.Status != policy.Valid {
		b.Fatalf("lookup: %v", got.Status)
	}
	b.ReportAllocs()
	for b.Loop() {
		c.Lookup(r, snap)
	}
}

func BenchmarkCookieLookupForged(b *testing.B) {
	snap := newSet(b).Snapshot()
	c := newCookie(b, [][]byte{key1})
	other := newCookie(b, [][]byte{key2})
	r := request("affinity=" + other.Issue("a"))
	if got := c.Lookup(r, snap); got.Status != policy.Forged {
		b.Fatalf("lookup: %v", got.Status)
	}
	b.ReportAllocs()
	for b.Loop() {
		c.Lookup(r, snap)
	}
}

func BenchmarkCookieSave(b *testing.B) {
	for _, cached := range []bool{false, true} {
		b.Run(fmt.Sprintf("tokenCached=%v", cached), func(b *testing.B) {
			snap := newSet(b).Snapshot()
			c := newCookie(b, [][]byte{key1})
			if cached {
				// A Lookup of any authentic cookie builds the index, whose
				// tokens Save then reuses instead of computing them.
				c.Lookup(request("affinity="+c.Issue("b")), snap)
			}
			r := request()
			be := snap.Lookup("a")
			resp := &http.Response{Header: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				clear(resp.Header)
				c.Save(r, resp, be, policy.Binding{})
			}
		})
	}
	// A request already bound to its backend, needing no refresh: what
	// most responses of a sticky session are.
	b.Run("bound", func(b *testing.B) {
		snap := newSet(b).Snapshot()
		c := newCookie(b, [][]byte{key1})
		r := request("affinity=" + c.Issue("a"))
		prev := c.Lookup(r, snap)
		if prev.Status != policy.Valid || prev.Refresh {
			b.Fatalf("lookup: %+v", prev)
		}
		be := snap.Lookup("a")
		resp := &http.Response{Header: http.Header{}}
		b.ReportAllocs()
		for b.Loop() {
			c.Save(r, resp, be, prev)
		}
		if len(resp.Header) != 0 {
			b.Fatalf("Save wrote %v", resp.Header)
		}
	})
}

func BenchmarkAppCookieLookup(b *testing.B) {
	snap := newSet(b).Snapshot()
	a := newAppCookie(b, [][]byte{key1})
	r := request("PHPSESSID=0123456789abcdef; affinity=" + newCookie(b, [][]byte{key1}).Issue("b") + "; theme=dark")
	if got := a.Lookup(r, snap); got.Status != policy.Valid {
		b.Fatalf("lookup: %v", got.Status)
	}
	b.ReportAllocs()
	for b.Loop() {
		a.Lookup(r, snap)
	}
}

func BenchmarkAppCookieSave(b *testing.B) {
	for _, tc := range []struct {
		name  string
		lines []string
	}{
		{"untouched", []string{"theme=dark; Path=/"}},
		{"set", []string{"theme=dark; Path=/", "PHPSESSID=0123456789abcdef; Path=/; Max-Age=1800; HttpOnly"}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			snap := newSet(b).Snapshot()
			a := newAppCookie(b, [][]byte{key1})
			r := request()
			be := snap.Lookup("a")
			lines := make([]string, 0, len(tc.lines)+1)
			resp := &http.Response{Header: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				resp.Header["Set-Cookie"] = append(lines[:0], tc.lines...)
				a.Save(r, resp, be, policy.Binding{})
			}
		})
	}
}

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
