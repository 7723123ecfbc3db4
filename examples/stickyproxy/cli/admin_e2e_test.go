package cli

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/internal/demoapp"
)

// callAdmin sends method path with the JSON body to p's admin API, and
// returns the status and the body.
func callAdmin(t *testing.T, p *proxy, method, path, body string) (int, string) {
	t.Helper()
	require.NotEmpty(t, p.admin, "proxy started without -admin")
	req, err := http.NewRequest(method, p.admin+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	r := do(t, newPlainClient(t), req)
	return r.status, r.body
}

// listBackends returns GET /backends from p's admin API.
func listBackends(t *testing.T, p *proxy) []backendJSON {
	t.Helper()
	status, body := callAdmin(t, p, http.MethodGet, "/backends", "")
	require.Equal(t, http.StatusOK, status, body)
	var bs []backendJSON
	require.NoError(t, json.Unmarshal([]byte(body), &bs), body)
	return bs
}

// ids returns the IDs of bs, in order.
func ids(bs []backendJSON) []string {
	var out []string
	for _, b := range bs {
		out = append(out, b.ID)
	}
	return out
}

// stateOf returns the state GET /backends shows for id, or "" if it is not
// listed.
func stateOf(t *testing.T, p *proxy, id string) string {
	t.Helper()
	for _, b := range listBackends(t, p) {
		if b.ID == id {
			return b.State
		}
	}
	return ""
}

// newClientsReach sends GET path as n new clients, without cookies, and
// returns the servers that answered.
func newClientsReach(t *testing.T, p *proxy, path string, n int) []string {
	t.Helper()
	var servers []string
	for range n {
		r := do(t, newPlainClient(t), get(t, p.url+path))
		require.Equal(t, http.StatusOK, r.status)
		servers = append(servers, r.server)
	}
	return servers
}

func TestEndToEndAdmin(t *testing.T) {
	p := startProxy(t, "-key", testKey, "-admin", "127.0.0.1:0")
	assert.Contains(t, p.stdout.String(), "admin API on "+p.admin+" (curl -s "+p.admin+"/backends)")

	bs := listBackends(t, p)
	assert.Equal(t, []string{"app1", "app2", "app3"}, ids(bs))
	for _, b := range bs {
		assert.Equal(t, "healthy", b.State, b.ID)
		assert.True(t, strings.HasPrefix(b.URL, "http://127.0.0.1:"), b.URL)
	}

	// Alice: new clients until one lands on app1, where she logs in.
	var alice *http.Client
	for range 6 {
		c := newClient(t)
		if _, server, _ := send(t, c, p.url+"/", nil); server == "app1" {
			alice = c
			break
		}
	}
	require.NotNil(t, alice, "no new client placed on app1")
	send(t, alice, p.url+"/login", url.Values{"name": {"alice"}})
	aliceOnApp1 := func(when string) {
		t.Helper()
		_, _, body := send(t, alice, p.url+"/whoami", nil)
		require.Equal(t, "server=app1 user=alice\n", body, when)
	}
	aliceOnApp1("logged in")

	// Add app4: idle, least connections gives it one of the next 4 new
	// clients.
	app4 := httptest.NewServer(demoapp.New("app4"))
	t.Cleanup(app4.Close)
	status, body := callAdmin(t, p, http.MethodPost, "/backends", `{"id":"app4","url":"`+app4.URL+`"}`)
	require.Equal(t, http.StatusCreated, status, body)
	assert.JSONEq(t, `{"id":"app4","url":"`+app4.URL+`","group":"","state":"healthy","weight":1,"inflight":0,"requests":0}`, body)
	assert.Equal(t, []string{"app1", "app2", "app3", "app4"}, ids(listBackends(t, p)))
	assert.Contains(t, newClientsReach(t, p, "/whoami", 4), "app4")
	aliceOnApp1("after adding app4")

	status, body = callAdmin(t, p, http.MethodPost, "/backends", `{"id":"app4","url":"`+app4.URL+`"}`)
	assert.Equal(t, http.StatusConflict, status, body)

	// Remove it: gone at once.
	status, body = callAdmin(t, p, http.MethodDelete, "/backends/app4", "")
	require.Equal(t, http.StatusNoContent, status, body)
	assert.Equal(t, []string{"app1", "app2", "app3"}, ids(listBackends(t, p)))
	assert.NotContains(t, newClientsReach(t, p, "/whoami", 6), "app4")
	status, _ = callAdmin(t, p, http.MethodDelete, "/backends/app4", "")
	assert.Equal(t, http.StatusNotFound, status)
	aliceOnApp1("after removing app4")

	// Drain app2: it takes no new clients, and leaves after the timeout.
	status, body = callAdmin(t, p, http.MethodPost, "/backends/app2/drain", `{"timeout":"200ms"}`)
	require.Equal(t, http.StatusAccepted, status, body)
	var drained backendJSON
	require.NoError(t, json.Unmarshal([]byte(body), &drained))
	assert.Equal(t, "draining", drained.State)
	assert.NotContains(t, newClientsReach(t, p, "/whoami", 4), "app2")
	assert.Eventually(t, func() bool {
		return slices.Equal([]string{"app1", "app3"}, ids(listBackends(t, p)))
	}, 5*time.Second, 20*time.Millisecond, "app2 never left")
	status, body = callAdmin(t, p, http.MethodPost, "/backends/app2/drain", `{"timeout":"200ms"}`)
	assert.Equal(t, http.StatusNotFound, status, body)
	aliceOnApp1("after draining app2")

	require.Equal(t, 0, p.stop(t), "stderr:\n%s", p.stderr)
	logs := p.stderr.String()
	for _, want := range []string{"admin API listening", "admin: backend added", "admin: backend removed", "admin: backend draining", "backend drained"} {
		assert.Contains(t, logs, want)
	}
}

func TestEndToEndHealthChecks(t *testing.T) {
	var down atomic.Bool
	flakyApp := demoapp.New("flaky")
	flaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/whoami" && down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		flakyApp.ServeHTTP(w, r)
	}))
	t.Cleanup(flaky.Close)
	p := startProxy(t,
		"-key", testKey,
		"-backends", "flaky="+flaky.URL+","+demoBackends(t, "steady"),
		"-health-path", "/whoami",
		"-health-interval", "50ms",
		"-admin", "127.0.0.1:0")
	assert.Contains(t, p.stdout.String(), "health checks: GET /whoami every 50ms")
	assert.Equal(t, "healthy", stateOf(t, p, "flaky"))
	assert.Contains(t, newClientsReach(t, p, "/", 2), "flaky")

	down.Store(true)
	require.Eventually(t, func() bool { return stateOf(t, p, "flaky") == "unhealthy" },
		5*time.Second, 20*time.Millisecond, "flaky never marked unhealthy")
	assert.Equal(t, "healthy", stateOf(t, p, "steady"))
	for _, server := range newClientsReach(t, p, "/", 4) {
		assert.Equal(t, "steady", server, "a new client placed on an unhealthy backend")
	}

	down.Store(false)
	require.Eventually(t, func() bool { return stateOf(t, p, "flaky") == "healthy" },
		5*time.Second, 20*time.Millisecond, "flaky never marked healthy again")
	assert.Contains(t, newClientsReach(t, p, "/", 2), "flaky")

	require.Equal(t, 0, p.stop(t), "stderr:\n%s", p.stderr)
	logs := p.stderr.String()
	assert.Contains(t, logs, "backend failed health checks")
	assert.Contains(t, logs, "backend passed health checks")
}

