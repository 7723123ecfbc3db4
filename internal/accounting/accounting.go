// Package accounting holds the calls on a [backend.Backend] that only the
// request path may make: counting a request in and out of flight, reporting
// how it went, admitting a half-open backend's trial. Package sticky makes
// them for every request, package balancer admits a trial for the client
// bound to a half-open backend, and tests make them to load a backend. A
// picker outside this module cannot reach them, so it cannot count a
// request twice.
package accounting

import (
	"time"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/internal/backendhooks"
)

var f = backendhooks.Get[*backend.Backend, *backend.Snapshot]()

// Acquire counts a request in flight on b and reports whether b admitted
// it. It returns false, counting nothing, when b has been removed from its
// set: once [backend.Set.Remove] has returned, Acquire on the removed
// backend never succeeds. Every successful Acquire must be paired with
// exactly one [Release] when the request is over, however it ended.
func Acquire(b *backend.Backend) bool { return f.Acquire(b) }

// Release ends a request counted by a successful [Acquire].
func Release(b *backend.Backend) { f.Release(b) }

// ReportFailure records that a request to b failed. When the set's
// [backend.Ejection] threshold of consecutive failures is reached, b is
// ejected; when b is half-open, the failure fails its trial and ejects it
// again. It is safe for concurrent use and takes a lock only when it
// changes b's health.
func ReportFailure(b *backend.Backend) { f.ReportFailure(b) }

// ReportSuccess records that a request to b succeeded, ending any run of
// failures or of abandoned requests; when b is half-open, it re-admits b.
// It is safe for concurrent use; while nothing failed, it only loads
// counters.
func ReportSuccess(b *backend.Backend) { f.ReportSuccess(b) }

// ReportAbandoned records that a request to b was given up after waiting
// for its response header for waited: its client left, or its deadline
// passed. A run of them with no answer in between, each after waiting at
// least the set's stall timeout (see [backend.WithStallTimeout]), ejects b
// as stalled.
func ReportAbandoned(b *backend.Backend, waited time.Duration) { f.ReportAbandoned(b, waited) }

// WaitStarted records that a request has been sent to b and awaits its
// response header; [WaitEnded] records that the wait is over, however it
// ended. Each WaitStarted must be paired with exactly one WaitEnded.
func WaitStarted(b *backend.Backend) { f.WaitStarted(b) }

// WaitEnded ends a wait recorded by [WaitStarted].
func WaitEnded(b *backend.Backend) { f.WaitEnded(b) }

// TryTrial reports whether the caller may send b one request as the trial
// of its half-open state (see [backend.Ejection]), and if so admits it: it
// returns true to exactly one caller per trial, and false whenever b is
// not half-open, is down, or has a trial out. A caller that gets true must
// send b the request (counted with [Acquire]) and report how it went, with
// [ReportSuccess] or [ReportFailure]. It is lock-free and allocates
// nothing.
func TryTrial(b *backend.Backend) bool { return f.TryTrial(b) }

// Trial returns a half-open member of s that takes new clients once
// re-admitted, and admits the caller's request as its trial, as [TryTrial]
// does; nil if there is none, or its trial is out. A caller placing a new
// client asks Trial first, so that a half-open backend gets its trial from
// new clients as well as from its own. It is lock-free, allocates nothing,
// and costs a length check while no member is half-open.
func Trial(s *backend.Snapshot) *backend.Backend { return f.Trial(s) }
