package balancer_test

import (
	"fmt"
	"log"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/balancer"
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
	})
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

	// The handler counts each request in flight while it runs. Six requests
	// arrive, and none finishes before the next is placed.
	var running []*backend.Backend
	for range 6 {
		b, err := lc.Pick(balancer.Info{Snapshot: set.Snapshot()})
		if err != nil {
			log.Fatal(err)
		}
		if b.Acquire() {
			running = append(running, b)
		}
	}
	for _, b := range set.Snapshot().Backends() {
		fmt.Printf("%s (weight %d): %d in flight\n", b, b.Weight(), b.InFlight())
	}
	for _, b := range running {
		b.Release()
	}
	// Output:
	// small (weight 1): 2 in flight
	// big (weight 2): 4 in flight
}
