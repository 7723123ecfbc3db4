package sticky_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/sticky"
)

// TestUploadsThatJustFinishedDoNotStall checks that requests that have
// waited a moment for their backend are not counted as having waited the
// stall window: a backend that answers every request, uploads within a
// fifth of the window, is not stalled because one slow GET (twice the
// window) overlaps two slow uploads whose bodies end just before a tick.
// At least 3 requests must have waited the whole window, and these
// uploads were admitted long before their wait for the backend began.
func TestUploadsThatJustFinishedDoNotStall(t *testing.T) {
	const window = 2 * time.Second
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/slow":
			time.Sleep(2 * window)
		case "/upload":
			io.Copy(io.Discard, r.Body)
			time.Sleep(window / 5)
		}
	}))
	t.Cleanup(srv.Close)
	set, err := backend.NewSet([]backend.Config{{ID: "app1", URL: srv.URL}}, backend.WithStallTimeout(window))
	require.NoError(t, err)
	h, err := sticky.New(set, newCookie(t))
	require.NoError(t, err)
	base := front(t, h)

	var wg sync.WaitGroup
	start := time.Now()
	armed := start.Add(window / 10) // when the GET starts the watch
	// Each request from a client of its own: one client's alone never stall.
	for i := range 2 {
		c := peerClient(t, false, 1+i)
		wg.Go(func() {
			pr, pw := io.Pipe()
			go func() {
				pw.Write([]byte{'x'})
				time.Sleep(time.Until(armed.Add(3*window/2 - window/20))) // ends just before the third tick
				pw.Close()
			}()
			resp, err := c.Post(base+"/upload", "application/octet-stream", pr)
			if assert.NoError(t, err) {
				resp.Body.Close()
				assert.Equal(t, http.StatusOK, resp.StatusCode)
			}
		})
	}
	time.Sleep(time.Until(armed))
	slow := peerClient(t, false, 3)
	wg.Go(func() {
		resp, err := slow.Get(base + "/slow")
		if assert.NoError(t, err) {
			resp.Body.Close()
			assert.Equal(t, http.StatusOK, resp.StatusCode)
		}
	})
	wg.Wait()
	assert.Equal(t, backend.Healthy, set.Snapshot().Lookup("app1").State(), "a backend that answered every request was stalled")
}

// TestHungBackendIsEjectedUnderUploads checks that a hung backend (it
// accepts connections and reads nothing) under traffic whose clients wait
// is stalled within two stall windows whatever the requests are: GETs,
// or uploads larger than a socket's buffers, which never finish being
// sent: the backend not reading them is the backend's time.
func TestHungBackendIsEjectedUnderUploads(t *testing.T) {
	const window = 500 * time.Millisecond
	for _, tc := range []struct {
		name   string
		method string
		size   int
	}{
		{"GETs", http.MethodGet, 0},
		{"small uploads", http.MethodPost, 1 << 10},
		{"64 MiB uploads", http.MethodPost, 64 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			var conns []net.Conn
			var mu sync.Mutex
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					mu.Lock()
					conns = append(conns, c) // held open, never read
					mu.Unlock()
				}
			}()
			set, err := backend.NewSet([]backend.Config{{ID: "hung", URL: "http://" + ln.Addr().String()}}, backend.WithStallTimeout(window))
			require.NoError(t, err)
			h, err := sticky.New(set, newCookie(t))
			require.NoError(t, err)
			base := front(t, h)

			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			t.Cleanup(func() { // before the front closes: its handlers are stuck on the backend
				cancel()
				ln.Close()
				mu.Lock()
				for _, c := range conns {
					c.Close()
				}
				mu.Unlock()
				wg.Wait()
			})
			for i := range 5 { // of five clients: one client's requests alone never stall
				c := peerClient(t, false, 1+i)
				wg.Go(func() {
					var body io.Reader
					if tc.size > 0 {
						body = bytes.NewReader(make([]byte, tc.size))
					}
					req, err := http.NewRequestWithContext(ctx, tc.method, base+"/", body)
					if !assert.NoError(t, err) {
						return
					}
					if resp, err := c.Do(req); err == nil {
						resp.Body.Close()
					}
				})
			}
			assert.Eventually(t, func() bool {
				return set.Snapshot().Lookup("hung").State() != backend.Healthy
			}, 4*window, window/10, "a hung backend that 5 waiting clients sent %s was not stalled", tc.name)
		})
	}
}

// TestClientCannotStallByUploadingSlowlyThenHangingUp checks that a client
// cannot stall a backend that answers within a tenth of the window once it
// has the request, by sending its body slowly and hanging up the moment it
// is sent: the time its upload took is the client's, not the backend's.
// Each request comes from an address of its own, as from several clients
// that do the same: one client's requests alone never stall a backend.
func TestClientCannotStallByUploadingSlowlyThenHangingUp(t *testing.T) {
	const window = 600 * time.Millisecond
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		time.Sleep(window / 10)
	}))
	t.Cleanup(srv.Close)
	set, err := backend.NewSet([]backend.Config{{ID: "app1", URL: srv.URL}}, backend.WithStallTimeout(window))
	require.NoError(t, err)
	h, err := sticky.New(set, newCookie(t))
	require.NoError(t, err)
	base := front(t, h)

	for i := range 6 {
		ctx, cancel := context.WithCancel(context.Background())
		pr, pw := io.Pipe()
		go func() {
			for range 4 { // a third of the window, more than a quarter
				pw.Write([]byte{'x'})
				time.Sleep(window / 12)
			}
			pw.Close()
			time.Sleep(window / 50) // the body has reached the backend
			cancel()                // and the client hangs up
		}()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/upload", pr)
		require.NoError(t, err)
		if resp, err := peerClient(t, false, 1+i).Do(req); err == nil {
			resp.Body.Close()
		}
		cancel()
	}
	assert.Equal(t, backend.Healthy, set.Snapshot().Lookup("app1").State(), "one client stalled a backend that answers in a tenth of the window")
}
