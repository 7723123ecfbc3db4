package sticky_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/sticky"
)

// ioTimeout is the body and write timeout of these tests: short, so that
// they end soon, and long beside the steps of the clients that keep
// moving.
const ioTimeout = 200 * time.Millisecond

func TestTimeoutOptionsAreValidated(t *testing.T) {
	set, err := backend.NewSet([]backend.Config{{ID: "app1", URL: "http://127.0.0.1:1"}})
	require.NoError(t, err)
	for _, tc := range []struct {
		name    string
		opt     sticky.Option
		wantErr string
	}{
		{"body timeout off", sticky.WithBodyTimeout(0), ""},
		{"body timeout", sticky.WithBodyTimeout(time.Second), ""},
		{"negative body timeout", sticky.WithBodyTimeout(-time.Second), "sticky: WithBodyTimeout(-1s): negative"},
		{"write timeout off", sticky.WithWriteTimeout(0), ""},
		{"write timeout", sticky.WithWriteTimeout(time.Second), ""},
		{"negative write timeout", sticky.WithWriteTimeout(-time.Second), "sticky: WithWriteTimeout(-1s): negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := sticky.New(set, newCookie(t), tc.opt)
			if tc.wantErr == "" {
				assert.NoError(t, err)
			} else {
				assert.EqualError(t, err, tc.wantErr)
			}
		})
	}
}

// TestBodyTimeout checks that a client that stops sending its request's
// body is answered 408 once the body timeout has passed without a byte, and
// that this is not held against the backend (no failure, no retry, not
// ejected, counted out), while a client that keeps sending, slowly, for
// several times the timeout is served.
func TestBodyTimeout(t *testing.T) {
	for _, tc := range []struct {
		name string
		// send writes the request's body to c, Content-Length 20.
		send     func(c net.Conn)
		n        int // requests, each on its own connection
		wantCode int
		wantBody string // what the backend received, when served
	}{
		{"one byte, then nothing", func(c net.Conn) { io.WriteString(c, "x") }, 6, http.StatusRequestTimeout, ""},
		{"a byte every quarter of the timeout", func(c net.Conn) {
			for range 20 {
				time.Sleep(ioTimeout / 4)
				if _, err := io.WriteString(c, "y"); err != nil {
					return
				}
			}
		}, 1, http.StatusOK, strings.Repeat("y", 20)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			first, other := &bodyServer{}, &bodyServer{}
			fs, ts := httptest.NewServer(first), httptest.NewServer(other)
			t.Cleanup(fs.Close)
			t.Cleanup(ts.Close)
			set, err := backend.NewSet([]backend.Config{{ID: "first", URL: fs.URL}, {ID: "other", URL: ts.URL}})
			require.NoError(t, err)
			ck := newCookie(t)
			rec := &recorder{}
			h, err := sticky.New(set, ck, sticky.WithObserver(rec), sticky.WithBodyTimeout(ioTimeout))
			require.NoError(t, err)
			addr := strings.TrimPrefix(front(t, h), "http://")

			for i := range tc.n { // 6: more than the 5 failures in a row that eject
				c, err := net.Dial("tcp", addr)
				require.NoError(t, err)
				t.Cleanup(func() { c.Close() })
				require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second))) // against a hang
				_, err = io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 20\r\nCookie: "+ck.Name()+"="+ck.Issue("first")+"\r\n\r\n")
				require.NoError(t, err)
				go tc.send(c)
				resp, err := http.ReadResponse(bufio.NewReader(c), nil)
				require.NoError(t, err, "request %d", i)
				resp.Body.Close()
				assert.Equal(t, tc.wantCode, resp.StatusCode, "request %d", i)
				c.Close()
			}

			if tc.wantBody != "" {
				for _, b := range first.received() {
					assert.Equal(t, tc.wantBody, string(b))
				}
			} else {
				assert.Empty(t, first.received(), "the backend got a whole body")
			}
			assert.Empty(t, other.received(), "retried on another backend")
			for _, e := range rec.take() {
				assert.NotContains(t, e, "failure", "counted against the backend")
				assert.NotContains(t, e, "retry", "retried on another backend")
			}
			b := set.Snapshot().Lookup("first")
			assert.Equal(t, backend.Healthy, b.State())
			assert.Eventually(t, func() bool { return b.InFlight() == 0 }, 10*time.Second, 5*time.Millisecond, "still counted in flight")
		})
	}
}

// TestBodyTimeoutHTTP2 checks that the body timeout applies to one stream
// of an HTTP/2 connection.
func TestBodyTimeoutHTTP2(t *testing.T) {
	first := &bodyServer{}
	fs := httptest.NewServer(first)
	t.Cleanup(fs.Close)
	set, err := backend.NewSet([]backend.Config{{ID: "first", URL: fs.URL}})
	require.NoError(t, err)
	h, err := sticky.New(set, newCookie(t), sticky.WithBodyTimeout(ioTimeout))
	require.NoError(t, err)
	srv := frontHTTP2(t, h)
	client := srv.Client()
	client.Timeout = 10 * time.Second // against a hang

	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.Close() })
	go io.WriteString(pw, "x") // then nothing
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/", pr)
	require.NoError(t, err)
	resp, err := client.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 2, resp.ProtoMajor)
	assert.Equal(t, http.StatusRequestTimeout, resp.StatusCode)

	// The connection's other streams are unaffected.
	resp, err = client.Post(srv.URL+"/", "text/plain", strings.NewReader("whole"))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, [][]byte{[]byte("whole")}, first.received())
	assert.Equal(t, backend.Healthy, set.Snapshot().Lookup("first").State())
}

