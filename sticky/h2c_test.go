package sticky_test

import (
	"fmt"
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

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/internal/demoapp"
	"github.com/affinitylb/affinity/sticky"
)

// h2cSeen is what an h2c backend saw of the requests it served.
type h2cSeen struct {
	mu     sync.Mutex
	protos []int    // each request's ProtoMajor
	hosts  []string // each request's Host
}

// serveH2C starts a demo app named name that speaks only HTTP/2 without
// TLS, as a gRPC server does, and returns its h2c:// config.
func serveH2C(t *testing.T, name string, seen *h2cSeen) backend.Config {
	t.Helper()
	app := demoapp.New(name)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.mu.Lock()
		seen.protos = append(seen.protos, r.ProtoMajor)
		seen.hosts = append(seen.hosts, r.Host)
		seen.mu.Unlock()
		app.ServeHTTP(w, r)
	}))
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	t.Cleanup(srv.Close)
	return backend.Config{ID: name, URL: "h2c://" + srv.Listener.Addr().String()}
}

func TestH2CBackends(t *testing.T) {
	for _, tc := range []struct {
		name         string
		preserveHost bool
	}{
		{"the backend's authority", false},
		{"the client's authority", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seen := map[string]*h2cSeen{"app1": {}, "app2": {}}
			cfgs := []backend.Config{serveH2C(t, "app1", seen["app1"]), serveH2C(t, "app2", seen["app2"])}
			set, err := backend.NewSet(cfgs)
			require.NoError(t, err)
			h, err := sticky.New(set, newCookie(t), sticky.WithPreserveHost(tc.preserveHost))
			require.NoError(t, err)
			srv := frontHTTP2(t, h)
			c := srv.Client()
			c.Jar = newClient(t, true).Jar

			first := get(t, c, srv.URL+"/whoami")
			require.Equal(t, http.StatusOK, first.status, first.body)
			name := first.header.Get("X-Served-By")
			require.Contains(t, seen, name)
			for range 5 {
				w := get(t, c, srv.URL+"/whoami")
				assert.Equal(t, http.StatusOK, w.status)
				assert.Equal(t, name, w.header.Get("X-Served-By"), "the cookie's backend")
			}
			other := map[string]string{"app1": "app2", "app2": "app1"}[name]
			for range 4 { // cookie-less clients of their own: least connections alternates
				w := get(t, newFrontClient(t, srv), srv.URL+"/whoami")
				assert.Equal(t, http.StatusOK, w.status)
			}

			front, err := url.Parse(srv.URL)
			require.NoError(t, err)
			for id, s := range seen {
				s.mu.Lock()
				for _, p := range s.protos {
					assert.Equal(t, 2, p, "%s: a request's protocol", id)
				}
				want := strings.TrimPrefix(set.Snapshot().Lookup(id).URL().String(), "h2c://")
				if tc.preserveHost {
					want = front.Host
				}
				for _, host := range s.hosts {
					assert.Equal(t, want, host, "%s: a request's Host (:authority)", id)
				}
				s.mu.Unlock()
			}
			seen[other].mu.Lock()
			assert.NotEmpty(t, seen[other].protos, "the other backend served the cookie-less clients")
			seen[other].mu.Unlock()
		})
	}
}

