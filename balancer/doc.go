// Package balancer chooses a backend for a request that is not bound to one.
//
// A [Picker] has one method, Pick, which returns one of the routable backends
// of the snapshot the request was routed with, or [ErrNoBackend] when there
// is none. A picker is called concurrently and should neither block nor
// allocate; [PickerFunc] turns a function into one.
//
// [Info] tells a picker what it knows of the request: its snapshot, the
// hash of its affinity key if it has one, and, when the handler asks again
// for a retry, the backends the request already failed on
// ([Info.Tried]). A picker that weighs latencies or outcomes implements
// [DonePicker] as well: the handler calls its Done once for each
// placement it made (a retry the picker places is one of its own), with
// the backend's status or the attempt's error and the time to the answer, as grpc-go's PickResult.Done reports to its pickers.
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
// key picker, a ConsistentHash unless told otherwise, as [Info.KeyHash].
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
// # Consistent hashing
//
// [ConsistentHash] maps keys by Maglev hashing (Eisenbud et al., NSDI
// 2016): a key belongs to the backend holding slot Key mod M of a lookup
// table of M slots, built from every member of the snapshot, whatever its
// state. Each member holds a share of the slots proportional to its
// weight, within one slot. The table depends only on the members' IDs and
// weights, not on the order they were added. The keys of a member that
// does not keep its bound clients go, while it does not, where the table
// of the members that do would put them, which is where they stay if it
// leaves the set; such a key whose place there is a draining backend's
// goes on to the next slots of that table that take new clients. When a
// backend joins or leaves, its share of the keys moves and few others do:
// measured over 10,000 keys, removing one backend of 10 or of 100 moves
// its keys and 0.3% or 0.6% of all keys besides. M is 65537 for up to
// 6,553 members and grows, to the next of a few fixed primes, only past
// that; a change of M moves nearly every key.
//
// With a load factor c ([WithLoadFactor]), loads are bounded (Mirrokni,
// Thorup and Zadimoghaddam, "Consistent Hashing with Bounded Loads", SODA
// 2018): a backend that takes new clients takes a key only if its
// in-flight count, counting the request, stays within c times its
// weighted share of the set's. With T the set's in-flight count
// ([backend.Snapshot.InFlight]) and W the total weight of the routable
// backends, backend b may take the request if
//
//	b.InFlight()+1 <= ceil(c × (T+1) × b.Weight() / W)
//
// computed in integers. If the key's backend may not, the slots after the
// key's are tried in turn and the first routable backend that may takes
// the request, so the keys of a busy backend spill over to others and
// return when its load falls. Some backend always may; should none,
// because counts changed during the pick, the least loaded relative to
// weight takes the request. A draining backend is never bounded: it takes
// its own keys, and no one else's. Without a load factor, a key stays on
// its backend however many requests it has in flight, as with NGINX's
// "hash ... consistent", and HAProxy's and Envoy's hash balance factors
// when they are not set.
//
// Changes of state never rebuild the table, only changes of membership
// (BenchmarkConsistentHashBuild measures a build); while a member does
// not serve, the first pick of one of its keys builds the table of the
// members that do, and the picks of its keys wait for it. After a change
// of membership, the first keyed pick from the new membership starts a
// goroutine that builds its table, one build at a time; until it is
// built, keyed picks are answered from the last table built, as long as
// the key's backend there still serves: keys stay on their backend, and a
// backend that joined gets keys once the new table is in use. The picks
// of a key whose backend has left or does not serve wait for the new
// table instead, so that the key moves once, to where that table says; so
// does the very first keyed pick, which builds the first table. No other
// pick waits for a build. Tables are cached for the eight memberships
// last built for: a set's latest two, or the snapshots of its groups of
// backends ([backend.Snapshot.Group]), each of which has its own.
//
// Pickers do no load accounting of their own, and cannot: the handler
// that calls Pick counts the request in flight before forwarding it and
// out when it is done, so [backend.Snapshot.Load] is live for every picker
// to read.
package balancer
