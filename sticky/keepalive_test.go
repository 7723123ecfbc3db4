package sticky_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/balancer"
	"github.com/affinitylb/affinity/sticky"
)

// closingBackend serves HTTP/1.1 on 127.0.0.1 as a server whose idle
// timeout fires just as a reused connection's next request arrives: on
// each connection it answers the first request, keeping the connection
// open, and closes it on reading the second, unanswered. Every request on
// a new connection is answered. It returns its config and a count of the
// requests it answered.
func closingBackend(t *testing.T, id string) (backend.Config, func() int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var mu sync.Mutex
	answered := 0
	var conns []net.Conn
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				br := bufio.NewReader(c)
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				req.Body.Close()
				mu.Lock()
				answered++
				mu.Unlock()
				resp := &http.Response{StatusCode: http.StatusOK, ProtoMajor: 1, ProtoMinor: 1,
					Header: http.Header{"X-Served-By": {id}}, ContentLength: 2}
				resp.Body = io.NopCloser(strings.NewReader("ok"))
				if err := resp.Write(c); err != nil {
					return
				}
				_, _ = http.ReadRequest(br) // the second request: closed unanswered
			}()
		}
	}()
	return backend.Config{ID: id, URL: "http://" + ln.Addr().String()}, func() int {
		mu.Lock()
		defer mu.Unlock()
		return answered
	}
}

// TestReusedConnectionClosedKeepsTheBinding checks that a bound client
// whose request meets a connection its backend closed while idle (the
// backend still serves: it answers on a new connection) stays bound to its
// backend: the request may be answered elsewhere, as net/http's Transport
// would have sent it again, but no response re-binds the client, its next
// requests reach its backend again, and the backend, which answers the
// requests between, is not ejected.
func TestReusedConnectionClosedKeepsTheBinding(t *testing.T) {
	aCfg, answered := closingBackend(t, "a")
	bCfg, _ := recordingBackend(t, "b", http.StatusOK)
	set, err := backend.NewSet([]backend.Config{aCfg, bCfg})
	require.NoError(t, err)
	pol := newCookie(t)
	h, err := sticky.New(set, pol, sticky.WithPicker(balancer.PickerFunc(func(info balancer.Info) (*backend.Backend, error) {
		if len(info.Tried) == 0 {
			return info.Snapshot.Lookup("a"), nil // new clients start on a
		}
		return info.Snapshot.Lookup("b"), nil
	})))
	require.NoError(t, err)
	c := newClient(t, true)
	base := front(t, h)

	require.Equal(t, "a", get(t, c, base+"/").server)
	for i := range 4 {
		w := get(t, c, base+"/")
		require.Equal(t, http.StatusOK, w.status)
		assert.Nil(t, balancerCookie(w.header, pol.Name()), "request %d re-bound the client to %s", i+2, w.server)
	}
	assert.GreaterOrEqual(t, answered(), 2, "the client did not come back to its backend")
	assert.Equal(t, backend.Healthy, set.Snapshot().Lookup("a").State(), "closed idle connections ejected a backend that answers")
}

// TestReusedConnectionClosedStrictBinding checks that, with strict
// bindings, a bound client's GET that meets a connection its backend
// closed while idle is answered by that backend on a new connection, as
// net/http's Transport alone would answer it: the backend still serves,
// and sending a GET again to it is harmless, so the client gets no error.
func TestReusedConnectionClosedStrictBinding(t *testing.T) {
	aCfg, answered := closingBackend(t, "a")
	bCfg, _ := recordingBackend(t, "b", http.StatusOK)
	set, err := backend.NewSet([]backend.Config{aCfg, bCfg})
	require.NoError(t, err)
	pol := newCookie(t)
	h, err := sticky.New(set, pol, sticky.WithStrictBinding(true), sticky.WithPicker(balancer.PickerFunc(func(info balancer.Info) (*backend.Backend, error) {
		return info.Snapshot.Lookup("a"), nil // new clients start on a
	})))
	require.NoError(t, err)
	c := newClient(t, true)
	base := front(t, h)

	require.Equal(t, "a", get(t, c, base+"/").server)
	for i := range 4 {
		w := get(t, c, base+"/")
		assert.Equal(t, http.StatusOK, w.status, "request %d", i+2)
	}
	assert.Equal(t, 5, answered(), "the backend answered each request")
}

// TestReusedConnectionClosedOfARemovedBackend checks that a client whose
// backend left the set while its request was on the way, and then failed
// it on a reused connection, is bound to the backend that answered the
// retry: the binding is kept only for a backend that still serves its
// clients, and one that left will not.
func TestReusedConnectionClosedOfARemovedBackend(t *testing.T) {
	aCfg, _ := closingBackend(t, "a")
	bCfg, _ := recordingBackend(t, "b", http.StatusOK)
	set, err := backend.NewSet([]backend.Config{aCfg, bCfg})
	require.NoError(t, err)
	pol := newCookie(t)
	var once sync.Once
	h, err := sticky.New(set, pol, sticky.WithPicker(balancer.PickerFunc(func(info balancer.Info) (*backend.Backend, error) {
		if len(info.Tried) == 0 {
			if a := info.Snapshot.Lookup("a"); a != nil {
				return a, nil // new clients start on a
			}
		}
		return info.Snapshot.Lookup("b"), nil
	})), sticky.WithRewrite(func(pr *httputil.ProxyRequest) {
		if pr.In.Header.Get("X-Remove") != "" {
			once.Do(func() { // a leaves the set as the request is sent to it
				_, err := set.Remove("a")
				assert.NoError(t, err)
			})
		}
	}))
	require.NoError(t, err)
	c := newClient(t, true)
	base := front(t, h)
	require.Equal(t, "a", get(t, c, base+"/").server)

	req, err := http.NewRequest(http.MethodGet, base+"/", nil)
	require.NoError(t, err)
	req.Header.Set("X-Remove", "1")
	resp, err := c.Do(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "b", resp.Header.Get("X-Served-By"))
	assert.NotNil(t, balancerCookie(resp.Header, pol.Name()), "the client of a backend that left was not bound to the one that answered")
}
