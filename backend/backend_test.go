package backend_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/internal/accounting"
)

func TestConfigInvalid(t *testing.T) {
	longID := strings.Repeat("x", 65)
	tests := []struct {
		name string
		cfg  backend.Config
		want []string // substrings of the error: what is wrong, and the value
	}{
		{"empty URL", backend.Config{ID: "a"}, []string{"empty URL"}},
		{"unparsable URL", backend.Config{URL: "http://h:port"}, []string{`"http://h:port"`}},
		{"bad scheme", backend.Config{URL: "ftp://h"}, []string{`"ftp://h"`, "scheme must be http, https or h2c"}},
		{"h2 is not h2c", backend.Config{URL: "h2://h"}, []string{`"h2://h"`, "scheme"}},
		{"h2c without host", backend.Config{URL: "h2c:///svc"}, []string{`"h2c:///svc"`, "no host"}},
		{"no scheme", backend.Config{URL: "10.0.0.1:80"}, []string{`"10.0.0.1:80"`}},
		{"no host", backend.Config{URL: "http:///path"}, []string{`"http:///path"`, "no host"}},
		{"port only", backend.Config{URL: "http://:80"}, []string{`"http://:80"`, "no host"}},
		{"user info", backend.Config{URL: "http://joe@h"}, []string{`"http://joe@h"`, "user info"}},
		{"query", backend.Config{URL: "http://h/?a=1"}, []string{`"http://h/?a=1"`, "query"}},
		{"empty query", backend.Config{URL: "http://h/?"}, []string{`"http://h/?"`, "query"}},
		{"fragment", backend.Config{URL: "http://h/#top"}, []string{`"http://h/#top"`, "fragment"}},
		{"port 0", backend.Config{URL: "http://h:0"}, []string{`"http://h:0"`, `port "0"`}},
		{"port 70000", backend.Config{URL: "http://h:70000"}, []string{`"http://h:70000"`, `port "70000"`}},
		{"ID with space", backend.Config{ID: "app 1", URL: "http://h"}, []string{`"app 1"`, `' '`}},
		{"ID with slash", backend.Config{ID: "a/b", URL: "http://h"}, []string{`"a/b"`, `'/'`}},
		{"ID not ASCII", backend.Config{ID: "café", URL: "http://h"}, []string{`"café"`, `'é'`}},
		{"ID too long", backend.Config{ID: longID, URL: "http://h"}, []string{`"xxxxxxxxxxxxxxxx"...`, "longer than 64"}},
		{"weight -1", backend.Config{ID: "a", URL: "http://h", Weight: -1}, []string{`a:`, "weight -1"}},
		{"weight above max", backend.Config{ID: "a", URL: "http://h", Weight: backend.MaxWeight + 1}, []string{`a:`, "weight 65537"}},
		{"metadata key empty", backend.Config{ID: "a", URL: "http://h", Metadata: map[string]string{"": "x"}}, []string{`a:`, "empty metadata key"}},
		{"metadata key too long", backend.Config{ID: "a", URL: "http://h", Metadata: map[string]string{strings.Repeat("k", 65): "x"}}, []string{`a:`, `"kkkkkkkkkkkkkkkk"...`, "longer than 64 bytes"}},
		{"metadata value too long", backend.Config{ID: "a", URL: "http://h", Metadata: map[string]string{"zone": strings.Repeat("v", 257)}}, []string{`a:`, `"zone"`, "longer than 256 bytes"}},
		{"too many metadata entries", backend.Config{ID: "a", URL: "http://h", Metadata: manyMetadata(65)}, []string{`a:`, "65 metadata entries, more than 64"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, err := backend.NewSet([]backend.Config{tt.cfg})
			require.Error(t, err)
			assert.Nil(t, set)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}

			var zero backend.Set
			b, err := zero.Add(tt.cfg)
			require.Error(t, err, "Add")
			assert.Nil(t, b)
			assert.Zero(t, len(zero.Snapshot().Backends()))
		})
	}
}

func TestConfigUserInfoRedacted(t *testing.T) {
	_, err := backend.NewSet([]backend.Config{{URL: "http://joe:s3cret@h"}})
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "s3cret")
}

