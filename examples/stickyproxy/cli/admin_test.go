package cli

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/internal/accounting"
	"github.com/affinitylb/affinity/metrics"
)

// newTestAdmin returns a set of two backends, app1 and app2 (weight 3),
// and the admin API over it.
func newTestAdmin(t *testing.T) (*backend.Set, http.Handler) {
	t.Helper()
	set, err := backend.NewSet([]backend.Config{
		{ID: "app1", URL: "http://127.0.0.1:9001"},
		{ID: "app2", URL: "http://127.0.0.1:9002", Weight: 3},
	})
	require.NoError(t, err)
	t.Cleanup(func() { // ends the drains the test started
		for _, b := range set.Snapshot().Backends() {
			set.Remove(b.ID())
		}
	})
	return set, newAdmin(set, newMetrics(t, set), slog.New(slog.DiscardHandler), adminOptions{})
}

// newMetrics returns a metrics recorder reporting on set.
func newMetrics(t *testing.T, set *backend.Set) *metrics.Recorder {
	t.Helper()
	rec, err := metrics.New(set)
	require.NoError(t, err)
	return rec
}

// adminDo sends method path with body, and the header given as name,
// value pairs, to h, for Host 127.0.0.1:9090 unless the header says
// otherwise.
func adminDo(h http.Handler, method, path, body string, header ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Host = "127.0.0.1:9090"
	for i := 0; i+1 < len(header); i += 2 {
		if header[i] == "Host" {
			req.Host = header[i+1]
			continue
		}
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// assertJSONError checks that rec holds a JSON error, {"error": ...}, whose
// message contains want.
func assertJSONError(t *testing.T, rec *httptest.ResponseRecorder, want string) {
	t.Helper()
	assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	var body map[string]string
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body), "body %q", rec.Body)
	require.Len(t, body, 1, "body %q", rec.Body)
	assert.Contains(t, body["error"], want)
}

const (
	app1JSON = `{"id":"app1","url":"http://127.0.0.1:9001","group":"","state":"healthy","weight":1,"inflight":0,"requests":0}`
	app2JSON = `{"id":"app2","url":"http://127.0.0.1:9002","group":"","state":"healthy","weight":3,"inflight":0,"requests":0}`
)

