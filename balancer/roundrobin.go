package balancer

import (
	"github.com/affinitylb/affinity/backend"
)

// RoundRobin is a [Picker] that rotates through the routable backends in
// order, one request each. It ignores weights and in-flight load; use
// [LeastConnections] when backends differ in capacity or requests differ in
// cost. When the routable set changes, the rotation continues over the new
// set from wherever its counter stands. It keeps a counter for each group
// ([backend.Config.Group]) it picks within, so that picks within a group
// rotate through the group's members whatever the picks within other
// groups in between.
//
// The zero value is ready to use. RoundRobin is safe for concurrent use,
// takes no lock, does not allocate, and must not be copied after first use.
type RoundRobin struct {
	next rotation
}

// Pick returns the next of info.Snapshot.Routable(), or [ErrNoBackend] when
// there are none.
func (rr *RoundRobin) Pick(info Info) (*backend.Backend, error) {
	bs := info.Snapshot.Routable()
	if len(bs) == 0 {
		return nil, ErrNoBackend
	}
	n := rr.next.next(bs)
	return bs[n%uint64(len(bs))], nil
}
