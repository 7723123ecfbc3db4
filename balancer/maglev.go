package balancer

import (
	"container/heap"
	"slices"
	"strings"

	"github.com/cespare/xxhash/v2"

	"github.com/affinitylb/affinity/backend"
)

// Seeds of the two hashes of a backend's ID that define its Maglev
// permutation. They are part of the key-to-backend mapping: changing either
// moves nearly every key, and processes built with different seeds disagree.
const (
	offsetSeed = 0x6d61676c65762d6f // "maglev-o"
	skipSeed   = 0x6d61676c65762d73 // "maglev-s"
)

// tableSizes are the sizes M of the lookup tables, primes, smallest first.
// M depends on the number N of members alone, so processes with
// the same membership build the same table.
//
// A change of M moves nearly every key, as rehashing does, so sizes are few
// and far apart, and M stays put while N changes within a wide range: 65537
// slots, the size of the Maglev paper and Envoy's default, serve any N up
// to 6,553, so backends failing or joining in a pool of that size never
// change M. Past that, M is the smallest size of at least minSlots·N.
//
// The more slots per backend, the closer each backend's share of the keys
// comes to its weight, as shares are exact within one slot: within 1% at
// 100 slots a backend (N ≤ 655 with M = 65537), 10% at 10. The cost is 4
// bytes a slot and the build time, about M·ln M probes of a bitmap
// (BenchmarkConsistentHashBuild measures it). Ten slots a backend is the
// floor: over 10,000 keys, the keys that move between backends that stay
// are under 0.2% of all when one of 5,000 to 13,000 leaves or joins, and
// bounded loads absorb the coarser shares; twenty would double the build
// and move as many keys.
var tableSizes = [...]uint64{65537, 131071, 262139, 524287, 1048573, 2097143, 4194301, 8388593, 16777213}

// minSlots is the least number of slots per backend past the first size.
const minSlots = 10

// tableSize returns the size of the lookup table for n backends.
func tableSize(n int) uint64 {
	for _, m := range tableSizes {
		if m >= minSlots*uint64(n) {
			return m
		}
	}
	return tableSizes[len(tableSizes)-1]
}

// table is a Maglev lookup table for one membership: the members of the
// snapshots whose Backends are members. It is immutable once built.
type table struct {
	members  []*backend.Backend // the snapshot's Backends(), as it returned them, or those that serve
	backends []*backend.Backend // members, sorted by ID
	slots    []uint32           // slot to index in backends
}

// newTable returns the table of s's members, of which there is at least
// one. If prev, which may be nil, was built from the same members, the new
// table shares its slots.
func newTable(s *backend.Snapshot, prev *table) *table {
	all := s.Backends()
	if prev != nil && slices.Equal(prev.members, all) {
		return &table{members: all, backends: prev.backends, slots: prev.slots}
	}
	return newTableOf(all)
}

// newTableOf returns the table of members, of which there is at least one.
// It keeps members as they are.
func newTableOf(members []*backend.Backend) *table {
	bs := slices.Clone(members)
	slices.SortFunc(bs, func(a, b *backend.Backend) int { return strings.Compare(a.ID(), b.ID()) })
	return &table{members: members, backends: bs, slots: fill(bs, tableSize(len(bs)))}
}

// of reports whether t is the table of s's members, in constant time: a
// snapshot that differs from the last only in states shares its list of
// members.
func (t *table) of(s *backend.Snapshot) bool {
	all := s.Backends()
	return len(all) == len(t.members) && (len(all) == 0 || &all[0] == &t.members[0])
}

// fill builds a weighted Maglev lookup table of m slots for bs, which are
// sorted by ID.
//
// Each backend's permutation of the slots is offset, offset+skip,
// offset+2·skip... modulo m, with offset and skip hashed from its ID; m is
// prime, so the permutation visits every slot. As in Maglev, backends take
// turns, each taking the first free slot of its permutation, until the table
// is full. Weights set the order of the turns: a backend of weight w takes
// its k-th turn at time k/w, so over any stretch of time it takes turns, and
// slots, in proportion to its weight. Turns at the same time go to the
// heavier backend first, then in ID order. With equal weights this is
// Maglev's round robin.
//
// The order of two backends' turns depends on their weights and IDs alone,
// not on the other backends: a backend that joins or leaves adds or removes
// its own turns and leaves the others' in order, which is what keeps the
// keys that must not move in place.
func fill(bs []*backend.Backend, m uint64) []uint32 {
	perms := make([]perm, len(bs))
	byWeight := make(map[int64]*turns)
	for i, b := range bs {
		id := b.ID()
		perms[i] = perm{next: seeded(offsetSeed, id) % m, skip: seeded(skipSeed, id)%(m-1) + 1}
		w := b.Weight()
		if byWeight[w] == nil {
			byWeight[w] = &turns{weight: w, k: 1}
		}
		byWeight[w].members = append(byWeight[w].members, i)
	}
	q := make(turnQueue, 0, len(byWeight))
	for _, t := range byWeight {
		q = append(q, t)
	}
	heap.Init(&q)

	// Probes read a bitmap of the taken slots, which stays in the CPU's
	// first-level cache where the table would not.
	slots := make([]uint32, m)
	taken := make([]uint64, (m+63)/64)
	filled := uint64(0)
	for {
		t := q[0]
		for _, i := range t.members {
			p := &perms[i]
			s := p.nextFree(taken, m)
			taken[s/64] |= 1 << (s % 64)
			slots[s] = uint32(i)
			if filled++; filled == m {
				return slots
			}
		}
		t.k++
		heap.Fix(&q, 0)
	}
}

// perm is where a backend stands in its permutation of a table's slots.
type perm struct{ next, skip uint64 }

// nextFree advances p to the first slot not set in taken, from p.next on,
// and returns it.
func (p *perm) nextFree(taken []uint64, m uint64) uint64 {
	s := p.next
	for taken[s/64]&(1<<(s%64)) != 0 {
		if s += p.skip; s >= m {
			s -= m
		}
	}
	p.next = s
	return s
}

// turns are the turns of the backends of one weight: the k-th turn of each,
// at time k/weight, in ID order.
type turns struct {
	weight  int64
	k       int64
	members []int // indices in ID order
}

// before reports whether t's next turns come before u's.
func (t *turns) before(u *turns) bool {
	l, r := t.k*u.weight, u.k*t.weight
	return l < r || l == r && t.weight > u.weight
}

// turnQueue orders the turns of each weight by time, for container/heap.
type turnQueue []*turns

func (q turnQueue) Len() int           { return len(q) }
func (q turnQueue) Less(i, j int) bool { return q[i].before(q[j]) }
func (q turnQueue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *turnQueue) Push(x any)        { *q = append(*q, x.(*turns)) }
func (q *turnQueue) Pop() any {
	old := *q
	t := old[len(old)-1]
	*q = old[:len(old)-1]
	return t
}

// seeded returns the xxhash of s under seed.
func seeded(seed uint64, s string) uint64 {
	var d xxhash.Digest
	d.ResetWithSeed(seed)
	d.WriteString(s)
	return d.Sum64()
}