func TestAdmin(t *testing.T) {
	big := `{"url":"http://127.0.0.1:9003","id":"` + strings.Repeat("a", maxAdminBody) + `"}`
	tests := []struct {
		name         string
		method, path string
		body         string
		header       []string // name, value pairs
		status       int
		want         string // under 400: the JSON body, if not ""; else: in the error message
		allow        string // the Allow header
		check        func(t *testing.T, set *backend.Set, rec *httptest.ResponseRecorder)
	}{
		// GET /backends, GET /backends/{id}
		{name: "list", method: "GET", path: "/backends", status: 200, want: "[" + app1JSON + "," + app2JSON + "]"},
		{name: "list, HEAD", method: "HEAD", path: "/backends", status: 200},
		{name: "get", method: "GET", path: "/backends/app2", status: 200, want: app2JSON},
		{name: "get unknown", method: "GET", path: "/backends/app9", status: 404, want: `no such id "app9"`},

		// POST /backends
		{
			name: "add", method: "POST", path: "/backends", body: `{"url":"http://127.0.0.1:9003","id":"app3","weight":2}`,
			status: 201, want: `{"id":"app3","url":"http://127.0.0.1:9003","group":"","state":"healthy","weight":2,"inflight":0,"requests":0}`,
			check: func(t *testing.T, set *backend.Set, rec *httptest.ResponseRecorder) {
				assert.Equal(t, "/backends/app3", rec.Header().Get("Location"))
				bs := set.Snapshot().Backends()
				require.Len(t, bs, 3)
				assert.Equal(t, "app3", bs[2].ID(), "added last")
			},
		},
		{
			name: "add without id or weight", method: "POST", path: "/backends", body: `{"url":"http://127.0.0.1:9003"}`,
			status: 201,
			check: func(t *testing.T, set *backend.Set, rec *httptest.ResponseRecorder) {
				var got backendJSON
				require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
				bs := set.Snapshot().Backends()
				require.Len(t, bs, 3)
				assert.Equal(t, bs[2].ID(), got.ID, "an ID digested from the URL")
				assert.Equal(t, int64(1), got.Weight)
			},
		},
		{name: "add duplicate id", method: "POST", path: "/backends", body: `{"url":"http://127.0.0.1:9009","id":"app1"}`, status: 409, want: `duplicate id "app1"`},
		{name: "add bad URL", method: "POST", path: "/backends", body: `{"url":"ftp://127.0.0.1:9003"}`, status: 400, want: `"ftp://127.0.0.1:9003"`},
		{name: "add without URL", method: "POST", path: "/backends", body: `{"id":"app3"}`, status: 400, want: "empty URL"},
		{name: "add bad id", method: "POST", path: "/backends", body: `{"url":"http://127.0.0.1:9003","id":"a b"}`, status: 400, want: `"a b"`},
		{name: "add bad weight", method: "POST", path: "/backends", body: `{"url":"http://127.0.0.1:9003","weight":-1}`, status: 400, want: "weight -1"},
		{name: "add zero weight", method: "POST", path: "/backends", body: `{"url":"http://127.0.0.1:9003","weight":0}`, status: 400, want: "weight 0"},
		{name: "add unknown field", method: "POST", path: "/backends", body: `{"url":"http://127.0.0.1:9003","name":"x"}`, status: 400, want: `unknown field "name"`},
		{name: "add wrong type", method: "POST", path: "/backends", body: `{"url":5}`, status: 400, want: "invalid request body"},
		{name: "add truncated JSON", method: "POST", path: "/backends", body: `{"url":`, status: 400, want: "invalid request body"},
		{name: "add not an object", method: "POST", path: "/backends", body: `[]`, status: 400, want: "invalid request body"},
		{name: "add two objects", method: "POST", path: "/backends", body: `{"url":"http://127.0.0.1:9003"} {}`, status: 400, want: "more than one JSON value"},
		{name: "add trailing garbage", method: "POST", path: "/backends", body: `{"url":"http://127.0.0.1:9003"} x`, status: 400, want: "after the JSON value"},
		{name: "add empty body", method: "POST", path: "/backends", status: 400, want: "empty request body"},
		{name: "add oversized body", method: "POST", path: "/backends", body: big, status: 413, want: "over 65536 bytes"},
		{
			name: "add from another site's page", method: "POST", path: "/backends", body: `{"url":"http://203.0.113.1"}`,
			header: []string{"Sec-Fetch-Site", "cross-site"}, status: 403, want: "cross-origin",
			check: func(t *testing.T, set *backend.Set, _ *httptest.ResponseRecorder) {
				assert.Equal(t, 2, len(set.Snapshot().Backends()))
			},
		},
		{
			name: "add from another origin, by Origin", method: "POST", path: "/backends", body: `{"url":"http://203.0.113.1"}`,
			header: []string{"Origin", "http://evil.example"}, status: 403, want: "cross-origin",
		},

		// DELETE /backends/{id}
		{
			name: "remove", method: "DELETE", path: "/backends/app1", status: 204,
			check: func(t *testing.T, set *backend.Set, rec *httptest.ResponseRecorder) {
				assert.Empty(t, rec.Body.String())
				assert.Nil(t, set.Snapshot().Lookup("app1"))
				assert.Equal(t, 1, len(set.Snapshot().Backends()))
			},
		},
		{name: "remove unknown", method: "DELETE", path: "/backends/app9", status: 404, want: `no such id "app9"`},
		{name: "remove a NUL", method: "DELETE", path: "/backends/%00", status: 404, want: "no such id"},

		// POST /backends/{id}/drain
		{
			name: "drain", method: "POST", path: "/backends/app1/drain", body: `{"timeout":"1h"}`,
			status: 202, want: strings.Replace(app1JSON, "healthy", "draining", 1),
			check: func(t *testing.T, set *backend.Set, _ *httptest.ResponseRecorder) {
				assert.Equal(t, backend.Draining, set.Snapshot().Lookup("app1").State())
			},
		},
		{name: "drain, empty body: the default timeout", method: "POST", path: "/backends/app2/drain", status: 202, want: strings.Replace(app2JSON, "healthy", "draining", 1)},
		{name: "drain, no timeout: the default", method: "POST", path: "/backends/app2/drain", body: `{}`, status: 202, want: strings.Replace(app2JSON, "healthy", "draining", 1)},
		{name: "drain unknown", method: "POST", path: "/backends/app9/drain", body: `{"timeout":"1s"}`, status: 404, want: `no such id "app9"`},
		{
			name: "drain, bad timeout", method: "POST", path: "/backends/app1/drain", body: `{"timeout":"soon"}`, status: 400, want: `invalid timeout "soon"`,
			check: func(t *testing.T, set *backend.Set, _ *httptest.ResponseRecorder) {
				assert.Equal(t, backend.Healthy, set.Snapshot().Lookup("app1").State())
			},
		},
		{name: "drain, negative timeout", method: "POST", path: "/backends/app1/drain", body: `{"timeout":"-1s"}`, status: 400, want: `invalid timeout "-1s"`},
		{name: "drain, zero timeout", method: "POST", path: "/backends/app1/drain", body: `{"timeout":"0s"}`, status: 400, want: `invalid timeout "0s"`},
		{name: "drain, timeout a number", method: "POST", path: "/backends/app1/drain", body: `{"timeout":30}`, status: 400, want: "invalid request body"},
		{name: "drain, unknown field", method: "POST", path: "/backends/app1/drain", body: `{"timeout":"1s","force":true}`, status: 400, want: `unknown field "force"`},
		{name: "drain, oversized body", method: "POST", path: "/backends/app1/drain", body: big, status: 413, want: "over 65536 bytes"},

		// Wrong methods, unknown paths.
		{name: "PUT /backends", method: "PUT", path: "/backends", body: "{}", status: 405, allow: "GET, HEAD, POST", want: "method PUT not allowed"},
		{name: "DELETE /backends", method: "DELETE", path: "/backends", status: 405, allow: "GET, HEAD, POST", want: "method DELETE"},
		{name: "POST /backends/{id}", method: "POST", path: "/backends/app1", body: "{}", status: 405, allow: "GET, HEAD, DELETE", want: "method POST"},
		{name: "PATCH /backends/{id}", method: "PATCH", path: "/backends/app9", status: 405, allow: "GET, HEAD, DELETE", want: "method PATCH"},
		{name: "GET /backends/{id}/drain", method: "GET", path: "/backends/app1/drain", status: 405, allow: "POST", want: "method GET"},
		{name: "unknown path", method: "GET", path: "/nope", status: 404, want: `no such path "/nope"`},
		{name: "status page", method: "GET", path: "/", status: 200, check: func(t *testing.T, _ *backend.Set, rec *httptest.ResponseRecorder) {
			assert.Contains(t, rec.Header().Get("Content-Type"), "text/html")
			assert.Contains(t, rec.Body.String(), `<table id="backends">`)
			assert.Contains(t, rec.Body.String(), `data-backend="app1"`)
		}},
		{name: "metrics", method: "GET", path: "/metrics", status: 200, check: func(t *testing.T, _ *backend.Set, rec *httptest.ResponseRecorder) {
			assert.Contains(t, rec.Body.String(), `affinity_backend_inflight{backend="app1"} 0`)
		}},
		{name: "trailing slash", method: "GET", path: "/backends/", status: 404, want: "no such path"},
		{name: "below drain", method: "POST", path: "/backends/app1/drain/now", status: 404, want: "no such path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, h := newTestAdmin(t)
			rec := adminDo(h, tt.method, tt.path, tt.body, tt.header...)
			require.Equal(t, tt.status, rec.Code, "body %q", rec.Body)
			assert.Equal(t, tt.allow, rec.Header().Get("Allow"))
			switch {
			case tt.status >= 400:
				assertJSONError(t, rec, tt.want)
			case tt.want != "":
				assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
				assert.JSONEq(t, tt.want, rec.Body.String())
			}
			if tt.check != nil {
				tt.check(t, set, rec)
			}
		})
	}
}

