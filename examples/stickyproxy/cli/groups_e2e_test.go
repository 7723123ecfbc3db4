package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/internal/demoapp"
)

// groupBackends starts a demo app for each GROUP:NAME item and returns
// the value of -backends that reaches them.
func groupBackends(t *testing.T, items ...string) string {
	t.Helper()
	var list []string
	for _, item := range items {
		_, name, _ := strings.Cut(item, ":")
		srv := httptest.NewServer(demoapp.New(name))
		t.Cleanup(srv.Close)
		list = append(list, item+"="+srv.URL)
	}
	return strings.Join(list, ",")
}

func TestRunExitStatusGroups(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		stderr string // the whole of it
	}{
		{"bad group in -backends", []string{"-backends", "bl ue:b1=http://127.0.0.1:1"}, `stickyproxy: invalid value "bl ue:b1=http://127.0.0.1:1" for -backends: `},
		{"a group without a name", []string{"-backends", "blue:=http://127.0.0.1:1"}, `stickyproxy: invalid value "blue:=http://127.0.0.1:1" for -backends: backend "blue:=http://127.0.0.1:1": empty name` + "\n"},
		{"-group-weights out of range", []string{"-group-weights", "blue=2000"}, `stickyproxy: invalid value "blue=2000" for -group-weights: weight "2000" of group "blue": want 0 to 1000` + "\n"},
		{"-group-weights not GROUP=W", []string{"-group-weights", "blue"}, `stickyproxy: invalid value "blue" for -group-weights: "blue" is not GROUP=WEIGHT` + "\n"},
		{"-group-weights twice", []string{"-group-weights", "a=1,a=1"}, `stickyproxy: invalid value "a=1,a=1" for -group-weights: group "a" is given twice` + "\n"},
		{"-group-weights bad name", []string{"-group-weights", "a/b=1"}, `stickyproxy: invalid value "a/b=1" for -group-weights: `},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			status := run(ctx, append([]string{"-key", testKey}, tt.args...), &stdout, &stderr, func(listening) { t.Error("proxy started") })
			assert.Equal(t, 2, status)
			if strings.HasSuffix(tt.stderr, "\n") {
				assert.Equal(t, tt.stderr, stderr.String())
			} else {
				assert.True(t, strings.HasPrefix(stderr.String(), tt.stderr), "stderr %q", stderr.String())
			}
			assert.Equal(t, 1, strings.Count(stderr.String(), "\n"), "one line: %q", stderr.String())
			assert.Empty(t, stdout.String())
		})
	}
}

// TestEndToEndGroupsAdmin runs the proxy with groups and checks the admin
// API over its socket: the groups, a backend's group, a weight changed.
func TestEndToEndGroupsAdmin(t *testing.T) {
	p := startProxy(t, "-key", testKey, "-admin", "127.0.0.1:0",
		"-backends", groupBackends(t, "blue:b1", "blue:b2", "green:g1"),
		"-group-weights", "blue=100,green=0,canary=0")
	assert.Contains(t, p.stdout.String(), "(group blue)")
	assert.Contains(t, p.stdout.String(), "groups:\n  blue         weight 100\n  canary       weight 0\n  green        weight 0\n")

	status, body := callAdmin(t, p, http.MethodGet, "/groups", "")
	require.Equal(t, http.StatusOK, status, body)
	assert.JSONEq(t, `[{"name":"blue","weight":100,"backends":["b1","b2"]},{"name":"canary","weight":0,"backends":[]},{"name":"green","weight":0,"backends":["g1"]}]`, body)

	var groups []string
	for _, b := range listBackends(t, p) {
		groups = append(groups, b.ID+":"+b.Group)
	}
	assert.Equal(t, []string{"b1:blue", "b2:blue", "g1:green"}, groups)

	tests := []struct {
		method, path, body string
		status             int
		want               string // the body, JSON, or in the error
	}{
		{http.MethodPut, "/groups/green", `{"weight":10}`, 200, `{"name":"green","weight":10,"backends":["g1"]}`},
		{http.MethodPut, "/groups/blue", `{"weight":90}`, 200, `{"name":"blue","weight":90,"backends":["b1","b2"]}`},
		{http.MethodPut, "/groups/red", `{"weight":10}`, 404, `no such group "red"`},
		{http.MethodPut, "/groups/green", `{"weight":1001}`, 400, "invalid weight 1001: want 0 to 1000"},
		{http.MethodPut, "/groups/green", `{"weight":"x"}`, 400, "invalid request body"},
		{http.MethodGet, "/groups/green", "", 200, `{"name":"green","weight":10,"backends":["g1"]}`},
		{http.MethodGet, "/groups/", "", 404, `no such group ""`},
	}
	for _, tt := range tests {
		status, body := callAdmin(t, p, tt.method, tt.path, tt.body)
		require.Equal(t, tt.status, status, "%s %s: %s", tt.method, tt.path, body)
		if status == http.StatusOK {
			assert.JSONEq(t, tt.want, body)
		} else {
			var e struct{ Error string }
			require.NoError(t, json.Unmarshal([]byte(body), &e))
			assert.Contains(t, e.Error, tt.want)
		}
	}

	status, body = callAdmin(t, p, http.MethodGet, "/config", "")
	require.Equal(t, http.StatusOK, status)
	assert.Contains(t, body, `"groups":[{"name":"blue","weight":90,"backends":["b1","b2"]},{"name":"canary","weight":0,"backends":[]},{"name":"green","weight":10,"backends":["g1"]}]`)
	status, body = callAdmin(t, p, http.MethodGet, "/", "")
	require.Equal(t, http.StatusOK, status)
	assert.Contains(t, body, "<th>Group green</th><td>weight 10; backends g1</td>")
}

// TestEndToEndAccessLogGroup checks that each access line names the
// group of the backend that served the request, empty for the default.
func TestEndToEndAccessLogGroup(t *testing.T) {
	p := startProxy(t, "-key", testKey, "-access-log", "-log-level", "error",
		"-backends", groupBackends(t, "blue:b1")+","+demoBackends(t, "d1"))
	served := map[string]bool{}
	for i := 0; i < 8 && len(served) < 2; i++ {
		r := do(t, newPlainClient(t), get(t, p.url+"/whoami"))
		require.Equal(t, http.StatusOK, r.status)
		served[r.body] = true
	}
	require.Len(t, served, 2, "new clients reached both groups")
	groups := map[string]string{}
	for _, l := range waitAccessLines(t, p, len(served)) {
		groups[l["backend"]] = l["group"]
	}
	assert.Equal(t, map[string]string{"b1": "blue", "d1": `""`}, groups, "slog quotes an empty value")
}
