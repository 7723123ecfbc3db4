package balancer_test

import (
	"fmt"
	"testing"
	"time"

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
				info.KeyHash += 0x9e3779b97f4a7c15 // a new key each time
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
					info.KeyHash += 0x9e3779b97f4a7c15
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

// BenchmarkPickGrowth shows how the cost of a pick grows with the number of
// routable backends, loaded as in benchSnapshot: unkeyed picks by
// LeastConnections, keyed picks by ConsistentHash (its table built before
// the timer starts).
func BenchmarkPickGrowth(b *testing.B) {
	for _, n := range []int{3, 10, 32, 100, 1000, 10000} {
		snap := benchSnapshot(b, n)
		b.Run(fmt.Sprintf("LeastConnections/backends=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			var lc balancer.LeastConnections
			info := balancer.Info{Snapshot: snap}
			for b.Loop() {
				if _, err := lc.Pick(info); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("ConsistentHash/backends=%d", n), func(b *testing.B) {
			var h balancer.ConsistentHash
			info := balancer.Info{Snapshot: snap, Keyed: true}
			if _, err := h.Pick(info); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				info.KeyHash += 0x9e3779b97f4a7c15
				if _, err := h.Pick(info); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkConsistentHashAfterChange measures a membership change (a
// backend turning unhealthy or healthy again) and the first keyed pick from
// the snapshot it publishes, which finds no table built for it. pick-ns/op
// is the pick alone: what the first request after a change waits for.
func BenchmarkConsistentHashAfterChange(b *testing.B) {
	for _, n := range []int{100, 10000} {
		b.Run(fmt.Sprintf("backends=%d", n), func(b *testing.B) {
			set := newSet(b, n)
			var h balancer.ConsistentHash
			info := balancer.Info{Snapshot: set.Snapshot(), Keyed: true}
			if _, err := h.Pick(info); err != nil {
				b.Fatal(err)
			}
			id := fmt.Sprintf("b%d", n/2)
			st := backend.Unhealthy
			var picking time.Duration
			b.ReportAllocs()
			for b.Loop() {
				if err := set.SetState(id, st); err != nil {
					b.Fatal(err)
				}
				st ^= backend.Unhealthy ^ backend.Healthy
				info.Snapshot = set.Snapshot()
				info.KeyHash += 0x9e3779b97f4a7c15
				start := time.Now()
				if _, err := h.Pick(info); err != nil {
					b.Fatal(err)
				}
				picking += time.Since(start)
			}
			b.ReportMetric(float64(picking.Nanoseconds())/float64(b.N), "pick-ns/op")
		})
	}
}

// BenchmarkLeastConnectionsExactVsSampled compares an exact pick with a
// sampled one (two choices) at pool sizes around balancer.ExactMax, where
// LeastConnections switches from one to the other.
func BenchmarkLeastConnectionsExactVsSampled(b *testing.B) {
	for _, n := range []int{3, 10, 32, 64, 128, 256} {
		snap := benchSnapshot(b, n)
		for _, p := range []struct {
			name string
			lc   *balancer.LeastConnections
		}{
			{"exact", balancer.NewLeastConnectionsExactUpTo(balancer.ExactMax)},
			{"sampled", balancer.NewLeastConnectionsExactUpTo(1)},
		} {
			if p.name == "exact" && n > balancer.ExactMax {
				continue
			}
			b.Run(fmt.Sprintf("%s/backends=%d", p.name, n), func(b *testing.B) {
				b.ReportAllocs()
				info := balancer.Info{Snapshot: snap}
				for b.Loop() {
					if _, err := p.lc.Pick(info); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