func TestAdminShowsState(t *testing.T) {
	set, h := newTestAdmin(t)
	app1 := set.Snapshot().Lookup("app1")
	type row struct {
		id, state          string
		inflight, requests int64
	}
	tests := []struct {
		name   string
		change func(t *testing.T)
		want   []row
	}{
		{"at first", func(*testing.T) {}, []row{{"app1", "healthy", 0, 0}, {"app2", "healthy", 0, 0}}},
		{"requests in flight", func(t *testing.T) {
			require.True(t, accounting.Acquire(app1))
			require.True(t, accounting.Acquire(app1))
		}, []row{{"app1", "healthy", 2, 2}, {"app2", "healthy", 0, 0}}},
		{"one done", func(*testing.T) { accounting.Release(app1) }, []row{{"app1", "healthy", 1, 2}, {"app2", "healthy", 0, 0}}},
		{"marked down", func(t *testing.T) {
			require.NoError(t, set.SetState("app2", backend.Unhealthy))
		}, []row{{"app1", "healthy", 1, 2}, {"app2", "unhealthy", 0, 0}}},
		{"draining", func(t *testing.T) {
			_, err := set.Drain("app1", time.Hour)
			require.NoError(t, err)
		}, []row{{"app1", "draining", 1, 2}, {"app2", "unhealthy", 0, 0}}},
		{"back up", func(t *testing.T) {
			require.NoError(t, set.SetState("app2", backend.Healthy))
		}, []row{{"app1", "draining", 1, 2}, {"app2", "healthy", 0, 0}}},
		{"added", func(t *testing.T) {
			_, err := set.Add(backend.Config{ID: "app0", URL: "http://127.0.0.1:9000"})
			require.NoError(t, err)
		}, []row{{"app1", "draining", 1, 2}, {"app2", "healthy", 0, 0}, {"app0", "healthy", 0, 0}}},
		{"removed", func(t *testing.T) {
			_, err := set.Remove("app1")
			require.NoError(t, err)
		}, []row{{"app2", "healthy", 0, 0}, {"app0", "healthy", 0, 0}}},
	}
	// The steps build on each other: no t.Run.
	for _, tt := range tests {
		tt.change(t)
		rec := adminDo(h, "GET", "/backends", "")
		require.Equal(t, http.StatusOK, rec.Code, tt.name)
		var got []backendJSON
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got), tt.name)
		var rows []row
		for _, b := range got {
			rows = append(rows, row{b.ID, b.State, b.InFlight, b.Requests})
		}
		assert.Equal(t, tt.want, rows, tt.name)
	}
	accounting.Release(app1)
}

