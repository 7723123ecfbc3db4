package sticky_test

import (
	"crypto/tls"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/sticky"
)

// rawH2 is an HTTP/2 backend over TLS on 127.0.0.1, written frame by
// frame, that allows one stream per connection. It holds the first
// request it is sent; when a request arrives on another connection it
// answers the held one, then resets every later request with
// PROTOCOL_ERROR after counting it: as a server that executed a request
// and then failed its stream would.
type rawH2 struct {
	ln       net.Listener
	mu       sync.Mutex
	n        int // HEADERS frames seen
	held     func()
	first    chan struct{}
	executed atomic.Int32 // requests after the first
}

func newRawH2(t *testing.T, cfg *tls.Config) *rawH2 {
	t.Helper()
	cfg = cfg.Clone()
	cfg.NextProtos = []string{"h2"}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	require.NoError(t, err)
	s := &rawH2{ln: ln, first: make(chan struct{})}
	var conns sync.WaitGroup
	t.Cleanup(func() { ln.Close(); conns.Wait() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
			conns.Go(func() { s.serve(c) })
		}
	}()
	return s
}

func (s *rawH2) serve(c net.Conn) {
	var wmu sync.Mutex
	write := func(typ, flags byte, stream uint32, payload []byte) {
		wmu.Lock()
		defer wmu.Unlock()
		hdr := make([]byte, 9)
		hdr[0], hdr[1], hdr[2] = byte(len(payload)>>16), byte(len(payload)>>8), byte(len(payload))
		hdr[3], hdr[4] = typ, flags
		binary.BigEndian.PutUint32(hdr[5:], stream)
		c.Write(append(hdr, payload...))
	}
	preface := make([]byte, 24)
	if _, err := io.ReadFull(c, preface); err != nil {
		return
	}
	write(0x4, 0, 0, []byte{0, 0x3, 0, 0, 0, 1}) // SETTINGS: MAX_CONCURRENT_STREAMS 1
	for {
		hdr := make([]byte, 9)
		if _, err := io.ReadFull(c, hdr); err != nil {
			return
		}
		length := int(hdr[0])<<16 | int(hdr[1])<<8 | int(hdr[2])
		typ, flags, stream := hdr[3], hdr[4], binary.BigEndian.Uint32(hdr[5:])&0x7fffffff
		if _, err := io.CopyN(io.Discard, c, int64(length)); err != nil {
			return
		}
		switch {
		case typ == 0x4 && flags&0x1 == 0: // SETTINGS
			write(0x4, 0x1, 0, nil)
		case typ == 0x1: // HEADERS
			s.mu.Lock()
			s.n++
			n, held := s.n, s.held
			if n == 1 {
				s.held = func() { write(0x1, 0x5, stream, []byte{0x88}) } // :status 200, END_STREAM
				close(s.first)
			}
			s.mu.Unlock()
			if n == 1 {
				continue
			}
			s.executed.Add(1)
			if n == 2 && held != nil {
				held()
				time.Sleep(100 * time.Millisecond)
			}
			write(0x3, 0, stream, []byte{0, 0, 0, 0x1}) // RST_STREAM PROTOCOL_ERROR
		}
	}
}

// TestHTTP2RetriesCountTowardsTheLimit checks that a GET that an HTTPS
// backend speaking HTTP/2 executed and then reset is executed at most
// twice in all, counting the HTTP/2 transport's own retries: net/http's
// HTTP/2 code sends it again on another pooled connection to the same
// backend without asking the Proxy hook.
func TestHTTP2RetriesCountTowardsTheLimit(t *testing.T) {
	tlsSrv := httptest.NewUnstartedServer(http.NotFoundHandler())
	tlsSrv.EnableHTTP2 = true
	tlsSrv.StartTLS()
	t.Cleanup(tlsSrv.Close)
	a := newRawH2(t, tlsSrv.TLS)

	var atB atomic.Int32
	b := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fault" {
			atB.Add(1)
			panic(http.ErrAbortHandler)
		}
	}))
	b.EnableHTTP2 = true
	b.StartTLS()
	t.Cleanup(b.Close)

	set, err := backend.NewSet([]backend.Config{
		{ID: "a", URL: "https://" + a.ln.Addr().String()}, {ID: "b", URL: b.URL},
	}, backend.WithEjection(backend.Ejection{}))
	require.NoError(t, err)
	tr := sticky.DefaultTransport()
	tr.TLSClientConfig = tlsSrv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	ck := newCookie(t)
	h, err := sticky.New(set, ck, sticky.WithTransport(tr))
	require.NoError(t, err)
	base := front(t, h)
	toA := &http.Cookie{Name: ck.Name(), Value: ck.Issue("a")}
	c := &http.Client{Timeout: 10 * time.Second}
	do := func(path string) int {
		req, err := http.NewRequest(http.MethodGet, base+path, nil)
		require.NoError(t, err)
		req.AddCookie(toA)
		resp, err := c.Do(req)
		if !assert.NoError(t, err) {
			return 0
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}

	held := make(chan int, 1)
	go func() { held <- do("/hold") }() // takes a's first connection's one stream
	select {
	case <-a.first:
	case <-time.After(5 * time.Second):
		t.Fatal("the first request did not reach a")
	}
	do("/evict") // a's connection is full: this one goes elsewhere, a second connection opens next
	do("/fault")
	<-held
	assert.LessOrEqual(t, a.executed.Load()+atB.Load(), int32(2), "executions of one GET: %d at a, %d at b", a.executed.Load(), atB.Load())
}