// newFrontClient returns a cookie-less client of the HTTP/2 front srv,
// with a connection of its own.
func newFrontClient(t *testing.T, srv *httptest.Server) *http.Client {
	tr := srv.Client().Transport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// TestH2CFailingRequestIsExecutedAtMostTwice checks that a GET to h2c
// backends is executed at most twice, as over HTTP/1: its backend crashed
// under it, on a connection used before, and it is replayed on one other
// backend, once, though each backend it reaches crashes too.
func TestH2CFailingRequestIsExecutedAtMostTwice(t *testing.T) {
	var executed atomic.Int32
	var cfgs []backend.Config
	for i := 1; i <= 3; i++ {
		var srv *httptest.Server
		srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/fault" {
				executed.Add(1)
				srv.Listener.Close() // crashes, as a process the request killed would
				srv.CloseClientConnections()
				<-r.Context().Done()
				return
			}
			fmt.Fprintln(w, "ok")
		}))
		srv.Config.Protocols = new(http.Protocols)
		srv.Config.Protocols.SetUnencryptedHTTP2(true)
		srv.Start()
		t.Cleanup(srv.Close)
		cfgs = append(cfgs, backend.Config{ID: fmt.Sprintf("app%d", i), URL: "h2c://" + srv.Listener.Addr().String()})
	}
	set, err := backend.NewSet(cfgs)
	require.NoError(t, err)
	h, err := sticky.New(set, newCookie(t))
	require.NoError(t, err)
	base := front(t, h)
	for range 6 { // a connection to each backend, to be reused
		assert.Equal(t, http.StatusOK, get(t, newClient(t, false), base+"/").status)
	}

	w := get(t, newClient(t, false), base+"/fault")
	assert.Equal(t, http.StatusBadGateway, w.status, w.body)
	assert.Equal(t, int32(2), executed.Load(), "times the GET was executed")
}

// TestH2CBackendDeclinesUpgrades checks that a request asking for an
// upgrade (a WebSocket's handshake), which HTTP/2 cannot carry, reaches an
// h2c backend without it and gets its answer, as from a backend that
// declines the upgrade: more such requests than an ejection takes leave
// the backend healthy, with no failure counted.
func TestH2CBackendDeclinesUpgrades(t *testing.T) {
	seen := &h2cSeen{}
	set, err := backend.NewSet([]backend.Config{serveH2C(t, "app1", seen)})
	require.NoError(t, err)
	f := &failures{n: map[string]int{}}
	h, err := sticky.New(set, newCookie(t), sticky.WithObserver(f))
	require.NoError(t, err)
	base := front(t, h)
	for range 6 {
		req, err := http.NewRequest(http.MethodGet, base+"/whoami", nil)
		require.NoError(t, err)
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Upgrade", "websocket")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, "app1", resp.Header.Get("X-Served-By"))
	}
	assert.Zero(t, f.of("app1"), "failures counted against the backend")
	assert.Equal(t, backend.Healthy, set.Snapshot().Lookup("app1").State())
	seen.mu.Lock()
	defer seen.mu.Unlock()
	assert.Len(t, seen.protos, 6, "requests the backend served")
}

// TestH2CBackendBeyondItsStreamLimit checks that an h2c backend that
// takes few streams on a connection is sent more requests at once than
// that, on more connections, none of them failed by the replay guard,
// which an HTTP/2 transport's own dialing must not trip.
func TestH2CBackendBeyondItsStreamLimit(t *testing.T) {
	const streams, requests = 2, 12
	var inFlight atomic.Int32
	release := make(chan struct{})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inFlight.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Config.HTTP2 = &http.HTTP2Config{MaxConcurrentStreams: streams}
	srv.Start()
	t.Cleanup(srv.Close)
	set, err := backend.NewSet([]backend.Config{{ID: "a", URL: "h2c://" + srv.Listener.Addr().String()}})
	require.NoError(t, err)
	f := &failures{n: map[string]int{}}
	h, err := sticky.New(set, newCookie(t), sticky.WithObserver(f))
	require.NoError(t, err)
	base := front(t, h)

	statuses := make(chan int, requests)
	var wg sync.WaitGroup
	for range requests {
		wg.Go(func() {
			resp, err := http.Get(base + "/")
			if !assert.NoError(t, err) {
				statuses <- 0
				return
			}
			resp.Body.Close()
			statuses <- resp.StatusCode
		})
	}
	assert.Eventually(t, func() bool { return inFlight.Load() == requests }, 10*time.Second, time.Millisecond,
		"requests at the backend at once, %d streams a connection", streams)
	close(release)
	wg.Wait()
	close(statuses)
	for s := range statuses {
		assert.Equal(t, http.StatusOK, s)
	}
	assert.Zero(t, f.of("a"), "failures counted against the backend")
}
