package cli

import (
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
)

func TestParseFlagsGroupWeightsAllZero(t *testing.T) {
	const warning = "-group-weights: every group weighs 0, so none takes new clients: they go to any backend"
	for _, tt := range []struct {
		name string
		args []string
		warn bool
	}{
		{"every group 0", []string{"-backends", "blue:b1=http://127.0.0.1:1,green:g1=http://127.0.0.1:2", "-group-weights", "blue=0,green=0"}, true},
		{"a group left at its default 1", []string{"-backends", "blue:b1=http://127.0.0.1:1,green:g1=http://127.0.0.1:2", "-group-weights", "blue=0"}, false},
		{"one group above 0", []string{"-backends", "blue:b1=http://127.0.0.1:1,green:g1=http://127.0.0.1:2", "-group-weights", "blue=0,green=1"}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseFlags(append([]string{"-policy", "ip"}, tt.args...), nil)
			require.NoError(t, err)
			assert.Equal(t, tt.warn, slices.Contains(cfg.warnings, warning), "warnings: %q", cfg.warnings)
		})
	}
}

func TestParseFlagsGroupWeights(t *testing.T) {
	tests := []struct {
		name string
		list string
		want map[string]int
		err  string // the whole error; "" for none
	}{
		{name: "two groups", list: "blue=90,green=10", want: map[string]int{"blue": 90, "green": 10}},
		{name: "spaces and blank items", list: " blue = 100 , ,green=0,", want: map[string]int{"blue": 100, "green": 0}},
		{name: "the default group", list: "=3,canary=1", want: map[string]int{"": 3, "canary": 1}},
		{name: "bounds", list: "a=0,b=1000", want: map[string]int{"a": 0, "b": 1000}},
		{name: "a group with no backend", list: "nobody=5", want: map[string]int{"nobody": 5}},

		{name: "over 1000", list: "blue=1001", err: `invalid value "blue=1001" for -group-weights: weight "1001" of group "blue": want 0 to 1000`},
		{name: "negative", list: "blue=-1", err: `invalid value "blue=-1" for -group-weights: weight "-1" of group "blue": want 0 to 1000`},
		{name: "not a number", list: "blue=half", err: `invalid value "blue=half" for -group-weights: weight "half" of group "blue": want 0 to 1000`},
		{name: "no weight", list: "blue", err: `invalid value "blue" for -group-weights: "blue" is not GROUP=WEIGHT`},
		{name: "given twice", list: "blue=1,blue=2", err: `invalid value "blue=1,blue=2" for -group-weights: group "blue" is given twice`},
		{name: "empty", list: " , ", err: `invalid value " , " for -group-weights: no weights`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseFlags([]string{"-policy", "ip", "-group-weights", tt.list}, nil)
			if tt.err != "" {
				require.Error(t, err)
				assert.Equal(t, tt.err, err.Error())
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, cfg.groupWeights)
		})
	}

	t.Run("a bad group name", func(t *testing.T) {
		_, err := parseFlags([]string{"-policy", "ip", "-group-weights", "bl ue=1"}, nil)
		require.Error(t, err)
		assert.True(t, strings.HasPrefix(err.Error(), `invalid value "bl ue=1" for -group-weights: `), err.Error())
		assert.Contains(t, err.Error(), `"bl ue"`)
		assert.NotContains(t, err.Error(), "\n")
	})
	t.Run("absent", func(t *testing.T) {
		cfg, err := parseFlags([]string{"-policy", "ip"}, nil)
		require.NoError(t, err)
		assert.Nil(t, cfg.groupWeights, "every group weighs 1")
	})
}

// newGroupsAdmin returns a set of b1 and b2 in group blue, g1 in green
// and d1 in the default group, with blue weighing 90 and canary, which
// has no backend, 0, and the admin API over it.
func newGroupsAdmin(t *testing.T, opts adminOptions) (*backend.Set, http.Handler) {
	t.Helper()
	set, err := backend.NewSet([]backend.Config{
		{ID: "b1", Group: "blue", URL: "http://127.0.0.1:9001"},
		{ID: "g1", Group: "green", URL: "http://127.0.0.1:9002"},
		{ID: "b2", Group: "blue", URL: "http://127.0.0.1:9003"},
		{ID: "d1", URL: "http://127.0.0.1:9004"},
	}, backend.WithGroupWeights(map[string]int{"blue": 90, "canary": 0}))
	require.NoError(t, err)
	return set, newAdmin(set, newMetrics(t, set), slog.New(slog.DiscardHandler), opts)
}

const groupsJSONBody = `[{"name":"","weight":1,"backends":["d1"]},{"name":"blue","weight":90,"backends":["b1","b2"]},` +
	`{"name":"canary","weight":0,"backends":[]},{"name":"green","weight":1,"backends":["g1"]}]`

