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

// Failure describes a failed request for [ReportFailureOf]: its cause, its
// client, and whether it reached its backend.
type Failure = backendhooks.Failure

// ReportFailure records that a request to b failed without reaching it: no
// connection could be made. Such failures eject b once the set's
// [backend.Ejection] threshold of them is reached in a row, whatever their
// clients; when b is half-open, the failure fails its trial and ejects it
// again. It is safe for concurrent use and takes a lock only when it
// changes b's health.
func ReportFailure(b *backend.Backend) { f.ReportFailure(b, Failure{}) }

// ReportFailureOf records that a request to b failed, as fl describes it.
// A run of consecutive failures ejects b once it holds the set's
// [backend.Ejection] threshold of them and one of them did not reach b or
// they came from at least two clients (see [backend.Ejection]); when b is
// half-open, any failure fails its trial and ejects it again. The cause,
// in a few words that name no URL ("status 503", a transport error), is
// what an ejection's reason quotes (see [backend.HealthInfo]). It is safe
// for concurrent use, allocates nothing but the cause's copy, and takes a
// lock only when it changes b's health.
func ReportFailureOf(b *backend.Backend, fl Failure) { f.ReportFailure(b, fl) }

// ReportSuccess records that a request to b succeeded, ending any run of
// failures or of abandoned requests; when b is half-open, it re-admits b.
// It is safe for concurrent use; while nothing failed, it only loads
// counters.
func ReportSuccess(b *backend.Backend) { f.ReportSuccess(b) }

// ReportAbandoned records that a request to b from client (a hash of the
// client's address, as in [Failure]) ended before b answered it, after
// waiting for b as long as waited, because its client stopped waiting (it
// went away, or timed out). It is not a failure: the client
// may be impatient. But a backend that answers none of its requests while
// at least two clients give up on them is stalled (see
// [backend.WithStallTimeout]) and is ejected; and the trial of a half-open backend, abandoned after
// waiting the stall window, has failed. It is safe for concurrent use, and
// is not on the path of an answered request.
func ReportAbandoned(b *backend.Backend, waited time.Duration, client uint64) {
	f.ReportAbandoned(b, waited, client)
}

// WaitStarted records that a request sent to b from client (a hash of the
// client's address, as in [Failure]) now waits on b: for its
// response header, or for b to take more of its body (the time a proxy
// waits for its own client is not b's); [WaitEnded] must follow it exactly
// once, when the wait is over, however it ended (the header arrived, the
// request failed, the client left), with the same client. A backend that
// has answered nothing for the stall window while at least 3 requests,
// from at least two clients, have waited for it all that time is stalled (see [backend.WithStallTimeout]). It is safe for
// concurrent use and lock-free.
func WaitStarted(b *backend.Backend, client uint64) { f.WaitStarted(b, client) }

// WaitEnded ends a wait that [WaitStarted] began for client.
func WaitEnded(b *backend.Backend, client uint64) { f.WaitEnded(b, client) }

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
