package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/internal/demoapp"
)

// syncBuffer is a bytes.Buffer safe for the proxy's goroutines to write
// while a test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// proxy is a stickyproxy started in-process by a test.
type proxy struct {
	url            string
	stdout, stderr *syncBuffer
	cancel         context.CancelFunc
	done           chan int
}

// startProxy runs the proxy with args plus -listen 127.0.0.1:0 and waits
// until it accepts connections.
func startProxy(t *testing.T, args ...string) *proxy {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	p := &proxy{stdout: &syncBuffer{}, stderr: &syncBuffer{}, cancel: cancel, done: make(chan int, 1)}
	addr := make(chan string, 1)
	go func() {
		args := append([]string{"-listen", "127.0.0.1:0"}, args...)
		p.done <- run(ctx, args, p.stdout, p.stderr, func(a string) { addr <- a })
	}()
	select {
	case a := <-addr:
		p.url = "http://" + a
	case code := <-p.done:
		t.Fatalf("run returned %d before serving; stderr:\n%s", code, p.stderr)
	case <-time.After(10 * time.Second):
		t.Fatal("proxy did not start within 10s")
	}
	t.Cleanup(func() { p.stop(t) })
	return p
}

// stop cancels the proxy's context and returns run's exit status. Calls
// after the first return -1.
func (p *proxy) stop(t *testing.T) int {
	t.Helper()
	p.cancel()
	select {
	case code, ok := <-p.done:
		if !ok {
			return -1
		}
		close(p.done)
		return code
	case <-time.After(15 * time.Second):
		t.Fatal("proxy did not shut down within 15s")
		return -1
	}
}

// newClient returns a browser-like client: a cookie jar, redirects
// followed, its own connections.
func newClient(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Jar: jar, Transport: tr, Timeout: 5 * time.Second}
}

// send makes a request (a form POST when form is not nil) and returns the
// final response's status, server and body.
func send(t *testing.T, c *http.Client, u string, form url.Values) (status int, servedBy, body string) {
	t.Helper()
	var resp *http.Response
	var err error
	if form != nil {
		resp, err = c.PostForm(u, form)
	} else {
		resp, err = c.Get(u)
	}
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header.Get("X-Served-By"), string(b)
}

// cookieNames returns the names of the cookies c sends to u.
func cookieNames(t *testing.T, c *http.Client, u string) []string {
	t.Helper()
	pu, err := url.Parse(u)
	require.NoError(t, err)
	var names []string
	for _, ck := range c.Jar.Cookies(pu) {
		names = append(names, ck.Name)
	}
	return names
}

func TestEndToEnd(t *testing.T) {
	p := startProxy(t, "-key", testKey)

	// First visit: the demo app's login page, and two cookies: the app's
	// session and the proxy's binding.
	alice := newClient(t)
	status, server, body := send(t, alice, p.url+"/", nil)
	require.Equal(t, http.StatusOK, status)
	assert.Contains(t, body, "please log in")
	require.NotEmpty(t, server)
	assert.ElementsMatch(t, []string{demoapp.SessionCookie, "affinity"}, cookieNames(t, alice, p.url))

	// Log in; the client follows the 303 to the hello page, on the same
	// backend.
	status, got, body := send(t, alice, p.url+"/login", url.Values{"name": {"alice"}})
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, server, got)
	assert.Contains(t, body, "hello alice")

	// Sticky: every request reaches the backend that holds the session.
	for i := range 20 {
		_, got, body := send(t, alice, p.url+"/whoami", nil)
		require.Equal(t, "server="+server+" user=alice\n", body, "request %d", i)
		assert.Equal(t, server, got)
	}

	// A second client is placed anew: with every backend idle, least
	// connections rotates through the tie, so it lands elsewhere, where
	// nobody is logged in.
	bob := newClient(t)
	_, bobServer, body := send(t, bob, p.url+"/", nil)
	assert.Contains(t, body, "please log in")
	assert.NotEqual(t, server, bobServer)
	_, _, body = send(t, bob, p.url+"/whoami", nil)
	assert.Equal(t, "server="+bobServer+" user=\n", body)

	out := p.stdout.String()
	for _, want := range []string{p.url, "curl -c jar -b jar", "app1", "app2", "app3"} {
		assert.Contains(t, out, want)
	}

	require.Equal(t, 0, p.stop(t), "graceful shutdown; stderr:\n%s", p.stderr)
	logs := p.stderr.String()
	assert.Contains(t, logs, "shutting down")
	assert.Contains(t, logs, "stopped")
	assert.NotContains(t, logs, "random key", "a -key was given")
}

func TestEndToEndOwnBackends(t *testing.T) {
	var urls []string
	for _, name := range []string{"one", "two"} {
		srv := httptest.NewServer(demoapp.New(name))
		t.Cleanup(srv.Close)
		urls = append(urls, name+"="+srv.URL)
	}
	p := startProxy(t,
		"-backends", strings.Join(urls, ","),
		"-picker", "roundrobin",
		"-cookie-name", "lb",
		"-cookie-ttl", "0")

	c := newClient(t)
	_, server, _ := send(t, c, p.url+"/", nil)
	assert.Contains(t, []string{"one", "two"}, server)
	assert.ElementsMatch(t, []string{demoapp.SessionCookie, "lb"}, cookieNames(t, c, p.url))
	send(t, c, p.url+"/login", url.Values{"name": {"carol"}})
	for range 5 {
		_, _, body := send(t, c, p.url+"/whoami", nil)
		assert.Equal(t, "server="+server+" user=carol\n", body)
	}
	assert.Equal(t, 0, p.stop(t))
}

func TestRunExitStatus(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { busy.Close() })

	tests := []struct {
		name   string
		args   []string
		status int
		stderr string // contains
		stdout string // contains
	}{
		{"help", []string{"-h"}, 0, "", "-cookie-ttl"},
		{"bad picker", []string{"-picker", "fastest"}, 2, `"fastest"`, ""},
		{"bad ttl", []string{"-cookie-ttl", "-5m"}, 2, `"-5m0s"`, ""},
		{"bad backend", []string{"-backends", "app1=gopher://h:70"}, 2, `"gopher://h:70"`, ""},
		{"ttl the policy refuses", []string{"-cookie-ttl", "10ms"}, 2, "10ms", ""},
		{"cookie name the policy refuses", []string{"-cookie-name", "a;b"}, 2, `"a;b"`, ""},
		{"address in use", []string{"-key", testKey, "-listen", busy.Addr().String()}, 1, "address already in use", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			status := run(ctx, tt.args, &stdout, &stderr, func(string) { t.Error("proxy started") })
			assert.Equal(t, tt.status, status)
			assert.Contains(t, stderr.String(), tt.stderr)
			assert.Contains(t, stdout.String(), tt.stdout)
			if tt.status == 2 {
				assert.Equal(t, 1, strings.Count(stderr.String(), "\n"), "one line: %q", stderr.String())
			}
		})
	}
}
