package sticky_test

import (
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/cookie"
	"github.com/affinitylb/affinity/sticky"
)

var distinctClients = flag.Int("clients", 100_000, "distinct clients for TestDistinctClientsLeaveTheHeapFlat")

// answer is a transport that answers every request at once, so that a test
// can push many requests through the handler without sockets.
type answer struct{}

func (answer) RoundTrip(req *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
}

// heapInUse returns the live heap after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// TestDistinctClientsLeaveTheHeapFlat checks that cookie stickiness keeps
// no state per client: after a warm-up, many more distinct clients, each
// with a cookie of its own or opening a session, leave the live heap as it
// was.
func TestDistinctClientsLeaveTheHeapFlat(t *testing.T) {
	clients := *distinctClients
	if testing.Short() {
		clients = min(clients, 20_000)
	}
	var cfgs []backend.Config
	for i := range 10 {
		cfgs = append(cfgs, backend.Config{ID: fmt.Sprintf("app%d", i), URL: fmt.Sprintf("http://127.0.0.1:%d", 10000+i)})
	}
	set, err := backend.NewSet(cfgs)
	require.NoError(t, err)
	// Each cookie is issued a second after the last, so that every client's
	// cookie is distinct.
	var tick atomic.Int64
	start := time.Now()
	clock := func() time.Time { return start.Add(time.Duration(tick.Add(1)) * time.Second) }
	ck, err := cookie.New([][]byte{testKey}, cookie.WithClock(clock), cookie.WithTTL(400*24*time.Hour))
	require.NoError(t, err)
	h, err := sticky.New(set, ck, sticky.WithTransport(answer{}))
	require.NoError(t, err)

	serve := func(n int) {
		w := &discardWriter{h: http.Header{}}
		for i := range n {
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			if i%2 == 0 {
				req.AddCookie(&http.Cookie{Name: ck.Name(), Value: ck.Issue(cfgs[i%len(cfgs)].ID)})
			}
			clear(w.h)
			h.ServeHTTP(w, req)
		}
	}
	serve(clients / 10) // warm-up: pools, indexes, tables
	before := heapInUse()
	serve(clients)
	after := heapInUse()
	grown := int64(after) - int64(before)
	t.Logf("live heap %d KiB before, %d KiB after %d distinct clients (%+d KiB)", before>>10, after>>10, clients, grown>>10)
	assert.Less(t, grown, int64(2<<20), "the heap grew with the number of clients")
}