// TestWriteTimeoutHTTP2 checks that the write timeout cuts off one stream
// of an HTTP/2 connection whose client does not read it, and not the
// connection's other streams.
func TestWriteTimeoutHTTP2(t *testing.T) {
	ended := make(chan struct{}, 1)
	bs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/big" {
			io.WriteString(w, "small")
			return
		}
		defer func() { ended <- struct{}{} }()
		chunk := make([]byte, 32<<10)
		for {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	t.Cleanup(bs.Close)
	set, err := backend.NewSet([]backend.Config{{ID: "big", URL: bs.URL}})
	require.NoError(t, err)
	h, err := sticky.New(set, newCookie(t), sticky.WithWriteTimeout(ioTimeout))
	require.NoError(t, err)
	srv := frontHTTP2(t, h)
	client := srv.Client()

	resp, err := client.Get(srv.URL + "/big")
	require.NoError(t, err)
	require.Equal(t, 2, resp.ProtoMajor)
	t.Cleanup(func() { resp.Body.Close() }) // never read
	within(t, "the backend's request", func() { <-ended })
	assert.Eventually(t, func() bool { return set.Snapshot().Lookup("big").InFlight() == 0 }, 10*time.Second, 5*time.Millisecond, "still counted in flight")

	small, err := client.Get(srv.URL + "/small")
	require.NoError(t, err)
	body, err := io.ReadAll(small.Body)
	small.Body.Close()
	require.NoError(t, err)
	assert.Equal(t, "small", string(body), "the connection's other streams")
}

// TestWriteTimeout checks that a client that stops reading its response is
// cut off after the write timeout, ending the backend's request and
// counting it out, while responses that keep moving or pause between
// events are delivered whole.
func TestWriteTimeout(t *testing.T) {
	for _, tc := range []struct {
		name         string
		opts         []sticky.Option
		writeTimeout time.Duration // the server's
	}{
		{"a client that never reads a large response", []sticky.Option{sticky.WithWriteTimeout(ioTimeout)}, 0},
		{"the same, with the server's WriteTimeout shorter than the default", nil, ioTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ended := make(chan struct{})
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				defer close(ended)
				chunk := make([]byte, 32<<10)
				for {
					if _, err := w.Write(chunk); err != nil {
						return
					}
				}
			}))
			t.Cleanup(srv.Close)
			set, err := backend.NewSet([]backend.Config{{ID: "big", URL: srv.URL}})
			require.NoError(t, err)
			h, err := sticky.New(set, newCookie(t), tc.opts...)
			require.NoError(t, err)
			fr := httptest.NewUnstartedServer(h)
			fr.Config.WriteTimeout = tc.writeTimeout
			fr.Start()
			t.Cleanup(fr.Close)
			addr := fr.Listener.Addr().String()

			c, err := net.Dial("tcp", addr)
			require.NoError(t, err)
			t.Cleanup(func() { c.Close() })
			_, err = io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			require.NoError(t, err)
			within(t, "the backend's request", func() { <-ended })
			assert.Eventually(t, func() bool { return set.Snapshot().Lookup("big").InFlight() == 0 }, 10*time.Second, 5*time.Millisecond, "still counted in flight")
			// What was sent before the cut can still be read, then the
			// connection ends.
			require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
			_, err = io.Copy(io.Discard, c)
			assert.False(t, errors.Is(err, os.ErrDeadlineExceeded), "the connection was not cut")
		})
	}

	for _, tc := range []struct {
		name   string
		events int
		gap    time.Duration // between two events
	}{
		{"server-sent events every quarter of the timeout", 20, ioTimeout / 4},
		{"server-sent events further apart than the timeout", 3, 3 * ioTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				for i := range tc.events {
					if i > 0 {
						time.Sleep(tc.gap)
					}
					fmt.Fprintf(w, "data: %d\n\n", i)
					http.NewResponseController(w).Flush()
				}
			}))
			t.Cleanup(srv.Close)
			set, err := backend.NewSet([]backend.Config{{ID: "sse", URL: srv.URL}})
			require.NoError(t, err)
			h, err := sticky.New(set, newCookie(t), sticky.WithWriteTimeout(ioTimeout), sticky.WithBodyTimeout(ioTimeout))
			require.NoError(t, err)
			resp, err := newClient(t, false).Get(front(t, h) + "/")
			require.NoError(t, err)
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.NoError(t, err)
			var want strings.Builder
			for i := range tc.events {
				fmt.Fprintf(&want, "data: %d\n\n", i)
			}
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, want.String(), string(body))
		})
	}

	t.Run("an upgraded connection quiet for longer than the timeouts", func(t *testing.T) {
		set, err := backend.NewSet([]backend.Config{protocolServer(t, "p1", nil)})
		require.NoError(t, err)
		h, err := sticky.New(set, newCookie(t), sticky.WithWriteTimeout(ioTimeout), sticky.WithBodyTimeout(ioTimeout))
		require.NoError(t, err)
		conn, err := net.Dial("tcp", strings.TrimPrefix(front(t, h), "http://"))
		require.NoError(t, err)
		t.Cleanup(func() { conn.Close() })
		require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second))) // against a hang
		_, err = io.WriteString(conn, "POST /echo HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\nContent-Length: 2\r\n\r\n0\n")
		require.NoError(t, err)
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		require.NoError(t, err)
		require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
		line, err := br.ReadString('\n')
		require.NoError(t, err)
		require.Equal(t, "0\n", line, "the request's body, echoed")
		for _, msg := range []string{"ping\n", "pong\n"} {
			time.Sleep(3 * ioTimeout) // quiet both ways
			_, err = io.WriteString(conn, msg)
			require.NoError(t, err)
			line, err = br.ReadString('\n')
			require.NoError(t, err)
			assert.Equal(t, msg, line)
		}
	})
}
