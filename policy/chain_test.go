package policy_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/cookie"
	"github.com/affinitylb/affinity/policy"
)

// fields returns b's exported fields: what a caller can compare.
func fields(b policy.Binding) policy.Binding {
	return policy.Binding{ID: b.ID, Status: b.Status, Refresh: b.Refresh, KeyHash: b.KeyHash}
}

func newChain(t testing.TB, ps ...policy.Policy) *policy.Chain {
	t.Helper()
	c, err := policy.NewChain(ps...)
	require.NoError(t, err)
	return c
}

// fake is a Policy with a fixed Lookup that records its calls.
type fake struct {
	name   string
	lookup policy.Binding
	log    *[]string // "name.Lookup" and "name.Save(prev status)" calls, in order
	saved  []policy.Binding
}

func (f *fake) Lookup(*http.Request, *backend.Snapshot) policy.Binding {
	*f.log = append(*f.log, f.name+".Lookup")
	return f.lookup
}

func (f *fake) Save(_ *http.Request, _ *http.Response, _ *backend.Backend, prev policy.Binding) {
	*f.log = append(*f.log, f.name+".Save("+prev.Status.String()+")")
	f.saved = append(f.saved, fields(prev))
}

// wrapper is a Policy of the user's that wraps another, passing bindings
// through whole.
type wrapper struct{ policy.Policy }

// rebuilder is a Policy of the user's that wraps another and hands on
// copies of its bindings rebuilt field by field, as a wrapper that logs or
// edits them may: what Lookup returns, and what Save is given, carry the
// exported fields only.
type rebuilder struct{ p policy.Policy }

func (w rebuilder) Lookup(r *http.Request, s *backend.Snapshot) policy.Binding {
	return fields(w.p.Lookup(r, s))
}

func (w rebuilder) Save(r *http.Request, resp *http.Response, b *backend.Backend, prev policy.Binding) {
	w.p.Save(r, resp, b, fields(prev))
}

func TestChainLookup(t *testing.T) {
	set := newSet(t)
	lb := newCookie(t, [][]byte{key1})
	other := newCookie(t, [][]byte{key2})
	renamed := newCookie(t, [][]byte{key1}, cookie.WithName("lb2"))
	header, err := policy.HeaderKey("X-Client")
	require.NoError(t, err)

	const client = "X-Client: c-42"
	tests := []struct {
		name  string
		chain []policy.Policy
		lines []string // "Cookie: ..." or "X-Client: ..."
		want  policy.Binding
	}{
		{"valid cookie wins over the key", []policy.Policy{lb, header}, []string{"Cookie: affinity=" + lb.Issue("b"), client}, policy.Binding{ID: "b", Status: policy.Valid}},
		{"key without a cookie", []policy.Policy{lb, header}, []string{client}, keyed("c-42")},
		{"nothing", []policy.Policy{lb, header}, nil, none},
		{"forged cookie, no key", []policy.Policy{lb, header}, []string{"Cookie: affinity=" + other.Issue("b")}, policy.Binding{Status: policy.Forged}},
		{"forged cookie, key", []policy.Policy{lb, header}, []string{"Cookie: affinity=" + other.Issue("b"), client}, keyed("c-42")},
		{"unknown backend, no key", []policy.Policy{lb, header}, []string{"Cookie: affinity=" + lb.Issue("z")}, policy.Binding{Status: policy.Unknown}},
		{"order matters: key first", []policy.Policy{header, lb}, []string{"Cookie: affinity=" + lb.Issue("b"), client}, keyed("c-42")},
		{"old key asks for a refresh", []policy.Policy{newCookie(t, [][]byte{key2, key1}), header}, []string{"Cookie: affinity=" + lb.Issue("c")}, policy.Binding{ID: "c", Status: policy.Valid, Refresh: true}},
		{"first rejection reported", []policy.Policy{lb, renamed}, []string{"Cookie: affinity=garbage; lb2=" + other.Issue("a")}, policy.Binding{Status: policy.Malformed}},
		{"first rejection reported, reversed", []policy.Policy{renamed, lb}, []string{"Cookie: affinity=garbage; lb2=" + other.Issue("a")}, policy.Binding{Status: policy.Forged}},
		{"valid after a rejection", []policy.Policy{renamed, lb}, []string{"Cookie: affinity=" + lb.Issue("a") + "; lb2=garbage"}, policy.Binding{ID: "a", Status: policy.Valid}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ipRequest("192.0.2.1:1", tt.lines...)
			got := newChain(t, tt.chain...).Lookup(r, set.Snapshot())
			assert.Equal(t, tt.want, fields(got))
		})
	}
}

