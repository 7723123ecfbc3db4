package sticky_test

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/balancer"
	"github.com/affinitylb/affinity/sticky"
)

// TestIdempotencyKeyResentByTheTransportIsNotSentToAnother checks that a
// POST with an Idempotency-Key that its backend executed on a reused
// connection, which net/http's Transport then sends again on a new
// connection to the same backend, is not sent to another backend when
// that new connection cannot be made (the backend went down): the dial
// error is the Transport's second attempt's, not a sign that the request
// never reached a backend.
func TestIdempotencyKeyResentByTheTransportIsNotSentToAnother(t *testing.T) {
	var mu sync.Mutex
	executed := map[string]int{} // POSTs, by backend
	var first *httptest.Server
	serve := func(id string) *httptest.Server {
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			if r.Method != http.MethodPost {
				io.WriteString(w, "ok")
				return
			}
			mu.Lock()
			executed[id]++
			mu.Unlock()
			if id == "first" {
				// Executed, then the backend goes down: its listener
				// closes and the connection is lost before it answers.
				first.Listener.Close()
				panic(http.ErrAbortHandler)
			}
			io.WriteString(w, "done")
		}))
		srv.Config.ErrorLog = log.New(io.Discard, "", 0)
		srv.Start()
		t.Cleanup(srv.Close)
		return srv
	}
	first = serve("first")
	second := serve("second")
	set, err := backend.NewSet([]backend.Config{{ID: "first", URL: first.URL}, {ID: "second", URL: second.URL}},
		backend.WithEjection(backend.Ejection{}))
	require.NoError(t, err)
	h, err := sticky.New(set, newCookie(t), sticky.WithPicker(balancer.PickerFunc(func(info balancer.Info) (*backend.Backend, error) {
		if len(info.Tried) == 0 {
			return info.Snapshot.Lookup("first"), nil
		}
		return info.Snapshot.Lookup("second"), nil
	})))
	require.NoError(t, err)
	base := front(t, h)

	// A GET leaves an idle connection to the first backend, which the
	// POST reuses.
	resp, err := http.Get(base + "/")
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()

	req, err := http.NewRequest(http.MethodPost, base+"/orders", http.NoBody)
	require.NoError(t, err)
	req.Header.Set("Idempotency-Key", "0b7d1d0e-7f3c-4c55-9d53-2c1f3e9a6b11")
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()

	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, 1, executed["first"], "the POST reached the first backend")
	assert.Zero(t, executed["second"], "a POST the first backend executed was executed again by another")
}
