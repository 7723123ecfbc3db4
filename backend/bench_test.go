package backend_test

import (
	"fmt"
	"testing"

	"github.com/affinitylb/affinity/backend"
)

// benchSet returns a set of n healthy backends of weight 1 to 4.
func benchSet(b *testing.B, n int, opts ...backend.Option) *backend.Set {
	b.Helper()
	cfgs := make([]backend.Config, n)
	for i := range cfgs {
		cfgs[i] = backend.Config{
			ID:     fmt.Sprintf("b%d", i),
			URL:    fmt.Sprintf("http://10.%d.%d.%d:8080", i>>16&255, i>>8&255, i&255),
			Weight: 1 + i%4,
		}
	}
	set, err := backend.NewSet(cfgs, opts...)
	if err != nil {
		b.Fatal(err)
	}
	return set
}

// benchSizes are the set sizes the membership benchmarks run at.
var benchSizes = []int{100, 10000}

// BenchmarkSetAdd measures adding one backend to a set of n, which
// publishes a new snapshot. The backend is removed again off the clock.
func BenchmarkSetAdd(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("backends=%d", n), func(b *testing.B) {
			set := benchSet(b, n)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := set.Add(backend.Config{ID: "new", URL: "http://10.255.255.255:8080"}); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if _, err := set.Remove("new"); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}

// BenchmarkSetRemove measures removing one backend of a set of n+1. The
// backend is added back off the clock.
func BenchmarkSetRemove(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("backends=%d", n), func(b *testing.B) {
			set := benchSet(b, n)
			cfg := backend.Config{ID: "gone", URL: "http://10.255.255.255:8080"}
			if _, err := set.Add(cfg); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := set.Remove(cfg.ID); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if _, err := set.Add(cfg); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}

// BenchmarkSetState measures a state change of one backend of n, which
// publishes a new snapshot: it alternates between unhealthy and healthy.
func BenchmarkSetState(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("backends=%d", n), func(b *testing.B) {
			set := benchSet(b, n)
			id := fmt.Sprintf("b%d", n/2)
			st := backend.Unhealthy
			b.ReportAllocs()
			for b.Loop() {
				if err := set.SetState(id, st); err != nil {
					b.Fatal(err)
				}
				st ^= backend.Unhealthy ^ backend.Healthy
			}
		})
	}
}
