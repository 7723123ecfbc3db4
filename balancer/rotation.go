package balancer

import (
	"maps"
	"sync"
	"sync/atomic"

	"github.com/affinitylb/affinity/backend"
)

// rotation is the counter a rotating picker advances: one for each group
// ([backend.Config.Group]) it picks within, so that picks within one
// group rotate through its members whatever the picks within the others
// in between (a handler alternating two groups would otherwise see only
// every other value of a shared counter in each). The zero value is ready
// to use and must not be copied after first use.
type rotation struct {
	all    atomic.Uint64                             // picks whose first backend is of the default group: a set without groups, or a whole set led by one
	groups atomic.Pointer[map[string]*atomic.Uint64] // by group name, one for each group ever picked within; copied on write
	mu     sync.Mutex                                // serializes writes to groups
}

// next returns the count of earlier picks among bs's group and counts
// this one. bs is not empty; its members are in one group when bs is a
// group's snapshot's, and bs[0]'s group stands for it.
func (r *rotation) next(bs []*backend.Backend) uint64 {
	g := bs[0].Group()
	if g == "" {
		return r.all.Add(1) - 1
	}
	if m := r.groups.Load(); m != nil {
		if c := (*m)[g]; c != nil {
			return c.Add(1) - 1
		}
	}
	return r.add(g).Add(1) - 1
}

// add returns the counter of group g, adding it if there is none.
func (r *rotation) add(g string) *atomic.Uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.groups.Load()
	if old != nil && (*old)[g] != nil {
		return (*old)[g]
	}
	m := make(map[string]*atomic.Uint64, 1)
	if old != nil {
		maps.Copy(m, *old)
	}
	c := new(atomic.Uint64)
	m[g] = c
	r.groups.Store(&m)
	return c
}