func TestChainSave(t *testing.T) {
	set := newSet(t)
	snap := set.Snapshot()
	lb := newCookie(t, [][]byte{key2, key1})
	old := newCookie(t, [][]byte{key1})
	other := newCookie(t, [][]byte{key2}, cookie.WithName("other"))
	header, err := policy.HeaderKey("X-Client")
	require.NoError(t, err)

	tests := []struct {
		name    string
		chain   []policy.Policy
		cookie  string // the request's affinity cookie
		client  string // its X-Client header
		served  string // the backend that served it
		wantSet bool   // whether a cookie is issued, binding to served
	}{
		{"valid cookie placed it: kept", []policy.Policy{lb, header}, lb.Issue("a"), "c-42", "a", false},
		{"valid cookie, old key: re-signed", []policy.Policy{lb, header}, old.Issue("a"), "c-42", "a", true},
		{"valid cookie, other backend served: issued", []policy.Policy{lb, header}, lb.Issue("b"), "", "a", true},
		{"placed by the key: issued", []policy.Policy{lb, header}, "", "c-42", "a", true},
		{"placed by the picker: issued", []policy.Policy{lb, header}, "", "", "a", true},
		{"forged cookie: issued", []policy.Policy{lb, header}, other.Issue("a"), "", "a", true},
		{"forged cookie, key: issued", []policy.Policy{lb, header}, "garbage", "c-42", "a", true},
		{"key first: issued every time", []policy.Policy{header, lb}, lb.Issue("a"), "c-42", "a", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var lines []string
			if tt.cookie != "" {
				lines = append(lines, "Cookie: affinity="+tt.cookie)
			}
			if tt.client != "" {
				lines = append(lines, "X-Client: "+tt.client)
			}
			r := ipRequest("192.0.2.1:1", lines...)
			ch := newChain(t, tt.chain...)
			prev := ch.Lookup(r, snap)
			resp := &http.Response{Header: http.Header{}}
			ch.Save(r, resp, snap.Lookup(tt.served), prev)

			got := resp.Header.Values("Set-Cookie")
			if !tt.wantSet {
				assert.Empty(t, got)
				return
			}
			require.Len(t, got, 1)
			ck, err := http.ParseSetCookie(got[0])
			require.NoError(t, err)
			assert.Equal(t, policy.Binding{ID: tt.served, Status: policy.Valid}, unseeded(lb.Lookup(request(ck.String()), snap)))
		})
	}
}

