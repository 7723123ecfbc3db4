package sticky_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/sticky"
)

// protocolServer is a backend that streams, sends trailers and accepts an
// "echo" protocol upgrade, like a WebSocket.
func protocolServer(t *testing.T, name string, release <-chan struct{}) backend.Config {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "first")
		http.NewResponseController(w).Flush()
		<-release
		fmt.Fprintln(w, "second")
	})
	mux.HandleFunc("/trailer", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Checksum")
		fmt.Fprint(w, "body")
		w.Header().Set("X-Checksum", "abc123")
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "echo" {
			http.Error(w, "upgrade required", http.StatusUpgradeRequired)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\nX-Served-By: %s\r\n\r\n", name)
		if brw.Flush() != nil {
			return
		}
		for {
			line, err := brw.ReadString('\n')
			if err != nil {
				return
			}
			brw.WriteString(line)
			if brw.Flush() != nil {
				return
			}
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return backend.Config{ID: name, URL: srv.URL}
}

// within fails the test if f does not return in time: a guard against a
// hang, not a timing assertion.
func within(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: no progress after 10s", what)
	}
}

func TestStreamingAndTrailersPassThrough(t *testing.T) {
	release := make(chan struct{})
	set, err := backend.NewSet([]backend.Config{protocolServer(t, "p1", release)})
	require.NoError(t, err)
	h, err := sticky.New(set, newCookie(t))
	require.NoError(t, err)
	base := front(t, h)

	t.Run("flushed chunks arrive before the response ends", func(t *testing.T) {
		resp, err := http.Get(base + "/stream")
		require.NoError(t, err)
		defer resp.Body.Close()
		r := bufio.NewReader(resp.Body)
		within(t, "first chunk", func() {
			line, err := r.ReadString('\n')
			assert.NoError(t, err)
			assert.Equal(t, "first\n", line)
		})
		close(release)
		rest, err := io.ReadAll(r)
		require.NoError(t, err)
		assert.Equal(t, "second\n", string(rest))
	})

	t.Run("trailers", func(t *testing.T) {
		resp, err := http.Get(base + "/trailer")
		require.NoError(t, err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		assert.Equal(t, "body", string(body))
		assert.Equal(t, "abc123", resp.Trailer.Get("X-Checksum"))
	})
}

func TestUpgradeStaysBoundAndCountsUntilClosed(t *testing.T) {
	set, err := backend.NewSet([]backend.Config{
		protocolServer(t, "p1", nil),
		protocolServer(t, "p2", nil),
		protocolServer(t, "p3", nil),
	})
	require.NoError(t, err)
	h, err := sticky.New(set, newCookie(t))
	require.NoError(t, err)
	addr := strings.TrimPrefix(front(t, h), "http://")

	// upgrade opens an echo connection, optionally with a cookie, and
	// returns it with the 101 response.
	upgrade := func(cookie string) (net.Conn, *bufio.Reader, *http.Response) {
		conn, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		t.Cleanup(func() { conn.Close() })
		req := "GET /echo HTTP/1.1\r\nHost: test\r\nConnection: Upgrade\r\nUpgrade: echo\r\n"
		if cookie != "" {
			req += "Cookie: affinity=" + cookie + "\r\n"
		}
		_, err = io.WriteString(conn, req+"\r\n")
		require.NoError(t, err)
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		require.NoError(t, err)
		require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
		return conn, br, resp
	}

	conn, br, resp := upgrade("")
	served := resp.Header.Get("X-Served-By")
	ck := balancerCookie(resp.Header, "affinity")
	require.NotNil(t, ck, "101 response carries no binding")

	_, err = io.WriteString(conn, "ping\n")
	require.NoError(t, err)
	line, err := br.ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "ping\n", line)
	assert.EqualValues(t, 1, set.Snapshot().Lookup(served).InFlight(), "open upgraded connection not counted")

	for range 5 {
		c, _, r := upgrade(ck.Value)
		assert.Equal(t, served, r.Header.Get("X-Served-By"), "upgrade left its bound backend")
		c.Close()
	}
	conn.Close()
	require.Eventually(t, func() bool {
		for _, b := range set.Snapshot().Backends() {
			if b.InFlight() != 0 {
				return false
			}
		}
		return true
	}, 10*time.Second, 5*time.Millisecond, "closed connections still counted")
}
