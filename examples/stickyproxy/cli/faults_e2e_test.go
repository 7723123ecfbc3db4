package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// End-to-end tests of faults that must stay where they start: a backend
// that answers 500 to everything (-eject-status), a backend that is the
// proxy itself.

// backendState returns the state GET /backends/{id} shows.
func backendState(t *testing.T, p *proxy, id string) string {
	t.Helper()
	status, body := callAdmin(t, p, http.MethodGet, "/backends/"+id, "")
	require.Equal(t, http.StatusOK, status, body)
	var b backendJSON
	require.NoError(t, json.Unmarshal([]byte(body), &b), body)
	return b.State
}

func TestEndToEndEjectStatus(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		ejected bool // after 5 answers of 500 in a row
	}{
		{"default: answers never eject", nil, false},
		{"-eject-status 5xx", []string{"-eject-status", "5xx"}, true},
		{"-eject-status with a code", []string{"-eject-status", "502, 500"}, true},
		{"-eject-status without 500", []string{"-eject-status", "502,503,504,4XX"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Served-By", "broken")
				http.Error(w, "internal error", http.StatusInternalServerError)
			}))
			t.Cleanup(broken.Close)
			p := startProxy(t, append([]string{
				"-key", testKey,
				"-backends", "broken=" + broken.URL + "," + demoBackends(t, "one", "two"),
				"-admin", "127.0.0.1:0",
			}, tt.args...)...)

			// New clients until two are bound to broken: least connections
			// rotates through the idle backends. Each got a 500. Each
			// from an address of its own: one client's failures alone
			// never eject a backend.
			var victims []*http.Client
			for i := range 6 {
				c := newClientFrom(t, 1+i)
				status, server, _ := send(t, c, p.url+"/", nil)
				if server != "broken" {
					require.Equal(t, http.StatusOK, status, server)
					continue
				}
				require.Equal(t, http.StatusInternalServerError, status)
				require.Contains(t, cookieNames(t, c, p.url), "affinity", "not bound to broken")
				if victims = append(victims, c); len(victims) == 2 {
					break
				}
			}
			require.Len(t, victims, 2, "no two new clients placed on broken")

			// Two failures so far; two more leave broken in: the default
			// ejection takes 5 in a row.
			for range 2 {
				status, server, _ := send(t, victims[0], p.url+"/", nil)
				require.Equal(t, "broken", server)
				require.Equal(t, http.StatusInternalServerError, status)
			}
			assert.Equal(t, "healthy", backendState(t, p, "broken"), "ejected before 5 failures")
			status, server, _ := send(t, victims[1], p.url+"/", nil)
			require.Equal(t, "broken", server)
			require.Equal(t, http.StatusInternalServerError, status)

			if !tt.ejected {
				assert.Equal(t, "healthy", backendState(t, p, "broken"))
				for _, c := range victims {
					_, server, _ := send(t, c, p.url+"/", nil)
					assert.Equal(t, "broken", server, "a client moved off a backend that was not ejected")
				}
				return
			}
			assert.Equal(t, "unhealthy", backendState(t, p, "broken"), "not ejected after 5 answers of 500")
			for i, c := range victims {
				// Placed anew on a healthy backend, and bound there.
				status, server, _ := send(t, c, p.url+"/", nil)
				require.Equal(t, http.StatusOK, status, "victim %d", i)
				require.Contains(t, []string{"one", "two"}, server, "victim %d", i)
				for range 3 {
					_, again, _ := send(t, c, p.url+"/whoami", nil)
					assert.Equal(t, server, again, "victim %d not bound to its new backend", i)
				}
			}
			for _, server := range newClientsReach(t, p, "/whoami", 4) {
				assert.NotEqual(t, "broken", server, "a new client placed on an ejected backend")
			}
			assert.Contains(t, p.stderr.String(), "backend ejected")
		})
	}
}

// freePort returns a port on 127.0.0.1 that nothing listened on a moment
// ago.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	_, port, err := net.SplitHostPort(ln.Addr().String())
	require.NoError(t, err)
	require.NoError(t, ln.Close())
	return port
}

