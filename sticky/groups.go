package sticky

import (
	"math"
	"sync/atomic"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/policy"
)

// groups places requests on the groups of a set's backends
// ([backend.Config.Group]): a new client by smooth weighted round robin
// over the groups' weights, a keyed request by weighted rendezvous
// hashing of its key, a client whose backend no longer serves within its
// binding's group. Its plan for a snapshot is built once, by the first
// request that sees the snapshot, and shared by the requests after it.
type groups struct {
	plan atomic.Pointer[groupPlan] // for the latest snapshot seen
	next atomic.Uint64             // new clients placed so far
}

// groupPlan is how the groups of one snapshot take new clients and keys.
type groupPlan struct {
	snap  *backend.Snapshot
	open  []*backend.Snapshot // the snapshots of the groups that take new clients: weight > 0, and serves
	wts   []float64           // open[i]'s weight
	salts []uint64            // the hash of open[i]'s name, for rendezvous
	seq   []uint16            // indices in open, in smooth weighted round robin order
}

// snapshot returns the snapshot within which the request bound is placed,
// given snap, the set's, prev, the member bound names if any, and k, the
// request's rehomeKey if bound is Valid or Unknown: snap itself when it
// has one group or fewer, else the snapshot of one group. A client bound
// to a group (bound.Group, else prev's group) that has a member taking new
// clients stays in that group, whatever its weight; one whose group has
// none is given a group by weighted rendezvous hashing of k, as a keyed
// request is given its key's group, so that the requests one client sends
// together agree on it; any other is given a group by weight in turn. When no group of positive weight has a member taking new
// clients, it returns snap.
func (g *groups) snapshot(snap *backend.Snapshot, bound policy.Binding, prev *backend.Backend, k uint64) *backend.Snapshot {
	if len(snap.Groups()) < 2 {
		return snap
	}
	if bound.Status == policy.Valid || bound.Status == policy.Unknown {
		group := bound.Group
		if group == "" && prev != nil {
			group = prev.Group()
		}
		if sub := snap.Group(group); serves(snap, sub) {
			return sub
		}
	}
	p := g.planFor(snap)
	if len(p.open) == 0 {
		return snap
	}
	switch bound.Status {
	case policy.Keyed:
		return p.open[p.rendezvous(bound.KeyHash)]
	case policy.Valid, policy.Unknown:
		return p.open[p.rendezvous(mix(k))]
	}
	n := g.next.Add(1) - 1
	return p.open[p.seq[n%uint64(len(p.seq))]]
}

// serves reports whether sub, the snapshot of a group of snap, has a
// member taking new clients: a routable one, healthy unless snap itself
// fails open. A group whose every member is unhealthy fails open within
// itself (see [backend.Snapshot.Group]), which is for a picker run on it;
// while another group has a healthy member, its clients go there.
func serves(snap, sub *backend.Snapshot) bool {
	return len(sub.Routable()) > 0 && (!sub.FailOpen() || snap.FailOpen())
}

// planFor returns the plan of snap, building it if the latest plan is
// another snapshot's.
func (g *groups) planFor(snap *backend.Snapshot) *groupPlan {
	if p := g.plan.Load(); p != nil && p.snap == snap {
		return p
	}
	p := newGroupPlan(snap)
	g.plan.Store(p)
	return p
}

// newGroupPlan returns the plan of snap's groups.
func newGroupPlan(snap *backend.Snapshot) *groupPlan {
	p := &groupPlan{snap: snap}
	var ws []int
	for _, gr := range snap.Groups() {
		sub := snap.Group(gr.Name)
		if gr.Weight == 0 || !serves(snap, sub) {
			continue
		}
		p.open = append(p.open, sub)
		p.wts = append(p.wts, float64(gr.Weight))
		p.salts = append(p.salts, policy.HashKey(gr.Name))
		ws = append(ws, gr.Weight)
	}
	p.seq = smoothWRR(ws)
	return p
}

// smoothWRR returns one round of nginx's smooth weighted round robin over
// weights ws, reduced by their greatest common divisor: each index i
// appears ws[i]/gcd times, spread as evenly as the weights allow.
func smoothWRR(ws []int) []uint16 {
	d := 0
	for _, w := range ws {
		d = gcd(d, w)
	}
	total := 0
	for i := range ws {
		ws[i] /= d
		total += ws[i]
	}
	cur := make([]int, len(ws))
	seq := make([]uint16, total)
	for n := range seq {
		best := 0
		for i, w := range ws {
			cur[i] += w
			if cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= total
		seq[n] = uint16(best)
	}
	return seq
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// rendezvous returns the index in p.open of the group of the key hashed
// to k: the one with the highest score -w/ln(u), u uniform in (0,1) drawn
// from the key and the group's name. A group's share of the keys is its
// share of the weight, and a change of one group's weight moves keys only
// to that group (if it grows) or from it (if it shrinks). Moving weight
// from one group to another is two such changes: with two groups, keys
// move only between them; with more, a few also move between them and
// the others, which no assignment that depends on the weights alone can
// avoid.
func (p *groupPlan) rendezvous(k uint64) int {
	best, top := 0, math.Inf(-1)
	for i, salt := range p.salts {
		u := (float64(mix(k^salt)>>11) + 0.5) / (1 << 53)
		if s := -p.wts[i] / math.Log(u); s > top {
			best, top = i, s
		}
	}
	return best
}

// mix is SplitMix64's finalizer: a bijection of 64 bits that spreads
// every input bit over the output.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
