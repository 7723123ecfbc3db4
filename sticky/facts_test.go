package sticky_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/event"
	"github.com/affinitylb/affinity/policy"
	"github.com/affinitylb/affinity/sticky"
)

// tracked is a middleware around a handler that tracks the requests with
// an X-Track header (see sticky.Track) and hands their decisions to
// decisions once the handler's ServeHTTP has returned.
func tracked(h http.Handler, decisions chan<- sticky.Decision) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Track") == "" {
			h.ServeHTTP(w, r)
			return
		}
		r, d := sticky.Track(r)
		h.ServeHTTP(w, r)
		decisions <- *d
	})
}

// doneEvents is an observer that keeps the Done events of tracked
// requests, and counts the request events that came without their request.
type doneEvents struct {
	mu        sync.Mutex
	done      []event.Event
	noRequest []event.Kind
}

func (o *doneEvents) Observe(e event.Event) {
	o.mu.Lock()
	defer o.mu.Unlock()
	switch e.Kind {
	case event.StateChange, event.DrainStart, event.DrainEnd:
		return
	}
	if e.Request == nil {
		o.noRequest = append(o.noRequest, e.Kind)
		return
	}
	if e.Kind == event.Done && e.Request.Header.Get("X-Track") != "" {
		o.done = append(o.done, e)
	}
}

func (o *doneEvents) take() ([]event.Event, []event.Kind) {
	o.mu.Lock()
	defer o.mu.Unlock()
	done, none := o.done, o.noRequest
	o.done, o.noRequest = nil, nil
	return done, none
}

// other returns the backend of a two-backend pool that is not id.
func other(id string) string {
	if id == "app1" {
		return "app2"
	}
	return "app1"
}