func TestAdminGroups(t *testing.T) {
	tests := []struct {
		name         string
		method, path string
		body         string
		status       int
		want         string         // under 400: the JSON body, if not ""; else: the error message
		allow        string         // the Allow header
		weights      map[string]int // the groups' weights afterwards, if not nil
	}{
		{name: "list", method: "GET", path: "/groups", status: 200, want: groupsJSONBody},
		{name: "list, HEAD", method: "HEAD", path: "/groups", status: 200},
		{name: "get", method: "GET", path: "/groups/blue", status: 200, want: `{"name":"blue","weight":90,"backends":["b1","b2"]}`},
		{name: "get the default group", method: "GET", path: "/groups/", status: 200, want: `{"name":"","weight":1,"backends":["d1"]}`},
		{name: "get a group with a weight and no backend", method: "GET", path: "/groups/canary", status: 200, want: `{"name":"canary","weight":0,"backends":[]}`},
		{name: "get unknown", method: "GET", path: "/groups/red", status: 404, want: `no such group "red": it has no backend and no weight set`},

		{
			name: "set", method: "PUT", path: "/groups/green", body: `{"weight":10}`,
			status: 200, want: `{"name":"green","weight":10,"backends":["g1"]}`,
			weights: map[string]int{"": 1, "blue": 90, "canary": 0, "green": 10},
		},
		{
			name: "set to 0", method: "PUT", path: "/groups/blue", body: `{"weight":0}`,
			status: 200, want: `{"name":"blue","weight":0,"backends":["b1","b2"]}`,
			weights: map[string]int{"": 1, "blue": 0, "canary": 0, "green": 1},
		},
		{
			name: "set to 1000", method: "PUT", path: "/groups/canary", body: `{"weight":1000}`,
			status: 200, want: `{"name":"canary","weight":1000,"backends":[]}`,
			weights: map[string]int{"": 1, "blue": 90, "canary": 1000, "green": 1},
		},
		{
			name: "set the default group's", method: "PUT", path: "/groups/", body: `{"weight":5}`,
			status: 200, want: `{"name":"","weight":5,"backends":["d1"]}`,
			weights: map[string]int{"": 5, "blue": 90, "canary": 0, "green": 1},
		},
		{name: "set unknown", method: "PUT", path: "/groups/red", body: `{"weight":10}`, status: 404, want: `no such group "red": it has no backend and no weight set`},
		{name: "set over 1000", method: "PUT", path: "/groups/green", body: `{"weight":1001}`, status: 400, want: "invalid weight 1001: want 0 to 1000"},
		{name: "set negative", method: "PUT", path: "/groups/green", body: `{"weight":-1}`, status: 400, want: "invalid weight -1: want 0 to 1000"},
		{name: "set without a weight", method: "PUT", path: "/groups/green", body: `{}`, status: 400, want: `no weight: want {"weight": N}, N from 0 to 1000`},
		{name: "set a fraction", method: "PUT", path: "/groups/green", body: `{"weight":1.5}`, status: 400, want: "invalid request body: json: cannot unmarshal number 1.5"},
		{name: "set a string", method: "PUT", path: "/groups/green", body: `{"weight":"10"}`, status: 400, want: "invalid request body: json: cannot unmarshal string"},
		{name: "set with an unknown field", method: "PUT", path: "/groups/green", body: `{"weight":10,"name":"x"}`, status: 400, want: `invalid request body: json: unknown field "name"`},
		{name: "set with no body", method: "PUT", path: "/groups/green", status: 400, want: "empty request body: want a JSON object"},
		{name: "set with two values", method: "PUT", path: "/groups/green", body: `{"weight":1}{"weight":2}`, status: 400, want: "invalid request body: more than one JSON value"},

		{name: "POST /groups", method: "POST", path: "/groups", body: `{}`, status: 405, want: "method POST not allowed on /groups; allowed: GET, HEAD", allow: "GET, HEAD"},
		{name: "DELETE /groups/{name}", method: "DELETE", path: "/groups/blue", status: 405, want: "method DELETE not allowed on /groups/blue; allowed: GET, HEAD, PUT", allow: "GET, HEAD, PUT"},
		{name: "POST /groups/", method: "POST", path: "/groups/", status: 405, want: "method POST not allowed on /groups/; allowed: GET, HEAD, PUT", allow: "GET, HEAD, PUT"},
		{name: "below a group", method: "GET", path: "/groups/blue/x", status: 404, want: `no such path "/groups/blue/x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, h := newGroupsAdmin(t, adminOptions{})
			rec := adminDo(h, tt.method, tt.path, tt.body)
			require.Equal(t, tt.status, rec.Code, rec.Body.String())
			assert.Equal(t, tt.allow, rec.Header().Get("Allow"))
			if tt.status >= 400 {
				assertJSONError(t, rec, tt.want)
				assert.NotContains(t, strings.TrimSuffix(rec.Body.String(), "\n"), "\n", "one line")
			} else if tt.want != "" {
				assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
				assert.JSONEq(t, tt.want, rec.Body.String())
			}
			if tt.weights != nil {
				got := map[string]int{}
				for _, g := range set.Snapshot().Groups() {
					got[g.Name] = g.Weight
				}
				assert.Equal(t, tt.weights, got)
			}
		})
	}
}

// TestAdminGroupsGuarded checks that the groups' endpoints are behind the
// same guards as the others: the Host, the token and the origin.
func TestAdminGroupsGuarded(t *testing.T) {
	const token = "s3cret-token"
	tests := []struct {
		name   string
		opts   adminOptions
		method string
		path   string
		header []string
		status int
	}{
		{"another host", adminOptions{}, "GET", "/groups", []string{"Host", "evil.example"}, http.StatusMisdirectedRequest},
		{"another host, PUT", adminOptions{}, "PUT", "/groups/blue", []string{"Host", "evil.example"}, http.StatusMisdirectedRequest},
		{"no token", adminOptions{token: []byte(token)}, "GET", "/groups", nil, http.StatusUnauthorized},
		{"no token, PUT", adminOptions{token: []byte(token)}, "PUT", "/groups/blue", nil, http.StatusUnauthorized},
		{"wrong token", adminOptions{token: []byte(token)}, "PUT", "/groups/blue", []string{"Authorization", "Bearer nope"}, http.StatusUnauthorized},
		{"the token", adminOptions{token: []byte(token)}, "PUT", "/groups/blue", []string{"Authorization", "Bearer " + token}, http.StatusOK},
		{"cross-origin PUT", adminOptions{}, "PUT", "/groups/blue", []string{"Sec-Fetch-Site", "cross-site"}, http.StatusForbidden},
		{"a membership source: still allowed", adminOptions{sourced: true}, "PUT", "/groups/blue", nil, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, h := newGroupsAdmin(t, tt.opts)
			rec := adminDo(h, tt.method, tt.path, `{"weight":7}`, tt.header...)
			assert.Equal(t, tt.status, rec.Code, rec.Body.String())
			want := 90
			if tt.status == http.StatusOK {
				want = 7
			}
			for _, g := range set.Snapshot().Groups() {
				if g.Name == "blue" {
					assert.Equal(t, want, g.Weight)
				}
			}
		})
	}
}

func TestAdminBackendsGroup(t *testing.T) {
	set, h := newGroupsAdmin(t, adminOptions{})
	rec := adminDo(h, "GET", "/backends/g1", "")
	require.Equal(t, http.StatusOK, rec.Code)
	assert.JSONEq(t, `{"id":"g1","url":"http://127.0.0.1:9002","group":"green","state":"healthy","weight":1,"inflight":0,"requests":0}`, rec.Body.String())

	tests := []struct {
		name   string
		body   string
		status int
		want   string // 201: the group added to; else: in the error
	}{
		{"into a group", `{"url":"http://127.0.0.1:9005","id":"g2","group":"green"}`, 201, "green"},
		{"into a new group", `{"url":"http://127.0.0.1:9006","id":"r1","group":"red"}`, 201, "red"},
		{"into the default group", `{"url":"http://127.0.0.1:9007","id":"d2"}`, 201, ""},
		{"a bad group", `{"url":"http://127.0.0.1:9008","id":"x1","group":"bad group"}`, 400, `"bad group"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := adminDo(h, "POST", "/backends", tt.body)
			require.Equal(t, tt.status, rec.Code, rec.Body.String())
			if tt.status != http.StatusCreated {
				assertJSONError(t, rec, tt.want)
				return
			}
			assert.Contains(t, rec.Body.String(), `"group":"`+tt.want+`"`)
		})
	}
	// The new group is known now: its weight may be set.
	rec = adminDo(h, "PUT", "/groups/red", `{"weight":0}`)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.JSONEq(t, `{"name":"red","weight":0,"backends":["r1"]}`, rec.Body.String())
	assert.Len(t, set.Snapshot().Backends(), 7)
}

