package sticky_test

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/sticky"
)

// TestClientBodyFaultsAreNotTheBackends checks that a client whose request
// body cannot be read (malformed, cut short) gets 400, one whose body is
// too slow 408, or nothing if it left, and that this is not counted against the backend its cookie
// names: however often it is done, that backend is not ejected, the request
// is not retried elsewhere, and the backend's clients stay where they are.
func TestClientBodyFaultsAreNotTheBackends(t *testing.T) {
	half := strings.Repeat("x", 512)
	for _, tc := range []struct {
		name        string
		n           int           // requests, each on its own connection
		readTimeout time.Duration // the front server's, when the case needs one
		wantCode    int           // the answer, if the client waits for one
		// send writes one request to c; it reports whether the client
		// waits for an answer.
		send func(c net.Conn, cookie string) (waits bool)
	}{
		{"malformed chunk size", 50, 0, http.StatusBadRequest, func(c net.Conn, cookie string) bool {
			io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nCookie: "+cookie+"\r\n\r\nzz\r\n")
			return true
		}},
		{"half a Content-Length body, then gone", 50, 0, 0, func(c net.Conn, cookie string) bool {
			io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1024\r\nCookie: "+cookie+"\r\n\r\n"+half)
			c.Close()
			return false
		}},
		{"body slower than the server's read timeout", 6, 100 * time.Millisecond, http.StatusRequestTimeout, func(c net.Conn, cookie string) bool {
			io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1024\r\nCookie: "+cookie+"\r\n\r\n"+half)
			return true
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPool(t, 2) // the default ejection: 5 failures in a row
			rec := &recorder{}
			ck := newCookie(t)
			h, err := sticky.New(p.set, ck, sticky.WithObserver(rec))
			require.NoError(t, err)
			served := make(chan struct{}, 1024) // a signal per request that has been served
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				h.ServeHTTP(w, r)
				served <- struct{}{}
			}))
			srv.Config.ReadTimeout = tc.readTimeout
			srv.Start()
			t.Cleanup(srv.Close)
			base := srv.URL
			cs := bindClients(t, base, 10)
			for range cs {
				<-served
			}
			victim := cs[0].servers[0]
			cookie := ck.Name() + "=" + ck.Issue(victim)
			rec.take()

			for i := range tc.n {
				c, err := net.Dial("tcp", srv.Listener.Addr().String())
				require.NoError(t, err)
				require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second))) // against a hang
				if tc.send(c, cookie) {
					resp, err := http.ReadResponse(bufio.NewReader(c), nil)
					if err == nil { // else the connection was closed: as good
						assert.Equal(t, tc.wantCode, resp.StatusCode, "request %d", i)
						assert.Nil(t, balancerCookie(resp.Header, ck.Name()), "request %d was bound", i)
						resp.Body.Close()
					}
				}
				within(t, "the request", func() { <-served })
				c.Close()
			}

			assert.Equal(t, backend.Healthy, p.set.Snapshot().Lookup(victim).State(), "the client's fault ejected its backend")
			for _, e := range rec.take() {
				assert.NotContains(t, e, "failure", "counted against the backend")
				assert.NotContains(t, e, "retry", "retried on another backend")
			}
			rounds(t, base, cs, 2, nil)
			for i, c := range cs {
				assert.Zero(t, c.moves(), "client %d moved: %v", i, c.servers)
			}
		})
	}
}

// bodyServer is a backend that keeps the body of every request it answers.
type bodyServer struct {
	mu     sync.Mutex
	bodies [][]byte
}

func (s *bodyServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.bodies = append(s.bodies, b)
	s.mu.Unlock()
	w.Header().Set("X-Served-By", "other")
}

func (s *bodyServer) received() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bodies
}

// TestRequestsWithABodyAreRetriedOnlyIfNothingWasSent checks that a
// request whose body was not read when its backend failed goes to another
// backend, whatever its method, with its body whole, and that one whose
// body was read is never sent again.
func TestRequestsWithABodyAreRetriedOnlyIfNothingWasSent(t *testing.T) {
	payload := bytes.Repeat([]byte("0123456789abcdef"), 64) // 1 KiB
	refused := func(t *testing.T, _ *atomic.Int32) string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		require.NoError(t, l.Close())
		return "http://" + l.Addr().String()
	}
	readThenReset := func(t *testing.T, executed *atomic.Int32) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			conn, brw, err := http.NewResponseController(w).Hijack()
			if !assert.NoError(t, err) {
				return
			}
			_, err = io.ReadFull(brw, make([]byte, len(payload)))
			assert.NoError(t, err)
			executed.Add(1)
			assert.NoError(t, conn.(*net.TCPConn).SetLinger(0)) // close sends RST
			conn.Close()
		}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	for _, tc := range []struct {
		name      string
		method    string
		first     func(t *testing.T, executed *atomic.Int32) string // the bound backend's URL
		wantCode  int
		wantFirst int32 // times the bound backend executed the request
		wantOther int   // times the other one did
	}{
		{"POST, connection refused", http.MethodPost, refused, http.StatusOK, 0, 1},
		{"PUT, connection refused", http.MethodPut, refused, http.StatusOK, 0, 1},
		{"POST, body read, then reset", http.MethodPost, readThenReset, http.StatusBadGateway, 1, 0},
		{"PUT, body read, then reset", http.MethodPut, readThenReset, http.StatusBadGateway, 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var executed atomic.Int32
			other := &bodyServer{}
			srv := httptest.NewServer(other)
			t.Cleanup(srv.Close)
			set, err := backend.NewSet([]backend.Config{
				{ID: "first", URL: tc.first(t, &executed)},
				{ID: "other", URL: srv.URL},
			})
			require.NoError(t, err)
			ck := newCookie(t)
			rec := &recorder{}
			h, err := sticky.New(set, ck, sticky.WithObserver(rec))
			require.NoError(t, err)

			req, err := http.NewRequest(tc.method, front(t, h)+"/", bytes.NewReader(payload))
			require.NoError(t, err)
			req.AddCookie(&http.Cookie{Name: ck.Name(), Value: ck.Issue("first")})
			resp, err := newClient(t, false).Do(req)
			require.NoError(t, err)
			_, err = io.Copy(io.Discard, resp.Body)
			require.NoError(t, err)
			require.NoError(t, resp.Body.Close())

			assert.Equal(t, tc.wantCode, resp.StatusCode)
			assert.Equal(t, tc.wantFirst, executed.Load(), "executions by the bound backend")
			got := other.received()
			assert.Len(t, got, tc.wantOther, "executions by the other backend")
			for _, b := range got {
				assert.Equal(t, payload, b, "the retried body")
			}
			var retries []string
			for _, e := range rec.take() {
				if strings.HasPrefix(e, "retry") {
					retries = append(retries, e)
				}
			}
			if tc.wantOther > 0 {
				assert.Equal(t, []string{"retry first->other"}, retries)
			} else {
				assert.Empty(t, retries, "a request whose body was sent was tried again")
			}
		})
	}
}
