package balancer_test

import (
	"fmt"
	"log"

	"github.com/cespare/xxhash/v2"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/balancer"
	"github.com/affinitylb/affinity/internal/accounting"
)

// A custom picker in a few lines: always the routable backend whose ID sorts
// first, so traffic fails over in a fixed order.
func ExamplePickerFunc() {
	firstByID := balancer.PickerFunc(func(info balancer.Info) (*backend.Backend, error) {
		var first *backend.Backend
		for _, b := range info.Snapshot.Routable() {
			if first == nil || b.ID() < first.ID() {
				first = b
			}
		}
		if first == nil {
			return nil, balancer.ErrNoBackend
		}
		return first, nil
	})

	set, err := backend.NewSet([]backend.Config{
		{ID: "web-2", URL: "http://10.0.0.2:8080"},
		{ID: "web-1", URL: "http://10.0.0.1:8080"},
	}, backend.WithFailOpen(false)) // no healthy backend: none routable

	if err != nil {
		log.Fatal(err)
	}
	for _, down := range []string{"", "web-1", "web-2"} {
		if down != "" {
			if err := set.SetState(down, backend.Unhealthy); err != nil {
				log.Fatal(err)
			}
		}
		b, err := firstByID.Pick(balancer.Info{Snapshot: set.Snapshot()})
		fmt.Println(b, err)
	}
	// Output:
	// web-1 <nil>
	// web-2 <nil>
	// <nil> balancer: no backend available
}

func ExampleLeastConnections() {
	set, err := backend.NewSet([]backend.Config{
		{ID: "small", URL: "http://10.0.0.1:8080", Weight: 1},
		{ID: "big", URL: "http://10.0.0.2:8080", Weight: 2},
	})
	if err != nil {
		log.Fatal(err)
	}
	lc := &balancer.LeastConnections{}

	// The handler counts each request in flight while it runs; here
	// package accounting, internal to this module, stands in for it. Six
	// requests arrive, and none finishes before the next is placed.
	var running []*backend.Backend
	for range 6 {
		b, err := lc.Pick(balancer.Info{Snapshot: set.Snapshot()})
		if err != nil {
			log.Fatal(err)
		}
		if accounting.Acquire(b) {
			running = append(running, b)
		}
	}
	for _, b := range set.Snapshot().Backends() {
		fmt.Printf("%s (weight %d): %d in flight\n", b, b.Weight(), b.InFlight())
	}
	for _, b := range running {
		accounting.Release(b)
	}
	// Output:
	// small (weight 1): 2 in flight
	// big (weight 2): 4 in flight
}

// Requests with the same affinity key go to the same backend, move when it
// stops taking new clients, and come back when it takes them again.
func ExampleConsistentHash() {
	set, err := backend.NewSet([]backend.Config{
		{ID: "web-1", URL: "http://10.0.0.1:8080"},
		{ID: "web-2", URL: "http://10.0.0.2:8080"},
		{ID: "web-3", URL: "http://10.0.0.3:8080"},
	})
	if err != nil {
		log.Fatal(err)
	}
	var ch balancer.ConsistentHash // keys never spill; WithLoadFactor bounds loads
	// A key policy hashes the affinity key, here a user ID, into Info.KeyHash.
	key := xxhash.Sum64String("user-42")
	pick := func() string {
		b, err := ch.Pick(balancer.Info{Snapshot: set.Snapshot(), KeyHash: key, Keyed: true})
		if err != nil {
			log.Fatal(err)
		}
		return b.ID()
	}

	home := pick()
	fmt.Println("same backend again:", pick() == home)
	if err := set.SetState(home, backend.Draining); err != nil {
		log.Fatal(err)
	}
	fmt.Println("kept while draining:", pick() == home)
	if err := set.SetState(home, backend.Unhealthy); err != nil {
		log.Fatal(err)
	}
	fmt.Println("moved while unhealthy:", pick() != home)
	if err := set.SetState(home, backend.Healthy); err != nil {
		log.Fatal(err)
	}
	fmt.Println("back when healthy:", pick() == home)
	// Output:
	// same backend again: true
	// kept while draining: true
	// moved while unhealthy: true
	// back when healthy: true
}
