// Package balancer chooses a backend for a request that is not bound to one.
//
// A [Picker] has one method, Pick, which returns one of the routable backends
// of the snapshot the request was routed with, or [ErrNoBackend] when there
// is none. A picker is called concurrently and should neither block nor
// allocate; [PickerFunc] turns a function into one.
//
// The package provides three pickers, all ready to use as zero values:
//
//   - [LeastConnections] sends a request to the backend with the fewest
//     requests in flight relative to its weight, and spreads ties evenly;
//     past 32 routable backends, to the less loaded of two drawn at
//     random, so that a pick costs the same at any size.
//   - [RoundRobin] rotates through the routable backends, ignoring weight
//     and load.
//   - [ConsistentHash] sends requests with the same affinity key to the
//     same backend, and those without one to a fallback picker
//     (LeastConnections by default).
//
// A key policy reads an affinity key from a request (a header, a query
// parameter, the client's address), and the handler passes its hash to its
// key picker, a ConsistentHash unless told otherwise, as [Info.Key].
// ConsistentHash maps it by Maglev hashing: in O(1), in proportion to
// weight, alike in every process with the same membership, and moving few
// keys other than those of a backend that joins or leaves. A key stays on
// its backend while that backend serves, draining included; an unhealthy
// backend's keys go where they would if it left the set, until it
// recovers, so that they move once.
// Loads are not bounded by default: a key never leaves a backend that
// serves it because of load. [WithLoadFactor] bounds them: a backend more
// than the load factor over its weighted share of the requests in flight
// then passes its keys on to the next backends in the table until its
// load falls, so that a hot key cannot swamp one backend, at the price of
// moving keys. A change of membership makes no pick wait but those of the
// keys that must move: the new table is built in the background, and the
// other picks keep to the last one built meanwhile.
//
// Pickers do no load accounting of their own, and cannot: the handler
// that calls Pick counts the request in flight before forwarding it and
// out when it is done, so [backend.Snapshot.Load] is live for every picker
// to read.
package balancer
