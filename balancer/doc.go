// Package balancer chooses a backend for a request that is not bound to one.
//
// A [Picker] has one method, Pick, which returns one of the routable backends
// of the snapshot the request was routed with, or [ErrNoBackend] when there
// is none. A picker is called concurrently and should neither block nor
// allocate; [PickerFunc] turns a function into one.
//
// The package provides two pickers, both ready to use as zero values:
//
//   - [LeastConnections] sends a request to the backend with the fewest
//     requests in flight relative to its weight, and spreads ties evenly.
//   - [RoundRobin] rotates through the routable backends, ignoring weight
//     and load.
//
// Pickers do no load accounting of their own. The handler that calls Pick
// counts the request in flight with [backend.Backend.Acquire] before
// forwarding it and with [backend.Backend.Release] when it is done, so
// [backend.Backend.InFlight] is live for every picker to read.
package balancer
