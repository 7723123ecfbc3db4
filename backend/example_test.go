package backend_test

import (
	"fmt"
	"log"

	"github.com/affinitylb/affinity/backend"
)

func Example() {
	set, err := backend.NewSet([]backend.Config{
		{ID: "web-1", URL: "http://10.0.0.1:8080"},
		{ID: "web-2", URL: "http://10.0.0.2:8080", Weight: 2},
	})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := set.Add(backend.Config{ID: "web-3", URL: "http://10.0.0.3:8080"}); err != nil {
		log.Fatal(err)
	}
	// web-1 finishes its current requests but takes no new clients.
	if err := set.SetState("web-1", backend.Draining); err != nil {
		log.Fatal(err)
	}

	snap := set.Snapshot()
	for _, b := range snap.Backends() {
		fmt.Printf("%s %s weight=%d %s\n", b, b.URL(), b.Weight(), b.State())
	}
	for _, b := range snap.Routable() {
		fmt.Println("routable:", b)
	}
	// Output:
	// web-1 http://10.0.0.1:8080 weight=1 draining
	// web-2 http://10.0.0.2:8080 weight=2 healthy
	// web-3 http://10.0.0.3:8080 weight=1 healthy
	// routable: web-2
	// routable: web-3
}
