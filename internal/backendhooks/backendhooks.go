// Package backendhooks carries the calls on a backend that only the request
// path may make from package backend, which sets them, to package
// accounting, which exports them to the rest of the module. It imports
// nothing of ours, so that package backend can import it.
package backendhooks

import "time"

// Funcs are the request path's calls on a backend B and a snapshot S of
// its set. Package backend sets every field, once, before any other
// package's initialization runs.
type Funcs[B, S any] struct {
	Acquire         func(B) bool
	Release         func(B)
	ReportFailure   func(B, Failure)
	ReportSuccess   func(B)
	ReportAbandoned func(B, time.Duration, uint64)
	WaitStarted     func(B, uint64)
	WaitEnded       func(B, uint64)
	TryTrial        func(B) bool
	Trial           func(S) B
}

// Failure describes a request that failed, for ReportFailure.
type Failure struct {
	// Cause is the failure's cause in a few words that name no URL
	// ("status 503", a transport error); "" leaves the last one given.
	Cause string
	// Client identifies the request's client: a hash of its address.
	// Requests with equal Client values come from one client.
	Client uint64
	// Reached reports whether the request reached the backend: false
	// when no connection could be made or its TLS handshake failed.
	Reached bool
}

var funcs any

// Set records f; package backend calls it during its initialization.
func Set[B, S any](f *Funcs[B, S]) { funcs = f }

// Get returns the Funcs recorded by [Set]. It panics if Set has not been
// called with the same type arguments.
func Get[B, S any]() *Funcs[B, S] { return funcs.(*Funcs[B, S]) }
