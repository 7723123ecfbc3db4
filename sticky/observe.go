package sticky

import "github.com/affinitylb/affinity/event"

// observerOf returns the one observer that hands an event to each of obs:
// nil for none, the observer itself for one, so that a handler with a
// single observer calls it directly.
func observerOf(obs []event.Observer) event.Observer {
	switch len(obs) {
	case 0:
		return nil
	case 1:
		return obs[0]
	}
	return observers(obs)
}

// observers hands each event to every one of its observers, in order.
type observers []event.Observer

func (all observers) Observe(e event.Event) {
	for _, o := range all {
		o.Observe(e)
	}
}