func TestEndToEndAdminGuards(t *testing.T) {
	const token = "e2e-admin-token"
	tokenFile := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(tokenFile, []byte(token+"\n"), 0o600))
	p := startProxy(t, "-key", testKey, "-admin", "127.0.0.1:0", "-admin-token-file", tokenFile)
	u, err := url.Parse(p.admin)
	require.NoError(t, err)
	port := u.Port()
	app4 := httptest.NewServer(demoapp.New("app4"))
	t.Cleanup(app4.Close)

	tests := []struct {
		name          string
		method, path  string
		host          string // the Host header
		authorization string // "": none
		status        int
	}{
		{"rebound name, same origin, the token: 421", "POST", "/backends", "rebind.evil.example:" + port, "Bearer " + token, 421},
		{"rebound name, the status page: 421", "GET", "/", "rebind.evil.example:" + port, "Bearer " + token, 421},
		{"no token: 401", "GET", "/backends", "127.0.0.1:" + port, "", 401},
		{"no token, adding a backend: 401", "POST", "/backends", "127.0.0.1:" + port, "", 401},
		{"wrong token: 401", "GET", "/backends", "127.0.0.1:" + port, "Bearer " + token + "0", 401},
		{"no token, the status page: 401", "GET", "/", "127.0.0.1:" + port, "", 401},
		{"no token, the metrics: 401", "GET", "/metrics", "127.0.0.1:" + port, "", 401},
		{"the token, IPv4 loopback", "GET", "/backends", "127.0.0.1:" + port, "Bearer " + token, 200},
		{"the token, IPv6 loopback", "GET", "/backends/app1", "[::1]:" + port, "Bearer " + token, 200},
		{"the token, localhost", "GET", "/metrics", "localhost:" + port, "Bearer " + token, 200},
		{"the token, the status page", "GET", "/", "127.0.0.1:" + port, "Bearer " + token, 200},
		{"the token, adding a backend", "POST", "/backends", "localhost:" + port, "Bearer " + token, 201},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := ""
			if tt.method == "POST" {
				body = `{"id":"app4","url":"` + app4.URL + `"}`
			}
			req, err := http.NewRequest(tt.method, p.admin+tt.path, strings.NewReader(body))
			require.NoError(t, err)
			req.Host = tt.host
			req.Header.Set("Origin", "http://"+tt.host) // same origin, to the browser
			if tt.authorization != "" {
				req.Header.Set("Authorization", tt.authorization)
			}
			r := do(t, newPlainClient(t), req)
			require.Equal(t, tt.status, r.status, r.body)
			if tt.status == http.StatusUnauthorized {
				assert.Equal(t, "Bearer", r.header.Get("WWW-Authenticate"))
			}
			if tt.status >= 400 {
				assert.Equal(t, "application/json", r.header.Get("Content-Type"))
				assert.Contains(t, r.body, `"error":`)
			}
		})
	}
	require.Equal(t, 0, p.stop(t), "stderr:\n%s", p.stderr)
	assert.NotContains(t, p.stderr.String(), token, "the logs show the token")
	assert.NotContains(t, p.stdout.String(), token, "the output shows the token")
}
