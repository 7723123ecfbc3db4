package cookie

import (
	"sync/atomic"

	"github.com/affinitylb/affinity/backend"
)

// index resolves the tokens carried by cookies to the IDs of one snapshot's
// backends. It is immutable once built.
type index struct {
	snap *backend.Snapshot
	// byToken[k] maps the token of each backend under key k to its ID. An
	// empty ID marks a token two backends share, a 64-bit collision no real
	// set will see: it resolves to neither.
	byToken []map[uint64]string
	// members holds what is known of every backend by ID, handed on to
	// the next index, so that it computes the tokens of new backends only.
	members map[string]*member
}

// member is what a Policy keeps of one backend of the set, for as long as
// the backend stays in it: a bounded amount, whatever the number of
// clients.
type member struct {
	// tokens holds the backend's token under each key.
	tokens []uint64
	// lines holds the last Set-Cookie line issued to bind a new client to
	// the backend, without and with Secure. Lines issued in the same
	// second are identical, so every new client bound within that second
	// gets this one, without computing a MAC.
	lines [2]atomic.Pointer[issuedLine]
}

// issuedLine is a Set-Cookie line binding a client to a backend, the CORS
// twin's line if the cookie has one, and the second, in Unix time, they
// were issued and the binding made.
type issuedLine struct {
	at   int64
	text string
	twin string // "": no twin
}

// resolve returns the ID of the backend whose token under key k is tok.
func (ix *index) resolve(k int, tok uint64) (id string, ok bool) {
	id = ix.byToken[k][tok]
	return id, id != ""
}

// buildIndex returns the index of s's backends under nkeys keys. It reuses
// the tokens prev (which may be nil) already holds and calls token only for
// backends prev does not know. When s has exactly prev's members, as after
// a change of state, it shares prev's maps and computes nothing.
func buildIndex(prev *index, s *backend.Snapshot, nkeys int, token func(k int, id string) uint64) *index {
	bs := s.Backends()
	var known map[string]*member
	if prev != nil {
		known = prev.members
		if sameMembers(known, bs) {
			return &index{snap: s, byToken: prev.byToken, members: known}
		}
	}

	ix := &index{
		snap:    s,
		byToken: make([]map[uint64]string, nkeys),
		members: make(map[string]*member, len(bs)),
	}
	for k := range ix.byToken {
		ix.byToken[k] = make(map[uint64]string, len(bs))
	}
	for _, b := range bs {
		id := b.ID()
		m, ok := known[id]
		if !ok {
			m = &member{tokens: make([]uint64, nkeys)}
			for k := range m.tokens {
				m.tokens[k] = token(k, id)
			}
		}
		ix.members[id] = m
		for k, t := range m.tokens {
			if _, taken := ix.byToken[k][t]; taken {
				ix.byToken[k][t] = ""
			} else {
				ix.byToken[k][t] = id
			}
		}
	}
	return ix
}

// sameMembers reports whether the IDs of bs, which are distinct, are
// exactly the keys of members.
func sameMembers(members map[string]*member, bs []*backend.Backend) bool {
	if len(members) != len(bs) {
		return false
	}
	for _, b := range bs {
		if _, ok := members[b.ID()]; !ok {
			return false
		}
	}
	return true
}

// indexFor returns the index of s, building it if the last one built was
// for another snapshot. Lookups served from the current index take no lock;
// rebuilds are serialized, so a burst of lookups with a new snapshot builds
// its index once.
//
// The index is keyed by snapshot identity, which within one set is its
// version, and which also tells apart two sets sharing this Policy. Callers
// holding different snapshots at once (one request routed just before a
// change, one just after) make the index flip between them. That is
// accepted: it lasts as long as requests routed with the old snapshot, each
// flip costs a pass over the members and tokens only for the backends the
// two snapshots disagree on, and a request always resolves against the
// snapshot it was handed.
func (c *Policy) indexFor(s *backend.Snapshot) *index {
	if ix := c.index.Load(); ix != nil && ix.snap == s {
		return ix
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	prev := c.index.Load()
	if prev != nil && prev.snap == s {
		return prev
	}
	ix := buildIndex(prev, s, len(c.signer.keys), c.signer.token)
	c.index.Store(ix)
	return ix
}