// TestChainSaveRebuiltBinding checks a Chain of a cookie and a header key
// inside a policy that rebuilds bindings field by field, losing which
// member produced them: once the first response has bound the client,
// the responses to its requests carrying the cookie set no cookie, as
// they do when the binding is handed on whole.
func TestChainSaveRebuiltBinding(t *testing.T) {
	set := newSet(t)
	snap := set.Snapshot()
	lb := newCookie(t, [][]byte{key1})
	header, err := policy.HeaderKey("X-Client")
	require.NoError(t, err)
	chain := newChain(t, lb, header)

	for _, tc := range []struct {
		name   string
		p      policy.Policy
		client string // the requests' X-Client header, "" for none
	}{
		{"whole, placed by the key", wrapper{chain}, "c-42"},
		{"whole, placed by the picker", wrapper{chain}, ""},
		{"rebuilt, placed by the key", rebuilder{chain}, "c-42"},
		{"rebuilt, placed by the picker", rebuilder{chain}, ""},
		{"rebuilt twice", rebuilder{rebuilder{chain}}, "c-42"},
		{"rebuilt, in a chain", newChain(t, rebuilder{chain}), "c-42"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var jar string // the client's affinity cookie, once set
			for i := range 4 {
				var lines []string
				if jar != "" {
					lines = append(lines, "Cookie: "+jar)
				}
				if tc.client != "" {
					lines = append(lines, "X-Client: "+tc.client)
				}
				r := ipRequest("192.0.2.1:1", lines...)
				prev := tc.p.Lookup(r, snap)
				resp := &http.Response{Header: http.Header{}}
				tc.p.Save(r, resp, snap.Lookup("b"), prev)
				got := resp.Header.Values("Set-Cookie")
				if i == 0 {
					require.Len(t, got, 1, "the first response binds the client")
					ck, err := http.ParseSetCookie(got[0])
					require.NoError(t, err)
					jar = ck.Name + "=" + ck.Value
					continue
				}
				assert.Equal(t, policy.Binding{ID: "b", Status: policy.Valid}, fields(prev), "request %d", i)
				assert.Empty(t, got, "request %d: the client's cookie is kept as it is", i)
			}
		})
	}

	t.Run("rebuilt, served elsewhere", func(t *testing.T) {
		p := rebuilder{chain}
		r := ipRequest("192.0.2.1:1", "Cookie: affinity="+lb.Issue("a"), "X-Client: c-42")
		prev := p.Lookup(r, snap)
		require.Equal(t, policy.Binding{ID: "a", Status: policy.Valid}, prev)
		resp := &http.Response{Header: http.Header{}}
		p.Save(r, resp, snap.Lookup("b"), prev)
		got := resp.Header.Values("Set-Cookie")
		require.Len(t, got, 1, "the client is bound to the backend that served it")
		ck, err := http.ParseSetCookie(got[0])
		require.NoError(t, err)
		assert.Equal(t, policy.Binding{ID: "b", Status: policy.Valid}, unseeded(lb.Lookup(request(ck.Name+"="+ck.Value), snap)))
	})
}

func TestChainCallsEveryMember(t *testing.T) {
	set := newSet(t)
	snap := set.Snapshot()
	placed := policy.Binding{Status: policy.Keyed, KeyHash: 7}
	forged := policy.Binding{Status: policy.Forged}
	valid := policy.Binding{ID: "a", Status: policy.Valid}

	tests := []struct {
		name      string
		lookups   []policy.Binding
		want      policy.Binding
		wantLog   []string
		wantSaved []policy.Binding // what each member's Save was given
	}{
		{
			name:      "third places",
			lookups:   []policy.Binding{none, forged, placed, valid},
			want:      placed,
			wantLog:   []string{"m0.Lookup", "m1.Lookup", "m2.Lookup", "m0.Save(none)", "m1.Save(none)", "m2.Save(keyed)", "m3.Save(none)"},
			wantSaved: []policy.Binding{none, none, placed, none},
		},
		{
			name:      "none places, one rejects",
			lookups:   []policy.Binding{none, forged, {Status: policy.Expired}},
			want:      forged,
			wantLog:   []string{"m0.Lookup", "m1.Lookup", "m2.Lookup", "m0.Save(none)", "m1.Save(forged)", "m2.Save(none)"},
			wantSaved: []policy.Binding{none, forged, none},
		},
		{
			name:      "none at all",
			lookups:   []policy.Binding{none, none},
			want:      none,
			wantLog:   []string{"m0.Lookup", "m1.Lookup", "m0.Save(none)", "m1.Save(none)"},
			wantSaved: []policy.Binding{none, none},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var log []string
			var members []policy.Policy
			var fakes []*fake
			for i, b := range tt.lookups {
				f := &fake{name: "m" + string(rune('0'+i)), lookup: b, log: &log}
				fakes = append(fakes, f)
				members = append(members, f)
			}
			ch := newChain(t, members...)
			prev := ch.Lookup(request(), snap)
			assert.Equal(t, tt.want, fields(prev))
			ch.Save(request(), &http.Response{Header: http.Header{}}, snap.Lookup("a"), prev)
			assert.Equal(t, tt.wantLog, log)
			for i, f := range fakes {
				assert.Equal(t, []policy.Binding{tt.wantSaved[i]}, f.saved, "member %d", i)
			}
		})
	}
}

