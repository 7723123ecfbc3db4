package event_test

import (
	"fmt"

	"github.com/affinitylb/affinity/event"
)

// An Observer can be a function. This one prints what it is told; a set
// or a handler would call it for every event.
func ExampleObserverFunc() {
	var obs event.Observer = event.ObserverFunc(func(e event.Event) {
		switch e.Kind {
		case event.StateChange:
			fmt.Println(e.Kind, e.Backend, e.From, "->", e.To)
		case event.Retry:
			fmt.Println(e.Kind, e.Prev, "->", e.Backend)
		default:
			fmt.Println(e.Kind, e.Backend, e.Reason)
		}
	})
	obs.Observe(event.Event{Kind: event.StateChange, Backend: "app1", From: event.Healthy, To: event.Unhealthy})
	obs.Observe(event.Event{Kind: event.Retry, Backend: "app2", Prev: "app1"})
	obs.Observe(event.Event{Kind: event.DrainEnd, Backend: "app3", Reason: event.DrainIdle})
	obs.Observe(event.Event{Kind: event.Rejected, Reason: event.Forged})
	// Output:
	// state_change app1 healthy -> unhealthy
	// retry app1 -> app2
	// drain_end app3 idle
	// rejected  forged
}