func TestDecisionAndDoneEvent(t *testing.T) {
	// Each case prepares its pool and returns the cookies of the tracked
	// request and the decision it expects, but for Header and Elapsed.
	// bound is the backend a first request was bound to, ck its cookie.
	for _, tc := range []struct {
		name    string
		keyed   bool
		prepare func(t *testing.T, p *pool, bound string, ck *http.Cookie) ([]*http.Cookie, sticky.Decision)
		header  bool // a backend's response header came
	}{
		{"picked", false, func(t *testing.T, p *pool, bound string, ck *http.Cookie) ([]*http.Cookie, sticky.Decision) {
			return nil, sticky.Decision{Placement: event.Picked, Status: http.StatusOK}
		}, true},
		{"bound", false, func(t *testing.T, p *pool, bound string, ck *http.Cookie) ([]*http.Cookie, sticky.Decision) {
			return []*http.Cookie{ck}, sticky.Decision{Backend: bound, Placement: event.Bound, Status: http.StatusOK}
		}, true},
		{"keyed", true, func(t *testing.T, p *pool, bound string, ck *http.Cookie) ([]*http.Cookie, sticky.Decision) {
			return nil, sticky.Decision{Placement: event.Keyed, Status: http.StatusOK}
		}, true},
		{"redispatched", false, func(t *testing.T, p *pool, bound string, ck *http.Cookie) ([]*http.Cookie, sticky.Decision) {
			require.NoError(t, p.set.SetState(bound, backend.Unhealthy))
			return []*http.Cookie{ck}, sticky.Decision{Backend: other(bound), Placement: event.Redispatched, Status: http.StatusOK}
		}, true},
		{"unplaced", false, func(t *testing.T, p *pool, bound string, ck *http.Cookie) ([]*http.Cookie, sticky.Decision) {
			require.NoError(t, p.set.SetState("app1", backend.Draining)) // new clients go nowhere
			require.NoError(t, p.set.SetState("app2", backend.Draining))
			return nil, sticky.Decision{Placement: event.Unplaced, Status: http.StatusServiceUnavailable}
		}, false},
		{"retried", false, func(t *testing.T, p *pool, bound string, ck *http.Cookie) ([]*http.Cookie, sticky.Decision) {
			p.kill(t, bound) // still healthy in the set: the bound request goes there first
			return []*http.Cookie{ck}, sticky.Decision{Backend: other(bound), Placement: event.Bound, Retries: 1, Status: http.StatusOK}
		}, true},
		{"rejected binding", false, func(t *testing.T, p *pool, bound string, ck *http.Cookie) ([]*http.Cookie, sticky.Decision) {
			bad := &http.Cookie{Name: ck.Name, Value: "garbage"}
			return []*http.Cookie{bad}, sticky.Decision{Placement: event.Picked, Binding: event.Malformed, Status: http.StatusOK}
		}, true},
		{"unknown binding", false, func(t *testing.T, p *pool, bound string, ck *http.Cookie) ([]*http.Cookie, sticky.Decision) {
			_, err := p.set.Remove(bound)
			require.NoError(t, err)
			return []*http.Cookie{ck}, sticky.Decision{Backend: other(bound), Placement: event.Redispatched, Binding: event.Unknown, Status: http.StatusOK}
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPool(t, 2)
			var pol policy.Policy = newCookie(t)
			if tc.keyed {
				k, err := policy.HeaderKey("X-Api-Key")
				require.NoError(t, err)
				pol = k
			}
			obs := &doneEvents{}
			h, err := sticky.New(p.set, pol, sticky.WithObserver(obs))
			require.NoError(t, err)
			decisions := make(chan sticky.Decision, 1)
			base := front(t, tracked(h, decisions))

			first := get(t, newClient(t, false), base+"/whoami")
			require.Equal(t, http.StatusOK, first.status)
			ck := balancerCookie(first.header, "affinity")
			if !tc.keyed {
				require.NotNil(t, ck)
			}
			cookies, want := tc.prepare(t, p, first.server, ck)

			req, err := http.NewRequest(http.MethodGet, base+"/whoami", nil)
			require.NoError(t, err)
			req.Header.Set("X-Track", "1")
			req.Header.Set("X-Api-Key", "k1")
			for _, c := range cookies {
				req.AddCookie(c)
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			_, err = io.Copy(io.Discard, resp.Body)
			require.NoError(t, err)
			require.NoError(t, resp.Body.Close())
			require.Equal(t, want.Status, resp.StatusCode)

			var got sticky.Decision
			select {
			case got = <-decisions:
			case <-time.After(10 * time.Second):
				t.Fatal("no decision")
			}
			if want.Backend == "" && want.Placement != event.Unplaced {
				want.Backend = resp.Header.Get("X-Served-By") // the picker's choice
				require.NotEmpty(t, want.Backend)
			}
			if tc.header {
				assert.Positive(t, got.Header, "time to the header")
			} else {
				assert.Zero(t, got.Header, "no header came")
			}
			assert.LessOrEqual(t, got.Header, got.Elapsed)
			assert.Positive(t, got.Elapsed)
			times := got
			got.Header, got.Elapsed = 0, 0
			assert.Equal(t, want, got)

			done, noRequest := obs.take()
			assert.Empty(t, noRequest, "request events without their request")
			require.Len(t, done, 1, "one Done event for the tracked request")
			e := done[0]
			assert.Equal(t, sticky.Decision{Backend: e.Backend, Placement: e.Placement, Binding: e.Reason,
				Retries: e.Retries, Status: e.Status, Header: e.Header, Elapsed: e.Elapsed}, times, "the Done event says what the decision does")
		})
	}
}

// gatedBackend is a backend that waits for its header gate before it
// answers, and for its body gate before it ends its body.
func gatedBackend(t *testing.T) (cfg backend.Config, header, body chan struct{}) {
	t.Helper()
	header, body = make(chan struct{}), make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-header:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "head\n")
		w.(http.Flusher).Flush()
		select {
		case <-body:
		case <-r.Context().Done():
		}
		io.WriteString(w, "tail\n")
	}))
	t.Cleanup(srv.Close)
	return backend.Config{ID: "g1", URL: srv.URL}, header, body
}