func TestAdminListsNoBackendsAsEmptyArray(t *testing.T) {
	empty := &backend.Set{}
	rec := adminDo(newAdmin(empty, newMetrics(t, empty), slog.New(slog.DiscardHandler), adminOptions{}), "GET", "/backends", "")
	require.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, "[]\n", rec.Body.String())
}

// FuzzAdmin checks that no request makes the admin API panic, and that it
// answers every error in JSON.
func FuzzAdmin(f *testing.F) {
	for _, s := range [][3]string{
		{"GET", "/backends", ""},
		{"POST", "/backends", `{"url":"http://127.0.0.1:9003","id":"x","weight":65536}`},
		{"POST", "/backends", `{"url":"http://[::1]:0/%zz","weight":1e300}`},
		{"POST", "/backends/app1/drain", `{"timeout":"9223372036854775807ns"}`},
		{"POST", "/backends/app1/drain", `{"timeout":"1h"}{"timeout":`},
		{"DELETE", "/backends/app%2F1", ""},
		{"OPTIONS", "/backends/../backends", "[[[[[[[[[["},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, method, path, body string) {
		req, err := http.NewRequest(method, "http://127.0.0.1:9090"+path, strings.NewReader(body))
		if err != nil || req.URL.Host != "127.0.0.1:9090" {
			t.Skip()
		}
		_, h := newTestAdmin(t)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 400 {
			var e struct{ Error string }
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &e), "status %d, body %q", rec.Code, rec.Body)
			assert.NotEmpty(t, e.Error)
		}
	})
}

