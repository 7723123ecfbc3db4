package metrics

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/event"
)

// TestConcurrentObserveAndScrape observes from many goroutines while
// others scrape every output and the set changes; run with -race. No
// event is lost.
func TestConcurrentObserveAndScrape(t *testing.T) {
	ids := make([]string, 20)
	for i := range ids {
		ids[i] = fmt.Sprintf("b%02d", i)
	}
	set := newSet(t, ids...)
	r := newRecorder(t, set)
	bs := set.Snapshot().Backends()

	const writers, perWriter = 8, 2000
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				b := bs[(w+i)%len(bs)].ID()
				r.Observe(event.Event{Kind: event.Pick, Backend: b})
				r.Observe(event.Event{Kind: event.Bind, Backend: b})
				r.Observe(event.Event{Kind: event.Retry, Backend: b, Prev: bs[i%len(bs)].ID()})
				r.Observe(event.Event{Kind: event.Rejected, Reason: event.Forged})
			}
		})
	}
	done := make(chan struct{})
	var readers sync.WaitGroup
	for _, h := range []http.Handler{r.Metrics(), r.Status(), http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, r.Expvar().String())
	})} {
		readers.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				w := httptest.NewRecorder()
				h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
				assert.Equal(t, http.StatusOK, w.Code)
			}
		})
	}
	readers.Go(func() { // membership and state change under the readers
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			id := fmt.Sprintf("extra%d", i%3)
			if _, err := set.Add(backend.Config{ID: id, URL: "http://127.0.0.1:9"}); err == nil {
				_, _ = set.Remove(id)
			}
			_ = set.SetState(ids[i%len(ids)], backend.State(i%3))
		}
	})
	wg.Wait()
	close(done)
	readers.Wait()

	v := r.view(false)
	var picks, binds, retriesTo, retriesFrom int64
	for _, b := range v.backends {
		picks += b.picks
		binds += b.binds
		retriesTo += b.retriesTo
		retriesFrom += b.retriesFrom
	}
	const n = writers * perWriter
	assert.Equal(t, [4]int64{n, n, n, n}, [4]int64{picks, binds, retriesTo, retriesFrom})
	assert.Equal(t, int64(n), v.rejected[1])
	require.Zero(t, v.untracked)
}

// TestConcurrentFirstSightsRespectTheCap sees many new IDs at once: no
// more are tracked than the cap allows, and every event is counted
// somewhere.
func TestConcurrentFirstSightsRespectTheCap(t *testing.T) {
	ids := make([]string, 100)
	for i := range ids {
		ids[i] = fmt.Sprintf("b%03d", i)
	}
	r := newRecorder(t, newSet(t), WithMaxBackends(50)) // none a member
	bs := ids
	const writers = 8
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range bs {
				r.Observe(event.Event{Kind: event.Pick, Backend: bs[(i*7+w)%len(bs)]})
			}
		})
	}
	wg.Wait()
	v := r.view(false)
	assert.Len(t, v.backends, 50)
	picks := v.untracked
	for _, b := range v.backends {
		picks += b.picks
	}
	assert.Equal(t, int64(writers*len(bs)), picks)
}
