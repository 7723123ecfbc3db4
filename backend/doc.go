// Package backend holds the upstream servers a balancer sends traffic to.
//
// A [Backend] is one server: a stable ID, a URL, a weight, a [State] and a
// live count of the requests it is serving. A [Set] is the membership: it
// publishes an immutable [Snapshot] that readers load without a lock, and
// replaces it atomically whenever a backend is added, removed or changes
// state. A request loads one snapshot and sees one consistent membership for
// its whole way through the balancer.
//
// A backend's state is decided by active health checks ([Set.CheckHealth]),
// by passive ejection on failures seen in live traffic ([Ejection]) or on
// requests left unanswered for the stall window, waiting or given up by
// their clients ([WithStallTimeout]), and by the operator ([Set.SetState],
// [Set.Drain]). Membership can follow a
// [Source], such as [DNS], with [Set.Sync]. State changes and drains are
// reported, as [event.Event]s, to the observers added with
// [Set.AddObserver].
//
// IDs come from configuration (a given name, else a digest of the URL), so
// two processes configured alike agree on them; stickiness policies name
// backends by ID.
package backend
