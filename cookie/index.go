package cookie

import (
	"sync/atomic"

	"github.com/affinitylb/affinity/backend"
)

// index resolves the tokens carried by cookies to the IDs of one snapshot's
// backends. It is immutable once built.
type index struct {
	snap *backend.Snapshot
	// byToken[k] maps the token of each backend under key k to its ID and
	// group. An empty ID marks a token two backends share, a 64-bit
	// collision no real set will see: it resolves to neither.
	byToken []map[uint64]entry
	// members holds what is known of every backend by ID, handed on to
	// the next index, so that it computes the tokens of new backends only.
	members map[string]*member
	// byGroup[k] maps the token of each named group of the snapshot
	// ([backend.Snapshot.Groups]) under key k to its name; "" marks a
	// token two groups share. groups holds each group's tokens by name,
	// handed on to the next index.
	byGroup []map[uint64]string
	groups  map[string][]uint64
}

// entry is what a backend's token resolves to.
type entry struct {
	id    string
	group string // the backend's group
}

// member is what a Policy keeps of one backend of the set, for as long as
// the backend stays in it: a bounded amount, whatever the number of
// clients.
type member struct {
	// group is the backend's group ([backend.Backend.Group]), which the
	// lines below carry; a backend of the same ID in another group is
	// another member.
	group string
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

// resolve returns the ID and group of the backend whose token under key k
// is tok.
func (ix *index) resolve(k int, tok uint64) (e entry, ok bool) {
	e = ix.byToken[k][tok]
	return e, e.id != ""
}

// group returns the name of the group whose token under key k p carries:
// "" for the default group, and for a group ix does not know.
func (ix *index) group(k int, p *payload) string {
	if !p.grouped() || ix == nil {
		return ""
	}
	return ix.byGroup[k][p.group()]
}

// buildIndex returns the index of s's backends under nkeys keys. It reuses
// the tokens prev (which may be nil) already holds and calls token only for
// backends prev does not know. When s has exactly prev's members, as after
// a change of state, it shares prev's maps and computes nothing.
//
// It indexes the tokens of s's named groups likewise, with groupToken.
func buildIndex(prev *index, s *backend.Snapshot, nkeys int, token, groupToken func(k int, id string) uint64) *index {
	bs := s.Backends()
	var known map[string]*member
	var ix *index
	if prev != nil {
		known = prev.members
		if sameMembers(known, bs) {
			ix = &index{snap: s, byToken: prev.byToken, members: known}
		}
	}
	if ix == nil {
		ix = &index{
			snap:    s,
			byToken: make([]map[uint64]entry, nkeys),
			members: make(map[string]*member, len(bs)),
		}
		for k := range ix.byToken {
			ix.byToken[k] = make(map[uint64]entry, len(bs))
		}
		for _, b := range bs {
			id := b.ID()
			m, ok := known[id]
			if !ok || m.group != b.Group() {
				m = &member{group: b.Group(), tokens: make([]uint64, nkeys)}
				for k := range m.tokens {
					m.tokens[k] = token(k, id)
				}
			}
			ix.members[id] = m
			for k, t := range m.tokens {
				if _, taken := ix.byToken[k][t]; taken {
					ix.byToken[k][t] = entry{}
				} else {
					ix.byToken[k][t] = entry{id: id, group: m.group}
				}
			}
		}
	}
	var prevGroups map[string][]uint64
	if prev != nil {
		prevGroups = prev.groups
	}
	ix.indexGroups(s, nkeys, prevGroups, groupToken)
	return ix
}

// indexGroups fills ix.byGroup and ix.groups with the tokens of the named
// groups of s, reusing those known holds.
func (ix *index) indexGroups(s *backend.Snapshot, nkeys int, known map[string][]uint64, groupToken func(k int, group string) uint64) {
	ix.byGroup = make([]map[uint64]string, nkeys)
	for k := range ix.byGroup {
		ix.byGroup[k] = map[uint64]string{}
	}
	ix.groups = make(map[string][]uint64, len(s.Groups()))
	for _, g := range s.Groups() {
		if g.Name == "" {
			continue
		}
		ts, ok := known[g.Name]
		if !ok {
			ts = make([]uint64, nkeys)
			for k := range ts {
				ts[k] = groupToken(k, g.Name)
			}
		}
		ix.groups[g.Name] = ts
		for k, t := range ts {
			if _, taken := ix.byGroup[k][t]; taken {
				ix.byGroup[k][t] = ""
			} else {
				ix.byGroup[k][t] = g.Name
			}
		}
	}
}

// sameMembers reports whether the IDs of bs, which are distinct, are
// exactly the keys of members, each in the member's group.
func sameMembers(members map[string]*member, bs []*backend.Backend) bool {
	if len(members) != len(bs) {
		return false
	}
	for _, b := range bs {
		if m, ok := members[b.ID()]; !ok || m.group != b.Group() {
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
	ix := buildIndex(prev, s, len(c.signer.keys), c.signer.token, c.signer.groupToken)
	c.index.Store(ix)
	return ix
}
