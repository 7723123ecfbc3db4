package sticky_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/cookie"
	"github.com/affinitylb/affinity/internal/demoapp"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

// pool is a set of demo app servers on 127.0.0.1 and a backend set over them.
type pool struct {
	set     *backend.Set
	apps    map[string]*demoapp.App
	servers map[string]*httptest.Server
	cfgs    []backend.Config
}

func newPool(t *testing.T, n int, opts ...backend.Option) *pool {
	t.Helper()
	p := &pool{apps: map[string]*demoapp.App{}, servers: map[string]*httptest.Server{}}
	for i := 1; i <= n; i++ {
		p.cfgs = append(p.cfgs, p.start(t, fmt.Sprintf("app%d", i)))
	}
	set, err := backend.NewSet(p.cfgs, opts...)
	require.NoError(t, err)
	p.set = set
	return p
}

// start runs one more demo app and returns its config, without adding it.
func (p *pool) start(t *testing.T, name string) backend.Config {
	t.Helper()
	app := demoapp.New(name)
	srv := httptest.NewServer(app)
	t.Cleanup(srv.Close)
	p.apps[name] = app
	p.servers[name] = srv
	return backend.Config{ID: name, URL: srv.URL}
}

// kill stops the named server as a crash would: no new connections, and
// those open are cut.
func (p *pool) kill(t *testing.T, name string) {
	t.Helper()
	srv := p.servers[name]
	require.NoError(t, srv.Listener.Close())
	srv.CloseClientConnections()
}

// clock is a settable time source for cookie expiry.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newCookie(t testing.TB, opts ...cookie.Option) *cookie.Policy {
	t.Helper()
	c, err := cookie.New([][]byte{testKey}, opts...)
	require.NoError(t, err)
	return c
}

// front serves h on 127.0.0.1 and returns its base URL.
func front(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// frontHTTP2 serves h over TLS with HTTP/2 on 127.0.0.1; its Client
// multiplexes requests over one connection.
func frontHTTP2(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// newClient returns a client with its own cookie jar (nil jar: cookie-less).
func newClient(t *testing.T, withJar bool) *http.Client {
	t.Helper()
	c := &http.Client{
		// Redirects stay visible to the test.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	if withJar {
		jar, err := cookiejar.New(nil)
		require.NoError(t, err)
		c.Jar = jar
	}
	return c
}

// peerClient returns newClient's client, whose connections come from the
// address 127.0.0.n (1 to 254): the handler tells each n from the others
// as a client of its own, as passive health checking needs to eject a
// backend on failures that reached it (see backend.Ejection).
func peerClient(t *testing.T, withJar bool, n int) *http.Client {
	t.Helper()
	require.True(t, n >= 1 && n <= 254, "127.0.0.%d", n)
	c := newClient(t, withJar)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(n))}}
	tr.DialContext = d.DialContext
	t.Cleanup(tr.CloseIdleConnections)
	c.Transport = tr
	return c
}

// peers counts the addresses nextPeer has handed out.
var peers atomic.Int64

// nextPeer returns the last byte of an address for peerClient: 1 to 254,
// each in turn.
func nextPeer() int { return int((peers.Add(1)-1)%254) + 1 }

// whoami is a /whoami answer: which server, and whose session.
type whoami struct {
	status int
	server string
	user   string
	header http.Header
	body   string
}

func get(t *testing.T, c *http.Client, u string, cookies ...*http.Cookie) whoami {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	require.NoError(t, err)
	for _, ck := range cookies {
		req.AddCookie(ck)
	}
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	w := whoami{status: resp.StatusCode, server: resp.Header.Get("X-Served-By"), header: resp.Header, body: string(body)}
	for _, f := range strings.Fields(string(body)) {
		if v, ok := strings.CutPrefix(f, "user="); ok {
			w.user = v
		}
	}
	return w
}

func login(t *testing.T, c *http.Client, base, name string) {
	t.Helper()
	resp, err := c.PostForm(base+"/login", url.Values{"name": {name}})
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
}

// balancerCookie returns the response's Set-Cookie for the policy's cookie.
func balancerCookie(h http.Header, name string) *http.Cookie {
	for _, ck := range (&http.Response{Header: h}).Cookies() {
		if ck.Name == name {
			return ck
		}
	}
	return nil
}

// barrier holds the requests of a round until n of them have arrived, so
// that all n are in flight together.
type barrier struct {
	mu      sync.Mutex
	n       int
	arrived int
	all     chan struct{}
}

// reset starts a round of n requests.
func (b *barrier) reset(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.n, b.arrived, b.all = n, 0, make(chan struct{})
}

// wait counts a request in and returns once the round's n have arrived,
// or after 10 seconds, a guard against a hang.
func (b *barrier) wait() {
	b.mu.Lock()
	all := b.all
	if b.arrived++; b.arrived == b.n {
		close(all)
	}
	b.mu.Unlock()
	select {
	case <-all:
	case <-time.After(10 * time.Second):
	}
}

// heldPool returns a set of three backends on 127.0.0.1 that hold each
// request at bar and answer with X-Served-By.
func heldPool(t *testing.T, bar *barrier) *backend.Set {
	t.Helper()
	var cfgs []backend.Config
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("app%d", i)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			bar.wait()
			w.Header().Set("X-Served-By", name)
		}))
		t.Cleanup(srv.Close)
		cfgs = append(cfgs, backend.Config{ID: name, URL: srv.URL})
	}
	set, err := backend.NewSet(cfgs)
	require.NoError(t, err)
	return set
}