func TestRunRefusesItselfAsBackend(t *testing.T) {
	tests := []struct {
		name string
		args func(listen, admin string) []string // given two free ports
		want string                              // stderr contains
	}{
		{"-listen", func(l, _ string) []string {
			return []string{"-listen", "127.0.0.1:" + l, "-backends", "http://127.0.0.1:" + l}
		}, "(-listen)"},
		{"-listen by localhost, among others", func(l, _ string) []string {
			return []string{"-listen", "127.0.0.1:" + l, "-backends", "a=http://192.0.2.1:80,me=http://localhost:" + l + "/"}
		}, "(-listen)"},
		{"-admin", func(l, a string) []string {
			return []string{"-listen", "127.0.0.1:" + l, "-admin", "127.0.0.1:" + a, "-backends", "http://127.0.0.1:" + a}
		}, "(-admin)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args(freePort(t), freePort(t))
			var stdout, stderr bytes.Buffer
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			status := run(ctx, args, &stdout, &stderr, func(listening) { t.Error("proxy started"); cancel() })
			assert.Equal(t, 2, status, "stderr: %s", &stderr)
			assert.Equal(t, 1, strings.Count(stderr.String(), "\n"), "one line: %q", stderr.String())
			assert.Contains(t, stderr.String(), `for -backends: backend "`)
			assert.Contains(t, stderr.String(), "is this proxy")
			assert.Contains(t, stderr.String(), tt.want)
		})
	}
}

func TestEndToEndAdminRefusesItselfAsBackend(t *testing.T) {
	p := startProxy(t, "-key", testKey, "-admin", "127.0.0.1:0")
	pu, err := url.Parse(p.url)
	require.NoError(t, err)
	au, err := url.Parse(p.admin)
	require.NoError(t, err)
	tests := []struct {
		name, url string
		flag      string // the listener named
	}{
		{"the proxy", p.url, "-listen"},
		{"the proxy, with a path", p.url + "/app", "-listen"},
		{"the proxy by localhost", "http://localhost:" + pu.Port(), "-listen"},
		{"the proxy, https", "https://127.0.0.1:" + pu.Port(), "-listen"},
		{"the admin API", p.admin, "-admin"},
		{"the admin API by localhost", "http://localhost:" + au.Port() + "/", "-admin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := callAdmin(t, p, http.MethodPost, "/backends", `{"id":"me","url":"`+tt.url+`"}`)
			require.Equal(t, http.StatusBadRequest, status, body)
			assert.Contains(t, body, "is this proxy")
			assert.Contains(t, body, "("+tt.flag+")")
			assert.Equal(t, []string{"app1", "app2", "app3"}, ids(listBackends(t, p)))
		})
	}
	// A backend on another port of this machine is welcome.
	other := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(other.Close)
	status, body := callAdmin(t, p, http.MethodPost, "/backends", `{"id":"other","url":"`+other.URL+`"}`)
	assert.Equal(t, http.StatusCreated, status, body)
}

// TestEndToEndAFailingRequestIsExecutedAtMostTwice checks that a GET whose
// backend resets it, behind a warm pool of 60 idle connections, is
// executed twice in all: by its backend and one other, not once per idle
// connection.
func TestEndToEndAFailingRequestIsExecutedAtMostTwice(t *testing.T) {
	const idle = 60
	var executed atomic.Int32
	var arrived sync.WaitGroup
	arrived.Add(idle)
	var backends []string
	for _, name := range []string{"one", "two", "three"} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/fault" {
				arrived.Done() // the warm-up's requests wait for each other
				arrived.Wait()
				return
			}
			executed.Add(1)
			conn, _, err := http.NewResponseController(w).Hijack()
			if !assert.NoError(t, err) {
				return
			}
			assert.NoError(t, conn.(*net.TCPConn).SetLinger(0)) // close sends RST
			conn.Close()
		}))
		t.Cleanup(srv.Close)
		backends = append(backends, name+"="+srv.URL)
	}
	p := startProxy(t, "-key", testKey, "-backends", strings.Join(backends, ","))

	var wg sync.WaitGroup
	for range idle {
		wg.Go(func() {
			resp := do(t, newPlainClient(t), get(t, p.url+"/"))
			assert.Equal(t, http.StatusOK, resp.status)
		})
	}
	wg.Wait()
	resp := do(t, newPlainClient(t), get(t, p.url+"/fault"))
	assert.Equal(t, http.StatusBadGateway, resp.status)
	assert.Equal(t, int32(2), executed.Load(), "executions of one GET, at all backends")
}

