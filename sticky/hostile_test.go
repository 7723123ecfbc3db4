package sticky_test

import (
	"io"
	"log"
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

// poisonBackend answers every request but those whose query has "boom",
// for which its handler aborts, as one that crashes on that input does:
// the connection is closed without an answer.
func poisonBackend(t *testing.T, id string) backend.Config {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Has("boom") {
			panic(http.ErrAbortHandler)
		}
		w.Header().Set("X-Served-By", id)
		io.WriteString(w, "hello from "+id)
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.Start()
	t.Cleanup(srv.Close)
	return backend.Config{ID: id, URL: srv.URL}
}

// TestAClientsPoisonRequestsDoNotEjectItsBackend checks that a client
// whose own requests make its backend fail (here, abort the connection),
// while the backend serves everyone else, cannot get the backend ejected
// and its other clients moved.
func TestAClientsPoisonRequestsDoNotEjectItsBackend(t *testing.T) {
	set, err := backend.NewSet([]backend.Config{poisonBackend(t, "a"), poisonBackend(t, "b")})
	require.NoError(t, err)
	h, err := sticky.New(set, newCookie(t))
	require.NoError(t, err)
	base := front(t, h)

	victim, hostile := newClient(t, true), newClient(t, true)
	home := get(t, victim, base+"/").server
	for get(t, hostile, base+"/").server != home {
		hostile = newClient(t, true) // until it shares the victim's backend
	}
	for range backend.DefaultEjection.After {
		w := get(t, hostile, base+"/?boom")
		require.Equal(t, http.StatusBadGateway, w.status)
	}
	for _, b := range set.Snapshot().Backends() {
		assert.Equal(t, backend.Healthy, b.State(), "one client's requests ejected %s", b.ID())
	}
	assert.Equal(t, home, get(t, victim, base+"/").server, "another client was moved")
}

// TestSlowRequestsOfOneClientDoNotEjectItsBackend checks that a backend
// that is slow to answer a few requests (a long poll, a slow report, or a
// client that asks for them on purpose) while it has nothing else to
// answer is not ejected as stalled: it is alive and answers its other
// clients at once.
func TestSlowRequestsOfOneClientDoNotEjectItsBackend(t *testing.T) {
	const window = 100 * time.Millisecond
	release := make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	t.Cleanup(free)
	slow := func(id string) backend.Config {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/poll" {
				select {
				case <-release:
				case <-r.Context().Done():
				}
			}
			w.Header().Set("X-Served-By", id)
			io.WriteString(w, "hello from "+id)
		}))
		t.Cleanup(srv.Close)
		return backend.Config{ID: id, URL: srv.URL}
	}
	set, err := backend.NewSet([]backend.Config{slow("a"), slow("b")}, backend.WithStallTimeout(window))
	require.NoError(t, err)
	h, err := sticky.New(set, newCookie(t))
	require.NoError(t, err)
	base := front(t, h)

	victim, hostile := newClient(t, true), newClient(t, true)
	home := get(t, victim, base+"/").server
	for get(t, hostile, base+"/").server != home {
		hostile = newClient(t, true)
	}
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() { get(t, hostile, base+"/poll") })
	}
	time.Sleep(10 * window) // the stall watch's ticks, with no other answer
	assert.Equal(t, backend.Healthy, set.Snapshot().Lookup(home).State(), "slow answers to one client ejected its backend")
	free()
	wg.Wait()
	assert.Equal(t, home, get(t, victim, base+"/").server, "another client was moved")
}
