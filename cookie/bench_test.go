package cookie_test

import (
	"fmt"
	"net/http"
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
	a := newApp(b, [][]byte{key1})
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
			a := newApp(b, [][]byte{key1})
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
