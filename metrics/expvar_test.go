package metrics

import (
	"encoding/json"
	"expvar"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/event"
)

func TestExpvar(t *testing.T) {
	set := newSet(t, "a", "b")
	r := newRecorder(t, set)
	r.Observe(ev(event.Pick, "a", ""))
	r.Observe(ev(event.Redispatch, "b", "a"))
	r.Observe(event.Event{Kind: event.Rejected, Reason: event.Expired})
	r.Observe(event.Event{Kind: event.StateChange, Backend: "b", To: backend.Draining})

	var got map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.Expvar().String()), &got))
	assert.ElementsMatch(t, []string{"backends", "fail_open", "rejected_bindings", "drain_ends", "panics", "untracked_events"}, keys(got))
	backends := got["backends"].(map[string]any)
	require.ElementsMatch(t, []string{"a", "b"}, keys(backends))
	a, b := backends["a"].(map[string]any), backends["b"].(map[string]any)
	assert.Equal(t, "http://127.0.0.1:1", a["url"])
	assert.Equal(t, "healthy", a["state"])
	assert.Equal(t, 1.0, a["picks"])
	assert.Equal(t, 1.0, a["redispatches_from"])
	assert.Equal(t, 1.0, b["redispatches_to"])
	assert.Equal(t, map[string]any{"healthy": 0.0, "unhealthy": 0.0, "draining": 1.0}, b["state_changes"])
	assert.Equal(t, 1.0, got["rejected_bindings"].(map[string]any)["expired"])

	assert.Equal(t, r.Expvar().String(), r.Expvar().String(), "deterministic")
}

func TestNothingPublished(t *testing.T) {
	newRecorder(t, newSet(t, "a")).Expvar()
	expvar.Do(func(kv expvar.KeyValue) {
		assert.NotContains(t, strings.ToLower(kv.Key), "affinity", "the caller publishes, not the package")
	})
}
