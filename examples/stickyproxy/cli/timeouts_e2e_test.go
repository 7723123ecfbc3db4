package cli

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestEndToEndTimeouts checks -body-timeout and -write-timeout through the
// proxy: a client that stops sending its body gets 408 and its backend is
// not blamed, one that stops reading is cut off and its request counted
// out; a client that keeps going is served.
func TestEndToEndTimeouts(t *testing.T) {
	ended := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Served-By", "app")
		if r.URL.Path == "/big" {
			defer func() { ended <- struct{}{} }()
			chunk := make([]byte, 32<<10)
			for {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		}
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		io.WriteString(w, "got "+string(b))
	}))
	t.Cleanup(srv.Close)
	p := startProxy(t, "-key", testKey, "-backends", "app="+srv.URL, "-admin", "127.0.0.1:0",
		"-body-timeout", "200ms", "-write-timeout", "200ms")
	addr := strings.TrimPrefix(p.url, "http://")
	dial := func(t *testing.T, req string) (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second))) // against a hang
		_, err = io.WriteString(c, req)
		require.NoError(t, err)
		return c, bufio.NewReader(c)
	}
	inflight := func() int64 {
		_, body := callAdmin(t, p, http.MethodGet, "/backends/app", "")
		var b backendJSON
		require.NoError(t, json.Unmarshal([]byte(body), &b), body)
		return b.InFlight
	}

	t.Run("a body that stops", func(t *testing.T) {
		for i := range 6 { // more than the 5 failures in a row that would eject
			_, br := dial(t, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nx")
			resp, err := http.ReadResponse(br, nil)
			require.NoError(t, err, "request %d", i)
			resp.Body.Close()
			assert.Equal(t, http.StatusRequestTimeout, resp.StatusCode, "request %d", i)
		}
		assert.Equal(t, "healthy", backendState(t, p, "app"))
	})

	t.Run("a slow but steady body", func(t *testing.T) {
		c, br := dial(t, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n")
		go func() {
			for range 10 {
				time.Sleep(50 * time.Millisecond)
				if _, err := io.WriteString(c, "y"); err != nil {
					return
				}
			}
		}()
		resp, err := http.ReadResponse(br, nil)
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, "got yyyyyyyyyy", string(body))
	})

	t.Run("a client that never reads", func(t *testing.T) {
		dial(t, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
		select {
		case <-ended:
		case <-time.After(10 * time.Second):
			t.Fatal("the backend's request did not end within 10s")
		}
		assert.Eventually(t, func() bool { return inflight() == 0 }, 10*time.Second, 10*time.Millisecond, "still counted in flight")
	})
}