func TestChainNested(t *testing.T) {
	set := newSet(t)
	snap := set.Snapshot()
	placed := policy.Binding{Status: policy.Keyed, KeyHash: 7}

	build := func(t *testing.T, wrap func(*policy.Chain) policy.Policy) (*policy.Chain, []*fake) {
		var log []string
		fs := []*fake{
			{name: "a", lookup: none, log: &log},
			{name: "b", lookup: placed, log: &log},
			{name: "c", lookup: none, log: &log},
			{name: "d", lookup: none, log: &log},
		}
		// The inner chain's member b is not at b's index in the outer one.
		inner := newChain(t, fs[0], fs[1])
		return newChain(t, fs[2], fs[3], wrap(inner)), fs
	}
	tests := []struct {
		name string
		wrap func(*policy.Chain) policy.Policy
	}{
		{"directly", func(c *policy.Chain) policy.Policy { return c }},
		{"wrapped", func(c *policy.Chain) policy.Policy { return wrapper{c} }},
		{"wrapped twice", func(c *policy.Chain) policy.Policy { return wrapper{wrapper{c}} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			outer, fs := build(t, tt.wrap)
			prev := outer.Lookup(request(), snap)
			require.Equal(t, placed, fields(prev))
			outer.Save(request(), &http.Response{Header: http.Header{}}, snap.Lookup("a"), prev)
			assert.Equal(t, []policy.Binding{none}, fs[0].saved)
			assert.Equal(t, []policy.Binding{placed}, fs[1].saved, "the member that placed the request gets its binding back")
			assert.Equal(t, []policy.Binding{none}, fs[2].saved)
			assert.Equal(t, []policy.Binding{none}, fs[3].saved)
		})
	}
}

// TestChainSaveWithoutProvenance checks that Save gives a binding that
// records no member, rebuilt field by field, to every member, the rest of
// a wrapping chain keeping theirs.
func TestChainSaveWithoutProvenance(t *testing.T) {
	set := newSet(t)
	snap := set.Snapshot()
	placed := policy.Binding{Status: policy.Keyed, KeyHash: 7}
	var log []string
	fs := []*fake{
		{name: "a", lookup: none, log: &log},
		{name: "b", lookup: placed, log: &log},
		{name: "c", lookup: none, log: &log},
	}
	inner := newChain(t, fs[0], fs[1])

	t.Run("rebuilt", func(t *testing.T) {
		prev := inner.Lookup(request(), snap)
		require.Equal(t, placed, fields(prev))
		inner.Save(request(), &http.Response{Header: http.Header{}}, snap.Lookup("a"), fields(prev))
		assert.Equal(t, []policy.Binding{placed}, fs[0].saved, "a member that did not place the request is given the binding too")
		assert.Equal(t, []policy.Binding{placed}, fs[1].saved)
	})
	t.Run("rebuilt inside a chain", func(t *testing.T) {
		fs[0].saved, fs[1].saved = nil, nil
		outer := newChain(t, fs[2], rebuilder{inner})
		prev := outer.Lookup(request(), snap)
		require.Equal(t, placed, fields(prev))
		outer.Save(request(), &http.Response{Header: http.Header{}}, snap.Lookup("a"), prev)
		assert.Equal(t, []policy.Binding{none}, fs[2].saved, "the outer chain still knows its member")
		assert.Equal(t, []policy.Binding{placed}, fs[0].saved)
		assert.Equal(t, []policy.Binding{placed}, fs[1].saved)
	})
}