func TestAdminHost(t *testing.T) {
	const addBody = `{"url":"http://203.0.113.1","id":"evil"}`
	tests := []struct {
		name         string
		method, path string
		host         string
		origin       string // "": none
		opts         adminOptions
		status       int
	}{
		// DNS rebinding: the attacker's name, now resolving to the proxy;
		// to the browser the page and the API share an origin.
		{"rebound name adds a backend", "POST", "/backends", "rebind.evil.example:9090", "http://rebind.evil.example:9090", adminOptions{}, 421},
		{"rebound name lists backends", "GET", "/backends", "rebind.evil.example:9090", "", adminOptions{}, 421},
		{"rebound name reads the status page", "GET", "/", "rebind.evil.example:9090", "", adminOptions{}, 421},
		{"rebound name reads the metrics", "GET", "/metrics", "rebind.evil.example", "", adminOptions{}, 421},
		{"rebound name, even with the right token", "GET", "/backends", "rebind.evil.example:9090", "", adminOptions{token: []byte("s3cret")}, 421},
		{"a subdomain of localhost", "GET", "/backends", "evil.localhost:9090", "", adminOptions{}, 421},
		{"localhost with a trailing dot", "GET", "/backends", "localhost.:9090", "", adminOptions{}, 421},
		{"a name ending like the -admin host", "GET", "/backends", "evil-lb.example:9090", "", adminOptions{host: "lb.example"}, 421},
		{"the -admin host with a suffix", "GET", "/backends", "lb.example.evil.example:9090", "", adminOptions{host: "lb.example"}, 421},
		{"no Host", "GET", "/backends", "", "", adminOptions{}, 421},
		{"a port only", "GET", "/backends", ":9090", "", adminOptions{}, 421},

		{"IPv4 loopback", "GET", "/backends", "127.0.0.1:9090", "", adminOptions{}, 200},
		{"IPv4 loopback adds a backend, same origin", "POST", "/backends", "127.0.0.1:9090", "http://127.0.0.1:9090", adminOptions{}, 201},
		{"IPv6 loopback", "GET", "/backends", "[::1]:9090", "", adminOptions{}, 200},
		{"IPv6 loopback without a port", "GET", "/backends", "[::1]", "", adminOptions{}, 200},
		{"localhost", "GET", "/backends", "localhost:9090", "", adminOptions{}, 200},
		{"localhost adds a backend, same origin", "POST", "/backends", "localhost:9090", "http://localhost:9090", adminOptions{}, 201},
		{"localhost in capitals, without a port", "GET", "/", "LOCALHOST", "", adminOptions{}, 200},
		{"another IP address: any listener's", "GET", "/metrics", "192.0.2.7:9090", "", adminOptions{}, 200},
		{"the -admin host", "GET", "/backends", "lb.example:9090", "", adminOptions{host: "lb.example"}, 200},
		{"the -admin host in another case", "GET", "/backends", "LB.Example:9090", "", adminOptions{host: "lb.example"}, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, err := backend.NewSet([]backend.Config{{ID: "app1", URL: "http://127.0.0.1:9001"}})
			require.NoError(t, err)
			h := newAdmin(set, newMetrics(t, set), slog.New(slog.DiscardHandler), tt.opts)
			header := []string{"Host", tt.host}
			if tt.origin != "" {
				header = append(header, "Origin", tt.origin)
			}
			if tt.opts.token != nil {
				header = append(header, "Authorization", "Bearer "+string(tt.opts.token))
			}
			body := ""
			if tt.method == "POST" {
				body = addBody
			}
			rec := adminDo(h, tt.method, tt.path, body, header...)
			require.Equal(t, tt.status, rec.Code, "body %q", rec.Body)
			if tt.status == http.StatusMisdirectedRequest {
				assertJSONError(t, rec, "is not this admin API's")
				assert.Nil(t, set.Snapshot().Lookup("evil"), "backend added through a rebound name")
			}
		})
	}
}

