package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"slices"
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
	admin          string // the admin API's base URL, with -admin
	stdout, stderr *syncBuffer
	cancel         context.CancelFunc
	done           chan int
	addrs          listening // as run reported them
}

// startProxy runs the proxy with args plus -listen 127.0.0.1:0 and waits
// until it accepts connections.
func startProxy(t *testing.T, args ...string) *proxy {
	t.Helper()
	return startProxyWith(t, Extension{}, args...)
}

// startProxyWith is startProxy for the proxy extended by ext.
func startProxyWith(t *testing.T, ext Extension, args ...string) *proxy {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	p := &proxy{stdout: &syncBuffer{}, stderr: &syncBuffer{}, cancel: cancel, done: make(chan int, 1)}
	addrs := make(chan listening, 1)
	go func() {
		args := append([]string{"-listen", "127.0.0.1:0"}, args...)
		p.done <- runWith(ctx, args, p.stdout, p.stderr, ext, func(a listening) { addrs <- a })
	}()
	select {
	case a := <-addrs:
		p.addrs = a
		p.url = "http://" + a.proxy
		if a.admin != "" {
			p.admin = "http://" + a.admin
		}
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

// newClientFrom returns newClient's client, whose connections come from
// the address 127.0.0.n (1 to 254): the proxy tells each n from the
// others as a client of its own, as passive health checking needs to
// eject a backend on failures that reached it, or on stalls.
func newClientFrom(t *testing.T, n int) *http.Client {
	t.Helper()
	require.True(t, n >= 1 && n <= 254, "127.0.0.%d", n)
	c := newClient(t)
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(n))}}
	c.Transport.(*http.Transport).DialContext = d.DialContext
	return c
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

// demoBackends starts a demo app for each name and returns the value of
// -backends that reaches them.
func demoBackends(t *testing.T, names ...string) string {
	t.Helper()
	var urls []string
	for _, name := range names {
		srv := httptest.NewServer(demoapp.New(name))
		t.Cleanup(srv.Close)
		urls = append(urls, name+"="+srv.URL)
	}
	return strings.Join(urls, ",")
}

