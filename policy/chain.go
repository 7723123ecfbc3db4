package policy

import (
	"errors"
	"fmt"
	"net/http"
	"reflect"

	"github.com/affinitylb/affinity/backend"
)

// maxChainLen bounds the members of a Chain, so that a member's index fits
// in a byte of a chainPath.
const maxChainLen = 255

// chainPath records which Chain members produced a Binding: a byte per
// Chain the binding was returned through, the outermost in the low byte,
// each holding the member's index plus one. Zero: no Chain member did.
// Chains nested directly are flattened; bytes pile up only for Chains
// wrapped in other policies, and past eight such levels the innermost are
// lost, their members then all getting the binding in Save, as they do
// when a wrapper rebuilds it field by field.
type chainPath uint64

// via returns b recorded as produced by member i.
func (b Binding) via(i int) Binding {
	b.from = b.from<<8 | chainPath(i+1)
	return b
}

// Chain is a [Policy] made of others, asked in order: for example the
// balancer's cookie, then a header key, leaving the rest to the picker.
//
// Lookup asks each member in turn and returns the first binding that
// places the request, one whose Status is Valid or Keyed; members after it
// are not asked. If none does, it returns the first binding rejected for a
// reason (Malformed, Forged, Expired, Unknown) so that observers see why,
// or else Binding{Status: None}.
//
// Save calls every member's Save, in order. The member whose binding
// Lookup returned is given that binding as prev; every other member is
// given Binding{Status: None}, as if the request had carried nothing for
// it. So a cookie member (package cookie) keeps a valid cookie that placed
// the request as it is, and issues one whenever the request was placed
// otherwise, by a key or by the picker: a client first placed by its key
// stays on that backend by cookie, even when membership changes would move
// its key. Order matters: a cookie member after a key member that matches
// is never asked, and re-issues its cookie on every response; put cookies
// first.
//
// Which member produced a binding is recorded in the Binding, unexported.
// A policy wrapping a Chain that hands Save a Binding rebuilt field by
// field loses it; Save then gives that Binding to every member. That is
// harmless: a cookie member given a Valid binding to the backend that
// answered keeps its cookie, and issues one otherwise; a key member
// ignores it.
//
// A Chain is immutable and safe for concurrent use. It adds no allocation
// to its members'.
type Chain struct {
	members []Policy
}

var _ Policy = (*Chain)(nil)

// NewChain returns a Chain of the policies, asked in the order given.
// Chains among them are flattened, their members taking their place. It
// returns an error if there are no policies, one is nil or a nil pointer,
// or there are more than 255 once flattened.
func NewChain(policies ...Policy) (*Chain, error) {
	if len(policies) == 0 {
		return nil, errors.New("policy: empty chain: give at least one policy")
	}
	var members []Policy
	for i, p := range policies {
		if isNil(p) {
			return nil, fmt.Errorf("policy: chain member %d is nil", i)
		}
		if c, ok := p.(*Chain); ok {
			members = append(members, c.members...)
		} else {
			members = append(members, p)
		}
	}
	if len(members) > maxChainLen {
		return nil, fmt.Errorf("policy: chain of %d policies; at most %d", len(members), maxChainLen)
	}
	return &Chain{members: members}, nil
}

// isNil reports whether p is nil, or a nil pointer to a policy of any
// type (left by a constructor's error, say).
func isNil(p Policy) bool {
	if p == nil {
		return true
	}
	v := reflect.ValueOf(p)
	return v.Kind() == reflect.Pointer && v.IsNil()
}

// Lookup returns the binding of the first member that places r: Valid or
// Keyed. Failing that, it returns the first member's binding with another
// status than None, or Binding{Status: None}.
func (c *Chain) Lookup(r *http.Request, s *backend.Snapshot) Binding {
	rejected := Binding{Status: None}
	for i, m := range c.members {
		b := m.Lookup(r, s)
		switch {
		case b.Status == Valid || b.Status == Keyed:
			return b.via(i)
		case b.Status != None && rejected.Status == None:
			rejected = b.via(i)
		}
	}
	return rejected
}

// Strip calls Strip on each member that implements [Stripper].
func (c *Chain) Strip(h http.Header) {
	for _, m := range c.members {
		if s, ok := m.(Stripper); ok {
			s.Strip(h)
		}
	}
}

// Save calls each member's Save: with prev for the member that produced
// it, with Binding{Status: None} for the others. prev should be the
// Binding c.Lookup returned, whole; one that records no member, rebuilt
// field by field, is given to every member.
func (c *Chain) Save(r *http.Request, resp *http.Response, b *backend.Backend, prev Binding) {
	if prev.from == 0 {
		for _, m := range c.members {
			m.Save(r, resp, b, prev)
		}
		return
	}
	used, own := int(prev.from&0xff)-1, prev
	own.from >>= 8
	for i, m := range c.members {
		if i == used {
			m.Save(r, resp, b, own)
		} else {
			m.Save(r, resp, b, Binding{Status: None})
		}
	}
}