// TestEndToEndHungBackendIsEjected checks that, with the defaults and no
// active checks, a backend that stops answering while its clients wait
// for it is shown unhealthy within 15 s, and that its clients' next
// requests go to the others.
func TestEndToEndHungBackendIsEjected(t *testing.T) {
	t.Parallel()
	var hung atomic.Bool
	stop := make(chan struct{})
	release := sync.OnceFunc(func() { close(stop) })
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hung.Load() {
			<-stop
		}
		w.Header().Set("X-Served-By", "hung")
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(release) // before srv.Close, which waits for its handlers
	p := startProxy(t, "-key", testKey, "-admin", "127.0.0.1:0",
		"-backends", "hung="+srv.URL+","+demoBackends(t, "one", "two"))

	var victims []*http.Client
	for i := range 12 { // each from an address of its own: one client's requests alone never stall
		c := newClientFrom(t, 1+i)
		c.Timeout = time.Minute // patient: they wait for the hung backend
		if _, server, _ := send(t, c, p.url+"/", nil); server == "hung" {
			victims = append(victims, c)
		}
	}
	require.GreaterOrEqual(t, len(victims), 3, "too few clients on the backend that hangs")
	hung.Store(true)
	var wg sync.WaitGroup
	for _, c := range victims {
		wg.Go(func() {
			resp, err := c.Get(p.url + "/")
			if err == nil {
				resp.Body.Close()
			}
		})
	}
	assert.Eventually(t, func() bool { return backendState(t, p, "hung") == "unhealthy" },
		15*time.Second, 50*time.Millisecond, "the hung backend is not shown unhealthy")
	release()
	wg.Wait()
	for i, c := range victims {
		status, server, _ := send(t, c, p.url+"/whoami", nil)
		assert.Equal(t, http.StatusOK, status, "client %d", i)
		assert.Contains(t, []string{"one", "two"}, server, "client %d", i)
	}
	assert.Contains(t, p.stderr.String(), "backend stalled")
}

// TestEndToEndTrustedProxies checks, with only 127.0.0.2 trusted, what a
// backend sees of the forwarding headers a client sends, and whether the
// cookie is Secure: from the trusted peer X-Forwarded-For is appended to,
// X-Forwarded-Proto kept, and its https makes the cookie Secure; from an
// untrusted one (127.0.0.3) all are replaced.
func TestEndToEndTrustedProxies(t *testing.T) {
	var mu sync.Mutex
	var seen http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		seen = r.Header.Clone()
		seen.Set("Host", r.Host)
	}))
	t.Cleanup(srv.Close)
	p := startProxy(t, "-key", testKey, "-backends", "app="+srv.URL, "-trusted-proxies", "127.0.0.2/32")
	host := strings.TrimPrefix(p.url, "http://")

	for _, tc := range []struct {
		peer          string
		xff, proto, h string
		secure        bool
	}{
		{"127.0.0.2", "203.0.113.9, 127.0.0.2", "https", "shop.example", true},
		{"127.0.0.3", "127.0.0.3", "http", host, false},
	} {
		t.Run(tc.peer, func(t *testing.T) {
			d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(tc.peer)}}
			tr := &http.Transport{DialContext: d.DialContext}
			t.Cleanup(tr.CloseIdleConnections)
			req := get(t, p.url+"/")
			req.Header.Set("X-Forwarded-For", "203.0.113.9")
			req.Header.Set("X-Forwarded-Proto", "https")
			req.Header.Set("X-Forwarded-Host", "shop.example")
			resp := do(t, &http.Client{Transport: tr}, req)
			require.Equal(t, http.StatusOK, resp.status)

			mu.Lock()
			defer mu.Unlock()
			assert.Equal(t, tc.xff, seen.Get("X-Forwarded-For"))
			assert.Equal(t, tc.proto, seen.Get("X-Forwarded-Proto"))
			assert.Equal(t, tc.h, seen.Get("X-Forwarded-Host"))
			assert.Equal(t, host, seen.Get("Host"), "the client's Host")
			ck := findCookie(resp.cookies, "affinity")
			require.NotNil(t, ck)
			assert.Equal(t, tc.secure, ck.Secure, "Secure")
		})
	}
}