func TestAdminToken(t *testing.T) {
	const token = "0123456789abcdef-token"
	tests := []struct {
		name          string
		method, path  string
		authorization string // "": none
		status        int
	}{
		{"no token: the backends", "GET", "/backends", "", 401},
		{"no token: adding a backend", "POST", "/backends", "", 401},
		{"no token: the status page", "GET", "/", "", 401},
		{"no token: the metrics", "GET", "/metrics", "", 401},
		{"no token: an unknown path", "GET", "/nope", "", 401},
		{"wrong token", "GET", "/backends", "Bearer wrong", 401},
		{"the token's prefix", "GET", "/backends", "Bearer " + token[:len(token)-1], 401},
		{"the token and more", "GET", "/backends", "Bearer " + token + "x", 401},
		{"the token in another case", "GET", "/backends", "Bearer " + strings.ToUpper(token), 401},
		{"another scheme", "GET", "/backends", "Basic " + token, 401},
		{"the token without a scheme", "GET", "/backends", token, 401},
		{"the scheme without a token", "GET", "/backends", "Bearer", 401},
		{"the scheme and a space", "GET", "/backends", "Bearer ", 401},

		{"the token: the backends", "GET", "/backends", "Bearer " + token, 200},
		{"the token: adding a backend", "POST", "/backends", "Bearer " + token, 201},
		{"the token: the status page", "GET", "/", "Bearer " + token, 200},
		{"the token: the metrics", "GET", "/metrics", "Bearer " + token, 200},
		{"the token, the scheme in lower case", "GET", "/backends", "bearer " + token, 200},
		{"the token after two spaces", "GET", "/backends", "Bearer  " + token, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, err := backend.NewSet([]backend.Config{{ID: "app1", URL: "http://127.0.0.1:9001"}})
			require.NoError(t, err)
			h := newAdmin(set, newMetrics(t, set), slog.New(slog.DiscardHandler), adminOptions{token: []byte(token)})
			var header []string
			if tt.authorization != "" {
				header = []string{"Authorization", tt.authorization}
			}
			body := ""
			if tt.method == "POST" {
				body = `{"url":"http://127.0.0.1:9003","id":"app3"}`
			}
			rec := adminDo(h, tt.method, tt.path, body, header...)
			require.Equal(t, tt.status, rec.Code, "body %q", rec.Body)
			if tt.status != http.StatusUnauthorized {
				assert.Empty(t, rec.Header().Get("WWW-Authenticate"))
				return
			}
			assert.Equal(t, "Bearer", rec.Header().Get("WWW-Authenticate"))
			assertJSONError(t, rec, "")
			assert.NotContains(t, rec.Body.String(), token, "the answer shows the token")
			assert.Nil(t, set.Snapshot().Lookup("app3"), "backend added without the token")
		})
	}
}
