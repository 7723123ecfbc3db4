package backend

import "github.com/affinitylb/affinity/event"

// AddObserver makes o receive the set's events from now on: state changes
// and drains, each an [event.Event] naming the backend by ID. Request
// events come from the handler, which has an option of its own; the same
// observer may serve both. Several observers may be added: each receives
// every event, in the order they were added; one added twice receives each
// event twice. A nil o is ignored. AddObserver is safe to call concurrently
// with every other method; an event emitted while it runs may or may not
// reach o. The set calls its observers with its lock held: see
// [event.Observer] for their contract.
func (s *Set) AddObserver(o event.Observer) {
	if o == nil {
		return
	}
	for {
		old := s.observers.Load()
		var obs []event.Observer
		if old != nil {
			obs = append(obs, *old...)
		}
		obs = append(obs, o)
		if s.observers.CompareAndSwap(old, &obs) {
			return
		}
	}
}

// emit hands e to the set's observers, if it has any. It takes no lock and
// allocates nothing.
func (s *Set) emit(e event.Event) {
	if obs := s.observers.Load(); obs != nil {
		for _, o := range *obs {
			o.Observe(e)
		}
	}
}