func TestConfigValid(t *testing.T) {
	tests := []struct {
		name       string
		cfg        backend.Config
		wantURL    string
		wantWeight int64
	}{
		{"default weight", backend.Config{ID: "a", URL: "http://h"}, "http://h", 1},
		{"given weight", backend.Config{ID: "a", URL: "http://h", Weight: 7}, "http://h", 7},
		{"max weight", backend.Config{ID: "a", URL: "http://h", Weight: backend.MaxWeight}, "http://h", backend.MaxWeight},
		{"https with port and path", backend.Config{ID: "a", URL: "https://h:8443/api"}, "https://h:8443/api", 1},
		{"scheme and host lowercased", backend.Config{ID: "a", URL: "HTTP://Web.Example:80/Path"}, "http://web.example/Path", 1},
		{"default https port dropped", backend.Config{ID: "a", URL: "https://h:443/"}, "https://h", 1},
		{"IPv6 default port dropped", backend.Config{ID: "a", URL: "http://[::1]:80"}, "http://[::1]", 1},
		{"IPv6", backend.Config{ID: "a", URL: "http://[::1]:8080"}, "http://[::1]:8080", 1},
		{"h2c", backend.Config{ID: "a", URL: "H2C://Grpc.Example:50051/"}, "h2c://grpc.example:50051", 1},
		{"h2c default port dropped", backend.Config{ID: "a", URL: "h2c://h:80"}, "h2c://h", 1},
		{"h2c port 443 kept", backend.Config{ID: "a", URL: "h2c://h:443"}, "h2c://h:443", 1},
		{"longest ID", backend.Config{ID: strings.Repeat("x", 64), URL: "http://h"}, "http://h", 1},
		{"ID punctuation", backend.Config{ID: "a.B_9-z", URL: "http://h"}, "http://h", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, err := backend.NewSet([]backend.Config{tt.cfg})
			require.NoError(t, err)
			b := set.Snapshot().Lookup(tt.cfg.ID)
			require.NotNil(t, b)
			assert.Equal(t, tt.cfg.ID, b.ID())
			assert.Equal(t, tt.cfg.ID, b.String())
			assert.Equal(t, tt.wantURL, b.URL().String())
			assert.Equal(t, tt.wantWeight, b.Weight())
			assert.Equal(t, backend.Healthy, b.State())
			assert.True(t, set.Snapshot().TakesNew(b))
			assert.True(t, set.Snapshot().KeepsBound(b))
		})
	}
}

func TestDigestID(t *testing.T) {
	id := func(t *testing.T, url string) string {
		t.Helper()
		set, err := backend.NewSet([]backend.Config{{URL: url}})
		require.NoError(t, err)
		bs := set.Snapshot().Backends()
		require.Len(t, bs, 1)
		return bs[0].ID()
	}

	a := id(t, "http://10.0.0.1:8080")
	assert.Regexp(t, `^[0-9a-f]{12}$`, a)
	assert.Equal(t, a, id(t, "http://10.0.0.1:8080"), "same URL, second set")
	assert.NotEqual(t, a, id(t, "http://10.0.0.2:8080"), "different host")
	assert.NotEqual(t, a, id(t, "http://10.0.0.1:8080/api"), "different path")
	assert.Equal(t, id(t, "http://host:80"), id(t, "HTTP://Host:80"), "scheme and host case")
	for _, spelling := range []string{"http://h:80", "http://h/", "http://h:", "http://h:80/"} {
		assert.Equal(t, id(t, "http://h"), id(t, spelling), "spelling %q", spelling)
	}
	assert.NotEqual(t, id(t, "http://h:8080"), id(t, "h2c://h:8080"), "h2c and http to one address are two backends")
	assert.Equal(t, id(t, "h2c://h"), id(t, "h2c://h:80"), "h2c's default port")
}

func TestState(t *testing.T) {
	tests := []struct {
		state backend.State
		name  string
	}{
		{backend.Healthy, "healthy"},
		{backend.Unhealthy, "unhealthy"},
		{backend.Draining, "draining"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.name, tt.state.String())
			got, err := backend.ParseState(tt.name)
			require.NoError(t, err)
			assert.Equal(t, tt.state, got)
		})
	}

	assert.Equal(t, "State(7)", backend.State(7).String())
	for _, s := range []string{"", "Healthy", "up", "State(0)"} {
		_, err := backend.ParseState(s)
		if assert.Error(t, err, "ParseState(%q)", s) {
			assert.Contains(t, err.Error(), `"`+s+`"`)
		}
	}
}

func TestStateRouting(t *testing.T) {
	tests := []struct {
		state     backend.State
		routable  bool
		serving   bool
		acquireOK bool
	}{
		{backend.Healthy, true, true, true},
		{backend.Draining, false, true, true},
		{backend.Unhealthy, false, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.state.String(), func(t *testing.T) {
			// Failing closed, so that the snapshot's answers are the
			// state's alone.
			set, err := backend.NewSet([]backend.Config{{ID: "a", URL: "http://h"}}, backend.WithFailOpen(false))
			require.NoError(t, err)
			require.NoError(t, set.SetState("a", tt.state))
			snap := set.Snapshot()
			b := snap.Lookup("a")
			require.NotNil(t, b)
			assert.Equal(t, tt.state, b.State())
			assert.Equal(t, tt.routable, snap.TakesNew(b))
			assert.Equal(t, tt.serving, snap.KeepsBound(b))
			if assert.True(t, accounting.Acquire(b), "Acquire does not depend on state") {
				accounting.Release(b)
			}
		})
	}
}

func TestAcquireRelease(t *testing.T) {
	set, err := backend.NewSet([]backend.Config{{ID: "a", URL: "http://h"}})
	require.NoError(t, err)
	b := set.Snapshot().Lookup("a")
	require.NotNil(t, b)

	assert.Zero(t, b.InFlight())
	for range 3 {
		require.True(t, accounting.Acquire(b))
	}
	assert.Equal(t, int64(3), b.InFlight())
	accounting.Release(b)
	assert.Equal(t, int64(2), b.InFlight())

	removed, err := set.Remove("a")
	require.NoError(t, err)
	assert.Same(t, b, removed)
	assert.True(t, b.Removed())
	assert.False(t, accounting.Acquire(b), "Acquire after Remove")
	assert.Equal(t, int64(2), b.InFlight(), "a refused Acquire counts nothing")

	// Requests admitted before Remove finish normally.
	accounting.Release(b)
	accounting.Release(b)
	assert.Zero(t, b.InFlight())
}