func TestDoneTimes(t *testing.T) {
	t.Run("header then body", func(t *testing.T) {
		cfg, header, body := gatedBackend(t)
		set, err := backend.NewSet([]backend.Config{cfg})
		require.NoError(t, err)
		obs := &doneEvents{}
		h, err := sticky.New(set, newCookie(t), sticky.WithObserver(obs))
		require.NoError(t, err)
		decisions := make(chan sticky.Decision, 1)
		base := front(t, tracked(h, decisions))

		req, err := http.NewRequest(http.MethodGet, base+"/", nil)
		require.NoError(t, err)
		req.Header.Set("X-Track", "1")
		type result struct {
			resp *http.Response
			err  error
		}
		got := make(chan result, 1)
		go func() {
			resp, err := http.DefaultClient.Do(req)
			got <- result{resp, err}
		}()
		close(header)
		r := <-got
		require.NoError(t, r.err)
		defer r.resp.Body.Close()
		select {
		case <-decisions:
			t.Fatal("the request was over before its body ended")
		default:
		}
		close(body)
		b, err := io.ReadAll(r.resp.Body)
		require.NoError(t, err)
		require.Equal(t, "head\ntail\n", string(b))
		d := <-decisions
		assert.Positive(t, d.Header)
		assert.Less(t, d.Header, d.Elapsed, "the body ended after the header came")
		assert.Equal(t, http.StatusOK, d.Status)
		done, _ := obs.take()
		require.Len(t, done, 1)
		assert.Equal(t, d.Header, done[0].Header)
		assert.Equal(t, d.Elapsed, done[0].Elapsed)
	})

	t.Run("client gone before the header", func(t *testing.T) {
		cfg, _, _ := gatedBackend(t)
		set, err := backend.NewSet([]backend.Config{cfg})
		require.NoError(t, err)
		h, err := sticky.New(set, newCookie(t))
		require.NoError(t, err)
		decisions := make(chan sticky.Decision, 1)
		base := front(t, tracked(h, decisions))
		ctx, cancel := context.WithCancel(context.Background())
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/", nil)
		require.NoError(t, err)
		req.Header.Set("X-Track", "1")
		errs := make(chan error, 1)
		go func() {
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				resp.Body.Close()
			}
			errs <- err
		}()
		require.Eventually(t, func() bool { return set.Snapshot().Load(set.Snapshot().Lookup("g1")) > 0 },
			10*time.Second, time.Millisecond, "the request reached the backend")
		cancel()
		require.Error(t, <-errs)
		d := <-decisions
		assert.Zero(t, d.Status, "no status was sent")
		assert.Zero(t, d.Header)
		assert.Positive(t, d.Elapsed)
		assert.Equal(t, event.Picked, d.Placement)
		assert.Equal(t, "g1", d.Backend)
	})
}

// TestNoAllocationForFacts checks that the facts cost no allocation: a
// request allocates as much with an observer as without, which allocates
// as much as the handler's request path did before it had them (see
// BenchmarkRequestPath).
func TestNoAllocationForFacts(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items at random")
	}
	set, err := backend.NewSet([]backend.Config{{ID: "app1", URL: "http://127.0.0.1:1"}})
	require.NoError(t, err)
	pol := newCookie(t)
	allocs := func(opts ...sticky.Option) float64 {
		h, err := sticky.New(set, pol, append(opts, sticky.WithTransport(answer{}))...)
		require.NoError(t, err)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		ck := balancerCookie(rec.Header(), pol.Name())
		require.NotNil(t, ck)
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.AddCookie(ck)
		w := &discardWriter{h: http.Header{}}
		return testing.AllocsPerRun(1000, func() {
			clear(w.h)
			h.ServeHTTP(w, req)
		})
	}
	none := allocs()
	observed := allocs(sticky.WithObserver(event.ObserverFunc(func(event.Event) {})))
	assert.Equal(t, none, observed, "allocations per request without and with an observer")
}
