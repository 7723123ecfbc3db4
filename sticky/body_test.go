package sticky_test

import (
	"bufio"
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

// TestClientBodyFaultsAreNotTheBackends checks that a client whose request
// body cannot be read (malformed, cut short, too slow) gets 400, or nothing
// if it left, and that this is not counted against the backend its cookie
// names: however often it is done, that backend is not ejected, the request
// is not retried elsewhere, and the backend's clients stay where they are.
func TestClientBodyFaultsAreNotTheBackends(t *testing.T) {
	half := strings.Repeat("x", 512)
	for _, tc := range []struct {
		name        string
		n           int           // requests, each on its own connection
		readTimeout time.Duration // the front server's, when the case needs one
		// send writes one request to c; it reports whether the client
		// waits for an answer.
		send func(c net.Conn, cookie string) (waits bool)
	}{
		{"malformed chunk size", 50, 0, func(c net.Conn, cookie string) bool {
			io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nCookie: "+cookie+"\r\n\r\nzz\r\n")
			return true
		}},
		{"half a Content-Length body, then gone", 50, 0, func(c net.Conn, cookie string) bool {
			io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1024\r\nCookie: "+cookie+"\r\n\r\n"+half)
			c.Close()
			return false
		}},
		{"body slower than the server's read timeout", 6, 100 * time.Millisecond, func(c net.Conn, cookie string) bool {
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
						assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "request %d", i)
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
