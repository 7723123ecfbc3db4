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
// A backend may belong to a group ([Config.Group]): a version of the
// application, a target group. Groups have weights ([WithGroupWeights],
// [Set.SetGroupWeight]) that a snapshot publishes with its members
// ([Snapshot.Groups]), and each group has a snapshot of its own
// ([Snapshot.Group]) on which a picker chooses within the group. A set
// whose backends are all in the default group, "", and that was given no
// weight has one group of every member, whose snapshot is the set's.
//
// IDs come from configuration (a given name, else a digest of the URL), so
// two processes configured alike agree on them; stickiness policies name
// backends by ID.
package backend