func TestChainAppCookieAndKey(t *testing.T) {
	set := newSet(t)
	snap := set.Snapshot()
	app := newAppCookie(t, [][]byte{key1})
	header, err := policy.HeaderKey("X-Client")
	require.NoError(t, err)
	ch := newChain(t, app, header)

	// Placed by its key; the application logs the client in.
	r := ipRequest("192.0.2.1:1", "X-Client: c-42")
	prev := ch.Lookup(r, snap)
	require.Equal(t, keyed("c-42"), fields(prev))
	resp := &http.Response{Header: http.Header{"Set-Cookie": {"PHPSESSID=s1; Max-Age=60"}}}
	ch.Save(r, resp, snap.Lookup("b"), prev)
	lines := resp.Header.Values("Set-Cookie")
	require.Len(t, lines, 2)
	ck, err := http.ParseSetCookie(lines[1])
	require.NoError(t, err)

	// From now on the cookie binds it, key or not.
	r2 := ipRequest("192.0.2.1:1", "Cookie: "+ck.String(), "X-Client: c-42")
	assert.Equal(t, policy.Binding{ID: "b", Status: policy.Valid}, fields(ch.Lookup(r2, snap)))
}

func TestNewChainErrors(t *testing.T) {
	lb := newCookie(t, [][]byte{key1})
	var nilCookie *cookie.Policy
	var nilKey *policy.Key
	var nilFake *fake // a nil pointer of a policy type of the user's
	many := make([]policy.Policy, 200)
	for i := range many {
		many[i] = lb
	}
	tests := []struct {
		name     string
		policies []policy.Policy
		wantErr  string
	}{
		{"empty", nil, "empty chain"},
		{"nil", []policy.Policy{lb, nil}, "chain member 1 is nil"},
		{"nil Cookie", []policy.Policy{nilCookie}, "chain member 0 is nil"},
		{"nil Key", []policy.Policy{lb, nilKey}, "chain member 1 is nil"},
		{"nil policy of the user's", []policy.Policy{lb, lb, nilFake}, "chain member 2 is nil"},
		{"too long once flattened", []policy.Policy{newChain(t, many...), newChain(t, many...)}, "chain of 400 policies; at most 255"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := policy.NewChain(tt.policies...)
			assert.Nil(t, c)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantErr)
			assert.True(t, strings.HasPrefix(err.Error(), "policy: "), err.Error())
		})
	}
}

func TestChainConcurrent(t *testing.T) {
	set := newSet(t)
	app := newAppCookie(t, [][]byte{key2, key1})
	header, err := policy.HeaderKey("X-Client")
	require.NoError(t, err)
	ch := newChain(t, app, header, newClientIPKey(t, "10.0.0.0/8"))
	old := newCookie(t, [][]byte{key1})
	requests := []*http.Request{
		ipRequest("10.0.0.1:1", "Cookie: affinity="+old.Issue("a")),
		ipRequest("10.0.0.1:1", "X-Client: c-42"),
		ipRequest("10.0.0.1:1", "X-Forwarded-For: 203.0.113.7"),
		ipRequest("192.0.2.1:1", "Cookie: affinity=garbage"),
	}

	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() { // membership churn: d comes and goes
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := set.Add(backend.Config{ID: "d", URL: "http://127.0.0.1:4"}); err == nil {
				_, _ = set.Remove("d")
			}
		}
	})
	var clients sync.WaitGroup
	for g := range 8 {
		clients.Go(func() {
			for i := range 300 {
				r := requests[(g+i)%len(requests)]
				snap := set.Snapshot()
				prev := ch.Lookup(r, snap)
				if prev.Status != policy.Valid && prev.Status != policy.Keyed && prev.Status != policy.Malformed {
					t.Errorf("lookup: %v", prev.Status)
					return
				}
				resp := &http.Response{Header: http.Header{"Set-Cookie": {"PHPSESSID=s; Max-Age=60"}}}
				ch.Save(r, resp, snap.Backends()[i%3], prev)
			}
		})
	}
	clients.Wait()
	close(stop)
	wg.Wait()
}

// unseeded returns b without its Seed, which these tests do not spell out.
func unseeded(b policy.Binding) policy.Binding {
	b.Seed = 0
	return b
}
