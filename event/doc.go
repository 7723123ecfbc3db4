// Package event is the vocabulary in which a backend set and a sticky
// handler report what happens: an [Event] of some [Kind], about backends
// named by ID, with a typed [Reason] where one applies, handed to an
// [Observer].
//
// A [github.com/affinitylb/affinity/backend.Set] reports the events of its
// backends (state changes, drains) to the observers given to its
// AddObserver method; a [github.com/affinitylb/affinity/sticky.Handler]
// reports what happens to requests (picks, bound hits, bindings,
// redispatches, rejected bindings, retries, failures, panics) to those of
// its WithObserver option. The metrics package's Recorder is an Observer of
// both.
//
// The package imports nothing of this module, so that every other package
// can import it.
package event
