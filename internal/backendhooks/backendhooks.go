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
	ReportFailure   func(B, string)
	ReportSuccess   func(B)
	ReportAbandoned func(B, time.Duration)
	WaitStarted     func(B)
	WaitEnded       func(B)
	TryTrial        func(B) bool
	Trial           func(S) B
}

var funcs any

// Set records f; package backend calls it during its initialization.
func Set[B, S any](f *Funcs[B, S]) { funcs = f }

// Get returns the Funcs recorded by [Set]. It panics if Set has not been
// called with the same type arguments.
func Get[B, S any]() *Funcs[B, S] { return funcs.(*Funcs[B, S]) }
