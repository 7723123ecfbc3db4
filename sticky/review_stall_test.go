package sticky_test

import (
	"io"
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
// WithStallTimeout promises that at least 3 requests must have waited the
// whole window; the tick subtracts only the requests admitted since, and
// these uploads were admitted long before their wait began.
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
	for range 2 {
		wg.Go(func() {
			pr, pw := io.Pipe()
			go func() {
				pw.Write([]byte{'x'})
				time.Sleep(time.Until(armed.Add(3*window/2 - window/20))) // ends just before the third tick
				pw.Close()
			}()
			resp, err := http.Post(base+"/upload", "application/octet-stream", pr)
			if assert.NoError(t, err) {
				resp.Body.Close()
				assert.Equal(t, http.StatusOK, resp.StatusCode)
			}
		})
	}
	time.Sleep(time.Until(armed))
	wg.Go(func() {
		resp, err := http.Get(base + "/slow")
		if assert.NoError(t, err) {
			resp.Body.Close()
			assert.Equal(t, http.StatusOK, resp.StatusCode)
		}
	})
	wg.Wait()
	assert.Equal(t, backend.Healthy, set.Snapshot().Lookup("app1").State(), "a backend that answered every request was stalled")
}
