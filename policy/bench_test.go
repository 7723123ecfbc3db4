package policy_test

import (
	"fmt"
	"net/http"
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
}
