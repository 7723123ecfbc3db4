package sticky_test

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/balancer"
	"github.com/affinitylb/affinity/sticky"
)

// TestIdempotencyKeyIsNotReplayedOnAnotherBackend checks that a POST with
// an Idempotency-Key that reached its backend, which executed it and then
// lost the connection, is not executed again by another backend: each
// backend keeps its own record of the keys it has seen (as backends that
// need sticky sessions keep their state), so the other cannot know it was
// done.
func TestIdempotencyKeyIsNotReplayedOnAnotherBackend(t *testing.T) {
	var mu sync.Mutex
	executed := map[string]int{} // by backend
	serve := func(id string, abort bool) backend.Config {
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			mu.Lock()
			executed[id]++
			mu.Unlock()
			if abort {
				panic(http.ErrAbortHandler) // executed, then the connection is lost
			}
			io.WriteString(w, "done")
		}))
		srv.Config.ErrorLog = log.New(io.Discard, "", 0)
		srv.Start()
		t.Cleanup(srv.Close)
		return backend.Config{ID: id, URL: srv.URL}
	}
	set, err := backend.NewSet([]backend.Config{serve("first", true), serve("second", false)},
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

	for _, body := range []string{"", "order=1"} {
		req, err := http.NewRequest(http.MethodPost, base+"/orders", strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Idempotency-Key", "8e03978e-40d5-43e8-bc93-6894a57f9324-"+body)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
	}
	mu.Lock()
	defer mu.Unlock()
	assert.Zero(t, executed["second"], "a request the first backend executed was executed again by another")
}
