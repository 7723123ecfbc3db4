package cookie

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
)

// countingToken returns a token function computing real tokens under keys,
// and a pointer to the number of times it was called.
func countingToken(t *testing.T, keys ...[]byte) (func(int, string) uint64, *int) {
	t.Helper()
	s, err := newSigner(keys, "affinity")
	require.NoError(t, err)
	n := new(int)
	return func(k int, id string) uint64 {
		*n++
		return s.token(k, id)
	}, n
}

func bigSet(t *testing.T, n int) *backend.Set {
	t.Helper()
	cfgs := make([]backend.Config, n)
	for i := range cfgs {
		cfgs[i] = backend.Config{ID: fmt.Sprintf("b%d", i), URL: fmt.Sprintf("http://10.0.%d.%d:80", i/256, i%256)}
	}
	set, err := backend.NewSet(cfgs)
	require.NoError(t, err)
	return set
}

// noGroupToken is the group token function of a set without named groups:
// it is never called.
func noGroupToken(t *testing.T) func(k int, group string) uint64 {
	return func(k int, group string) uint64 {
		t.Errorf("group token of %q computed for a set without named groups", group)
		return 0
	}
}

func TestBuildIndexIsIncremental(t *testing.T) {
	const n = 10_000
	keys := [][]byte{[]byte("0123456789abcdef"), []byte("fedcba9876543210")}
	token, calls := countingToken(t, keys...)
	set := bigSet(t, n)

	ix := buildIndex(nil, set.Snapshot(), len(keys), token, noGroupToken(t))
	require.Equal(t, n*len(keys), *calls, "first build computes every token")

	steps := []struct {
		name      string
		change    func() error
		wantCalls int
	}{
		{"add one", func() error { _, err := set.Add(backend.Config{ID: "new", URL: "http://10.1.0.1"}); return err }, len(keys)},
		{"remove one", func() error { _, err := set.Remove("b17"); return err }, 0},
		{"change state", func() error { return set.SetState("b18", backend.Draining) }, 0},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			require.NoError(t, st.change())
			*calls = 0
			s := set.Snapshot()
			ix = buildIndex(ix, s, len(keys), token, noGroupToken(t))
			assert.Equal(t, st.wantCalls, *calls)
			assert.Same(t, s, ix.snap)
			assert.Len(t, ix.members, len(s.Backends()), "tokens are pruned to the members")
			for k := range keys {
				assert.Len(t, ix.byToken[k], len(s.Backends()))
			}
			for _, b := range []*backend.Backend{s.Backends()[0], s.Lookup("new")} {
				for k := range keys {
					e, ok := ix.resolve(k, token(k, b.ID()))
					assert.True(t, ok)
					assert.Equal(t, b.ID(), e.id)
				}
			}
		})
	}
	_, ok := ix.members["b17"]
	assert.False(t, ok, "a removed backend's tokens are dropped")
}

func TestBuildIndexCollision(t *testing.T) {
	set, err := backend.NewSet([]backend.Config{
		{ID: "a", URL: "http://127.0.0.1:1"},
		{ID: "b", URL: "http://127.0.0.1:2"},
		{ID: "c", URL: "http://127.0.0.1:3"},
	})
	require.NoError(t, err)
	// Under key 0, a and b collide; under key 1 nothing does.
	token := func(k int, id string) uint64 {
		if k == 0 && id != "c" {
			return 42
		}
		return uint64(k*100 + int(id[0]))
	}
	ix := buildIndex(nil, set.Snapshot(), 2, token, noGroupToken(t))

	_, ok := ix.resolve(0, 42)
	assert.False(t, ok, "a shared token resolves to neither backend")
	e, ok := ix.resolve(0, token(0, "c"))
	assert.True(t, ok)
	assert.Equal(t, "c", e.id)
	e, ok = ix.resolve(1, token(1, "a"))
	assert.True(t, ok)
	assert.Equal(t, "a", e.id)
}

// TestCookieIndexCarriesTokens checks that a Policy rebuilds its index from
// the previous one: a backend that stayed keeps the very token slice
// computed for it, rather than an equal one computed again.
func TestCookieIndexCarriesTokens(t *testing.T) {
	c, err := New([][]byte{[]byte("0123456789abcdef")})
	require.NoError(t, err)
	set := bigSet(t, 100)

	before := c.indexFor(set.Snapshot())
	assert.Same(t, before, c.indexFor(set.Snapshot()), "same snapshot, same index")

	_, err = set.Add(backend.Config{ID: "new", URL: "http://10.1.0.1"})
	require.NoError(t, err)
	after := c.indexFor(set.Snapshot())
	require.NotSame(t, before, after)
	assert.Same(t, before.members["b5"], after.members["b5"])
	assert.Contains(t, after.members, "new")
}