// TestGroupsOnStatusPage checks that the status page and GET /config show
// the groups with their weights as they are now.
func TestGroupsOnStatusPage(t *testing.T) {
	cfg, err := parseFlags([]string{"-policy", "ip"}, nil)
	require.NoError(t, err)
	_, h := newGroupsAdmin(t, adminOptions{config: newRunningConfig(cfg, time.Now())})
	rec := adminDo(h, "PUT", "/groups/green", `{"weight":10}`)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())

	rec = adminDo(h, "GET", "/", "")
	require.Equal(t, http.StatusOK, rec.Code)
	for _, row := range []string{
		"<th>Group (default)</th><td>weight 1; backends d1</td>",
		"<th>Group blue</th><td>weight 90; backends b1, b2</td>",
		"<th>Group canary</th><td>weight 0 (no new clients); no backends</td>",
		"<th>Group green</th><td>weight 10; backends g1</td>",
	} {
		assert.Contains(t, rec.Body.String(), row)
	}

	rec = adminDo(h, "GET", "/config", "")
	require.Equal(t, http.StatusOK, rec.Code)
	assert.Contains(t, rec.Body.String(), `"groups":[{"name":"","weight":1,"backends":["d1"]},{"name":"blue","weight":90,"backends":["b1","b2"]},{"name":"canary","weight":0,"backends":[]},{"name":"green","weight":10,"backends":["g1"]}]`)

	rec = adminDo(h, "GET", "/?format=json", "")
	require.Equal(t, http.StatusOK, rec.Code)
	assert.Contains(t, rec.Body.String(), `{"name":"green","weight":10,"backends":["g1"]}`)
}
