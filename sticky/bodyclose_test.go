package sticky_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/sticky"
)

// heldConn is a connection to a backend whose Write of the request body's
// last bytes returns only once release is closed, and which reports its
// Close on closed.
type heldConn struct {
	net.Conn
	tail    []byte
	release <-chan struct{}
	closed  chan struct{}
	once    sync.Once
}

func (c *heldConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if bytes.HasSuffix(p, c.tail) {
		<-c.release
	}
	return n, err
}

func (c *heldConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

// TestBodyEndNotReadAfterTheServerClosedIt checks that a backend's answer
// to a request with a Content-Length body is delivered whole when the
// answer's header reaches the client before the transport has checked
// the body's end: net/http's server then reads the rest of the client's
// body itself and closes it, and a transport that read the closed body
// once more, past its declared length, failed the request's write and cut
// the connection to the backend, and so the answer, short. PHP's built-in
// server, answering as soon as it has the body, hits this under load.
func TestBodyEndNotReadAfterTheServerClosedIt(t *testing.T) {
	body := strings.Repeat("x", 100) + "END-OF-BODY"
	finish := make(chan struct{})
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil || string(b) != body {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		io.WriteString(w, "part1 ")
		w.(http.Flusher).Flush()
		<-finish
		io.WriteString(w, "part2")
	}))
	t.Cleanup(app.Close)
	t.Cleanup(func() {
		select {
		case <-finish:
		default:
			close(finish)
		}
	})

	release := make(chan struct{})
	closed := make(chan struct{})
	tr := sticky.DefaultTransport()
	dial := tr.DialContext
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &heldConn{Conn: c, tail: []byte("END-OF-BODY"), release: release, closed: closed}, nil
	}
	t.Cleanup(tr.CloseIdleConnections)

	set, err := backend.NewSet([]backend.Config{{ID: "app1", URL: app.URL}})
	require.NoError(t, err)
	h, err := sticky.New(set, newCookie(t), sticky.WithTransport(tr))
	require.NoError(t, err)
	base := front(t, h)

	// A body the front server cannot tell is in memory, so that it is
	// read as it arrives, as a client's is.
	req, err := http.NewRequest(http.MethodPost, base+"/", io.MultiReader(strings.NewReader(body)))
	require.NoError(t, err)
	req.ContentLength = int64(len(body))
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { res.Body.Close() })
	require.Equal(t, http.StatusOK, res.StatusCode)

	// The header is at the client, so the front server has closed the
	// request's body; now the transport may go on from the body's last
	// bytes.
	close(release)
	select {
	case <-closed: // the connection was cut: part2 can only be lost
	case <-time.After(time.Second): // not cut, as it should be
	}
	close(finish)
	got, err := io.ReadAll(res.Body)
	assert.NoError(t, err)
	assert.Equal(t, "part1 part2", string(got))
}
