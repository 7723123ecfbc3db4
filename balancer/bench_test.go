package balancer_test

import (
	"fmt"
	"testing"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/balancer"
)

// benchSnapshot returns n backends with weights 1 to 4 and 1 to 7 requests in
// flight per unit of weight; backends come in tied pairs, so that one in
// seven ties for the least load.
func benchSnapshot(b *testing.B, n int) *backend.Snapshot {
	nodes := make([]node, n)
	for i := range nodes {
		nodes[i] = node{id: fmt.Sprintf("b%d", i), weight: 1 + i%4, load: (1 + i/2%7) * (1 + i%4)}
	}
	return newSnapshot(b, nodes...)
}

func BenchmarkLeastConnections(b *testing.B) {
	for _, n := range []int{3, 100, 10000} {
		snap := benchSnapshot(b, n)
		info := balancer.Info{Snapshot: snap}
		b.Run(fmt.Sprintf("backends=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			var lc balancer.LeastConnections
			for b.Loop() {
				if _, err := lc.Pick(info); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("backends=%d/parallel", n), func(b *testing.B) {
			b.ReportAllocs()
			var lc balancer.LeastConnections
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := lc.Pick(info); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

func BenchmarkRoundRobin(b *testing.B) {
	info := balancer.Info{Snapshot: benchSnapshot(b, 100)}
	b.ReportAllocs()
	var rr balancer.RoundRobin
	for b.Loop() {
		if _, err := rr.Pick(info); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkConsistentHash picks keyed requests from backends loaded as in
// benchSnapshot, so that some picks walk past backends over their bound.
// The table is built before the timer starts.
func BenchmarkConsistentHash(b *testing.B) {
	for _, n := range []int{3, 100, 10000} {
		snap := benchSnapshot(b, n)
		var h balancer.ConsistentHash
		if _, err := h.Pick(balancer.Info{Snapshot: snap, Keyed: true}); err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("backends=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			info := balancer.Info{Snapshot: snap, Keyed: true}
			for b.Loop() {
				info.Key += 0x9e3779b97f4a7c15 // a new key each time
				if _, err := h.Pick(info); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("backends=%d/parallel", n), func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				info := balancer.Info{Snapshot: snap, Keyed: true}
				for pb.Next() {
					info.Key += 0x9e3779b97f4a7c15
					if _, err := h.Pick(info); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkConsistentHashBuild measures the first keyed pick from a
// snapshot: building its lookup table.
func BenchmarkConsistentHashBuild(b *testing.B) {
	for _, n := range []int{100, 10000} {
		info := balancer.Info{Snapshot: benchSnapshot(b, n), Keyed: true}
		b.Run(fmt.Sprintf("backends=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var h balancer.ConsistentHash
				if _, err := h.Pick(info); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