func TestEndToEndOwnBackends(t *testing.T) {
	p := startProxy(t,
		"-backends", demoBackends(t, "one", "two"),
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

// response is what the tests read of a response.
type response struct {
	status  int
	server  string // X-Served-By
	body    string
	cookies []*http.Cookie // set by the response
	header  http.Header
}

// do sends req with c, and returns the response, its body read.
func do(t *testing.T, c *http.Client, req *http.Request) response {
	t.Helper()
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return response{resp.StatusCode, resp.Header.Get("X-Served-By"), string(b), resp.Cookies(), resp.Header}
}

// get returns a GET request for u carrying cookies.
func get(t *testing.T, u string, cookies ...*http.Cookie) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	require.NoError(t, err)
	for _, c := range cookies {
		req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	return req
}

// findCookie returns the cookie called name in cs, or nil.
func findCookie(cs []*http.Cookie, name string) *http.Cookie {
	for _, c := range cs {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// newPlainClient returns a client without cookies, which does not follow
// redirects.
func newPlainClient(t *testing.T) *http.Client {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{
		Transport:     tr,
		Timeout:       5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// serversByKey sends n requests for each key, each made by newReq, from a
// client without cookies, and checks that each is served, that no cookie
// is set, and that the requests for a key all reach the same server. It
// returns the server of each key.
func serversByKey(t *testing.T, keys []string, n int, newReq func(key string) *http.Request) map[string]string {
	t.Helper()
	c := newPlainClient(t)
	servers := map[string]string{}
	for _, k := range keys {
		for i := range n {
			r := do(t, c, newReq(k))
			require.Equal(t, http.StatusOK, r.status, "key %q", k)
			assert.Empty(t, r.cookies, "key %q: key policies set no cookie", k)
			if i == 0 {
				servers[k] = r.server
				continue
			}
			assert.Equal(t, servers[k], r.server, "key %q moved on request %d", k, i+1)
		}
	}
	return servers
}

// distinct returns the distinct values of m.
func distinct(m map[string]string) []string {
	var vs []string
	for _, v := range m {
		if !slices.Contains(vs, v) {
			vs = append(vs, v)
		}
	}
	return vs
}

// keys returns n keys, "prefix0" to "prefix<n-1>".
func keys(prefix string, n int) []string {
	ks := make([]string, n)
	for i := range ks {
		ks[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return ks
}

func TestEndToEndHeaderKey(t *testing.T) {
	p := startProxy(t, "-policy", "header", "-header", "X-Api-Key")

	servers := serversByKey(t, keys("key-", 40), 3, func(k string) *http.Request {
		req := get(t, p.url+"/whoami")
		req.Header.Set("X-Api-Key", k)
		return req
	})
	assert.Greater(t, len(distinct(servers)), 1, "every key on one server: %v", servers)

	r := do(t, newPlainClient(t), get(t, p.url+"/whoami"))
	assert.Equal(t, http.StatusOK, r.status, "a request without the key is served too")
	assert.NotEmpty(t, r.server)

	assert.Contains(t, p.stdout.String(), "curl -H 'X-Api-Key: k1' "+p.url+"/whoami")
	assert.NotContains(t, p.stderr.String(), "random key", "no cookie, no key")
}

func TestEndToEndQueryKey(t *testing.T) {
	p := startProxy(t, "-policy", "query", "-query", "key")

	servers := serversByKey(t, keys("k", 12), 3, func(k string) *http.Request {
		return get(t, p.url+"/whoami?page=1&key="+k)
	})
	assert.Greater(t, len(distinct(servers)), 1, "every key on one server: %v", servers)

	r := do(t, newPlainClient(t), get(t, p.url+"/whoami?page=1"))
	assert.Equal(t, http.StatusOK, r.status, "a request without the key is served too")

	assert.Contains(t, p.stdout.String(), "curl '"+p.url+"/whoami?key=k1'")
}

func TestEndToEndClientIP(t *testing.T) {
	withXFF := func(p *proxy) func(string) *http.Request {
		return func(addr string) *http.Request {
			req := get(t, p.url+"/whoami")
			req.Header.Set("X-Forwarded-For", addr)
			return req
		}
	}
	clients := keys("192.0.2.", 20)

	t.Run("untrusted peer: forwarding headers ignored", func(t *testing.T) {
		p := startProxy(t, "-policy", "ip")
		servers := serversByKey(t, clients, 2, withXFF(p))
		assert.Len(t, distinct(servers), 1, "spoofed X-Forwarded-For moved the client: %v", servers)
	})
	t.Run("trusted peer: the forwarded client is the key", func(t *testing.T) {
		p := startProxy(t, "-policy", "ip", "-trusted-proxies", "127.0.0.1/32")
		servers := serversByKey(t, clients, 3, withXFF(p))
		assert.Greater(t, len(distinct(servers)), 1, "every client on one server: %v", servers)
	})
}

func TestEndToEndAppCookie(t *testing.T) {
	p := startProxy(t, "-policy", "appcookie", "-app-cookie", demoapp.SessionCookie, "-key", testKey)

	// The demo app starts its session on the first page; the proxy binds
	// the client there.
	alice := newClient(t)
	status, server, _ := send(t, alice, p.url+"/", nil)
	require.Equal(t, http.StatusOK, status)
	assert.ElementsMatch(t, []string{demoapp.SessionCookie, "affinity"}, cookieNames(t, alice, p.url))

	_, got, body := send(t, alice, p.url+"/login", url.Values{"name": {"alice"}})
	assert.Equal(t, server, got)
	assert.Contains(t, body, "hello alice")
	for i := range 20 {
		_, got, body := send(t, alice, p.url+"/whoami", nil)
		require.Equal(t, "server="+server+" user=alice\n", body, "request %d", i)
		assert.Equal(t, server, got)
	}

	// The app deletes its cookie on logout, and the proxy its own.
	noFollow := *alice
	noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	req, err := http.NewRequest(http.MethodPost, p.url+"/logout", nil)
	require.NoError(t, err)
	r := do(t, &noFollow, req)
	require.Equal(t, http.StatusSeeOther, r.status)
	assert.Equal(t, server, r.server)
	gone := findCookie(r.cookies, "affinity")
	require.NotNil(t, gone, "the app deleted its cookie but the binding stayed")
	assert.Negative(t, gone.MaxAge, "binding not deleted (Max-Age=0)")
	assert.NotContains(t, cookieNames(t, alice, p.url), "affinity")
}

func TestEndToEndKeyRotation(t *testing.T) {
	backends := demoBackends(t, "one", "two")
	before := startProxy(t, "-backends", backends, "-key", oldKey)
	// Round robin places a client it does not know on each backend in turn,
	// so only a cookie it honours keeps alice on hers.
	after := startProxy(t, "-backends", backends, "-key", testKey+","+oldKey, "-picker", "roundrobin")

	// Log in through the proxy that knows only the old key.
	alice := newClient(t)
	_, server, _ := send(t, alice, before.url+"/", nil)
	send(t, alice, before.url+"/login", url.Values{"name": {"alice"}})
	u, err := url.Parse(before.url)
	require.NoError(t, err)
	jar := alice.Jar.Cookies(u)
	old := findCookie(jar, "affinity")
	require.NotNil(t, old)
	session := findCookie(jar, demoapp.SessionCookie)
	require.NotNil(t, session)

	// The rotated proxy honours the old cookie, and signs it anew each
	// time, the client not keeping the new one.
	c := newPlainClient(t)
	var renewed *http.Cookie
	for i := range 4 {
		r := do(t, c, get(t, after.url+"/whoami", session, old))
		require.Equal(t, "server="+server+" user=alice\n", r.body, "old cookie not honoured, request %d", i)
		renewed = findCookie(r.cookies, "affinity")
		require.NotNil(t, renewed, "old cookie not re-issued")
		assert.NotEqual(t, old.Value, renewed.Value)
	}

	// Signed with the new key, the cookie needs no refresh; the proxy with
	// only the old key does not know it.
	for i := range 4 {
		r := do(t, c, get(t, after.url+"/whoami", session, renewed))
		require.Equal(t, "server="+server+" user=alice\n", r.body, "request %d", i)
		assert.Nil(t, findCookie(r.cookies, "affinity"), "cookie signed with the first key re-issued")
	}
	r := do(t, c, get(t, before.url+"/whoami", renewed))
	assert.NotNil(t, findCookie(r.cookies, "affinity"), "the old proxy took a cookie signed with the new key")
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
		{"missing -header", []string{"-policy", "header"}, 2, "-policy header needs -header NAME", ""},
		{"header name the policy refuses", []string{"-policy", "header", "-header", "X Y"}, 2, `"X Y"`, ""},
		{"app cookie name the policy refuses", []string{"-policy", "appcookie", "-app-cookie", "a;b"}, 2, `"a;b"`, ""},
		{"flag for another policy", []string{"-policy", "ip", "-query", "key"}, 2, "-query needs -policy query", ""},
		{"address in use", []string{"-key", testKey, "-listen", busy.Addr().String()}, 1, "address already in use", ""},
		{"admin address in use", []string{"-key", testKey, "-listen", "127.0.0.1:0", "-admin", busy.Addr().String()}, 1, "admin API: listen tcp " + busy.Addr().String(), ""},
		{"bad -admin", []string{"-admin", "9090"}, 2, `"9090" for -admin`, ""},
		{"-health-interval alone", []string{"-health-interval", "1s"}, 2, "-health-interval needs -health-path", ""},
		{"zero -health-interval", []string{"-health-path", "/whoami", "-health-interval", "0s"}, 2, "must be positive", ""},
		{"help shows the new flags", []string{"-h"}, 0, "", "-load-factor F"},
		{"-load-factor 1", []string{"-policy", "ip", "-load-factor", "1"}, 2, `"1" for -load-factor`, ""},
		{"-load-factor over the maximum", []string{"-policy", "ip", "-load-factor", "2e6"}, 2, `"2e+06" for -load-factor`, ""},
		{"-load-factor with cookie", []string{"-load-factor", "2"}, 2, "-load-factor needs -policy header, query or ip", ""},
		{"-cookie-max-life shorter than -cookie-ttl", []string{"-cookie-ttl", "1h", "-cookie-max-life", "59m"}, 2, `"59m0s" for -cookie-max-life: shorter than -cookie-ttl "1h0m0s"`, ""},
		{"-cookie-max-life under a second", []string{"-policy", "appcookie", "-app-cookie", "s", "-cookie-max-life", "999ms"}, 2, `"999ms" for -cookie-max-life`, ""},
		{"-cookie-sliding with appcookie", []string{"-policy", "appcookie", "-app-cookie", "s", "-cookie-sliding=false"}, 2, "-cookie-sliding does not apply to -policy appcookie", ""},
		{"-strict with header", []string{"-policy", "header", "-header", "X", "-strict"}, 2, "-strict needs -policy cookie or appcookie", ""},
		{"bad -eject-status", []string{"-eject-status", "5xx,418x"}, 2, `"5xx,418x" for -eject-status: "418x" is neither`, ""},
		{"help shows -eject-status", []string{"-h"}, 0, "", "-eject-status list"},
		{"-admin-token-file without -admin", []string{"-admin-token-file", "/dev/null"}, 2, "-admin-token-file needs -admin", ""},
		{"-admin-token-file missing", []string{"-admin", "127.0.0.1:0", "-admin-token-file", "/nonexistent/token"}, 2, `"/nonexistent/token" for -admin-token-file: open`, ""},
		{"-admin-token-file empty", []string{"-admin", "127.0.0.1:0", "-admin-token-file", "/dev/null"}, 2, `"/dev/null" for -admin-token-file: the file holds no token`, ""},
		{"help shows -admin-token-file", []string{"-h"}, 0, "", "-admin-token-file file"},
		{"negative -body-timeout", []string{"-body-timeout", "-1s"}, 2, `invalid value "-1s" for -body-timeout: negative`, ""},
		{"negative -write-timeout", []string{"-write-timeout", "-2m"}, 2, `invalid value "-2m0s" for -write-timeout: negative`, ""},
		{"help shows -body-timeout", []string{"-h"}, 0, "", "-body-timeout duration"},
		{"help shows -write-timeout", []string{"-h"}, 0, "", "-write-timeout duration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			status := run(ctx, tt.args, &stdout, &stderr, func(listening) { t.Error("proxy started") })
			assert.Equal(t, tt.status, status)
			assert.Contains(t, stderr.String(), tt.stderr)
			assert.Contains(t, stdout.String(), tt.stdout)
			if tt.status == 2 {
				assert.Equal(t, 1, strings.Count(stderr.String(), "\n"), "one line: %q", stderr.String())
			}
		})
	}
}

func TestTryCommands(t *testing.T) {
	const base = "http://127.0.0.1:8080"
	tests := []struct {
		name  string
		cfg   config
		demo  bool
		first string // the first command
		lines int
		also  string // in a command or comment
	}{
		{"cookie, demo", config{policy: "cookie"}, true, "curl -c jar -b jar " + base + "/", 4, "-d name=alice"},
		{"cookie", config{policy: "cookie"}, false, "curl -c jar -b jar " + base + "/", 1, "the proxy's cookie"},
		{"appcookie", config{policy: "appcookie", appCookie: "JSESSIONID"}, false, "curl -c jar -b jar " + base + "/", 1, "JSESSIONID"},
		{"header, demo", config{policy: "header", header: "X-Api-Key", picker: "leastconn"}, true, "curl -H 'X-Api-Key: k1' " + base + "/whoami", 3, "leastconn"},
		{"header with a quote", config{policy: "header", header: "X'Key"}, false, `curl -H 'X'\''Key: k1' ` + base + "/", 3, ""},
		{"query, demo", config{policy: "query", query: "key"}, true, "curl '" + base + "/whoami?key=k1'", 3, ""},
		{"query with a space", config{policy: "query", query: "tenant id"}, false, "curl '" + base + "/?tenant+id=k1'", 3, ""},
		{"ip", config{policy: "ip"}, true, "curl " + base + "/whoami", 1, "your address"},
		{"ip behind proxies", config{policy: "ip", trusted: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}, true, "curl " + base + "/whoami", 2, "X-Forwarded-For"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tryCommands(tt.cfg, base, tt.demo)
			require.Len(t, got, tt.lines)
			assert.Equal(t, tt.first, got[0][0])
			var all strings.Builder
			for _, c := range got {
				all.WriteString(c[0] + " # " + c[1] + "\n")
			}
			assert.Contains(t, all.String(), tt.also)
		})
	}
}
