package backend_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/internal/accounting"
)

// manyMetadata returns n metadata entries.
func manyMetadata(n int) map[string]string {
	m := make(map[string]string, n)
	for i := range n {
		m["k"+strconv.Itoa(i)] = "v"
	}
	return m
}

func TestMetadata(t *testing.T) {
	meta := map[string]string{"zone": "eu-west", "rack": "r7"}
	set, err := backend.NewSet([]backend.Config{
		{ID: "a", URL: "http://10.0.0.1", Metadata: meta},
		{ID: "b", URL: "http://10.0.0.2"},
		{ID: "c", URL: "http://10.0.0.3", Metadata: map[string]string{
			strings.Repeat("k", 64): strings.Repeat("v", 256), // the largest sizes
		}},
		{ID: "d", URL: "http://10.0.0.4", Metadata: manyMetadata(64)},
	})
	require.NoError(t, err)
	snap := set.Snapshot()
	a, b := snap.Lookup("a"), snap.Lookup("b")

	meta["zone"] = "us-east" // the caller's map is the caller's
	delete(meta, "rack")
	assert.Equal(t, "eu-west", a.Metadata("zone"))
	assert.Equal(t, "r7", a.Metadata("rack"))
	assert.Empty(t, a.Metadata("absent"))
	assert.Empty(t, b.Metadata("zone"), "no metadata")
	assert.Equal(t, strings.Repeat("v", 256), snap.Lookup("c").Metadata(strings.Repeat("k", 64)))
	assert.Equal(t, "v", snap.Lookup("d").Metadata("k63"))

	assert.Zero(t, testing.AllocsPerRun(100, func() {
		_ = a.Metadata("zone")
		_ = b.Metadata("zone")
	}))
}

// Set.Update with other metadata for a backend keeps the backend, with its
// state and requests in flight, and replaces its metadata whole, in a new
// snapshot.
func TestUpdateMetadata(t *testing.T) {
	cfg := func(meta map[string]string) []backend.Config {
		return []backend.Config{{ID: "a", URL: "http://10.0.0.1", Metadata: meta}}
	}
	set, err := backend.NewSet(cfg(map[string]string{"zone": "eu", "rack": "r1"}))
	require.NoError(t, err)
	old := set.Snapshot()
	a := old.Lookup("a")
	require.NoError(t, set.SetState("a", backend.Draining))
	require.True(t, accounting.Acquire(a))
	t.Cleanup(func() { accounting.Release(a) })
	v := set.Snapshot().Version()

	require.NoError(t, set.Update(cfg(map[string]string{"zone": "us"})))
	snap := set.Snapshot()
	assert.Same(t, a, snap.Lookup("a"), "the backend was replaced")
	assert.Greater(t, snap.Version(), v, "no new snapshot")
	assert.Equal(t, backend.Draining, a.State())
	assert.Equal(t, int64(1), a.InFlight())
	assert.Equal(t, "us", a.Metadata("zone"))
	assert.Empty(t, a.Metadata("rack"), "the old metadata was merged, not replaced")

	v = snap.Version()
	require.NoError(t, set.Update(cfg(map[string]string{"zone": "us"})))
	assert.Equal(t, v, set.Snapshot().Version(), "the same metadata made a change")

	require.NoError(t, set.Update(cfg(nil)))
	assert.Same(t, a, set.Snapshot().Lookup("a"))
	assert.Empty(t, a.Metadata("zone"))

	err = set.Update(cfg(map[string]string{"": "x"}))
	require.ErrorContains(t, err, "empty metadata key")
	assert.Empty(t, a.Metadata(""), "an invalid update changed the metadata")
}
