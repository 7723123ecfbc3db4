package sticky_test

import (
	"bufio"
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

func TestDecisionOfTheHandlersOwnAnswers(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opts    []sticky.Option
		drain   bool   // every backend drains: no new client can be placed
		via     string // the request's Via header
		body    bool   // the request has a body that breaks off
		want    sticky.Decision
		backend bool // the decision names a backend
	}{
		{name: "loop", opts: []sticky.Option{sticky.WithVia("edge")}, via: "1.1 edge",
			want: sticky.Decision{Placement: event.Unplaced, Status: http.StatusLoopDetected}},
		{name: "the user's error handler", drain: true,
			opts: []sticky.Option{sticky.WithErrorHandler(func(w http.ResponseWriter, r *http.Request, err error) {
				w.WriteHeader(http.StatusTeapot)
			})},
			want: sticky.Decision{Placement: event.Unplaced, Status: http.StatusTeapot}},
		{name: "a panic in ModifyResponse",
			opts: []sticky.Option{sticky.WithModifyResponse(func(*http.Response) error { panic("boom") })},
			want: sticky.Decision{Placement: event.Picked, Status: http.StatusInternalServerError}, backend: true},
		{name: "a client's body cut short", body: true,
			want: sticky.Decision{Placement: event.Picked, Status: http.StatusBadRequest}, backend: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPool(t, 1)
			if tc.drain {
				require.NoError(t, p.set.SetState("app1", backend.Draining))
			}
			obs := &doneEvents{}
			h, err := sticky.New(p.set, newCookie(t), append(tc.opts, sticky.WithObserver(obs))...)
			require.NoError(t, err)
			decisions := make(chan sticky.Decision, 1)
			base := front(t, tracked(h, decisions))

			if tc.body {
				conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
				require.NoError(t, err)
				_, err = io.WriteString(conn, "POST /echo HTTP/1.1\r\nHost: x\r\nX-Track: 1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
				require.NoError(t, err)
				resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
				require.NoError(t, err)
				require.NoError(t, resp.Body.Close())
				require.NoError(t, conn.Close())
				require.Equal(t, tc.want.Status, resp.StatusCode)
			} else {
				req, err := http.NewRequest(http.MethodGet, base+"/whoami", nil)
				require.NoError(t, err)
				req.Header.Set("X-Track", "1")
				if tc.via != "" {
					req.Header.Set("Via", tc.via)
				}
				resp, err := http.DefaultClient.Do(req)
				require.NoError(t, err)
				_, _ = io.Copy(io.Discard, resp.Body)
				require.NoError(t, resp.Body.Close())
				require.Equal(t, tc.want.Status, resp.StatusCode)
			}

			var got sticky.Decision
			select {
			case got = <-decisions:
			case <-time.After(10 * time.Second):
				t.Fatal("no decision")
			}
			if tc.backend {
				tc.want.Backend = "app1"
			}
			assert.Positive(t, got.Elapsed)
			assert.LessOrEqual(t, got.Header, got.Elapsed)
			times := got
			got.Header, got.Elapsed = 0, 0
			assert.Equal(t, tc.want, got)
			done, noRequest := obs.take()
			assert.Empty(t, noRequest, "request events without their request")
			require.Len(t, done, 1)
			e := done[0]
			assert.Equal(t, sticky.Decision{Backend: e.Backend, Placement: e.Placement, Binding: e.Reason,
				Retries: e.Retries, Status: e.Status, Header: e.Header, Elapsed: e.Elapsed}, times)
		})
	}
}

// attempts is a round tripper that keeps what DecisionOf says of each
// request it is given, before sending it with http.DefaultTransport.
type attempts struct {
	mu   sync.Mutex
	seen []*sticky.Decision // a copy per attempt; nil: untracked
}

func (a *attempts) RoundTrip(req *http.Request) (*http.Response, error) {
	var seen *sticky.Decision
	if d := sticky.DecisionOf(req); d != nil {
		c := *d
		seen = &c
	}
	a.mu.Lock()
	a.seen = append(a.seen, seen)
	a.mu.Unlock()
	return http.DefaultTransport.RoundTrip(req)
}

func (a *attempts) take() []*sticky.Decision {
	a.mu.Lock()
	defer a.mu.Unlock()
	seen := a.seen
	a.seen = nil
	return seen
}

func TestDecisionOfEachAttempt(t *testing.T) {
	// Each case prepares its pool and returns the cookies of its request
	// and what the transport is to see of each attempt. bound is the
	// backend a first request was bound to, ck its cookie.
	for _, tc := range []struct {
		name    string
		track   bool
		prepare func(t *testing.T, p *pool, bound string, ck *http.Cookie) ([]*http.Cookie, []*sticky.Decision)
	}{
		{"untracked", false, func(t *testing.T, p *pool, bound string, ck *http.Cookie) ([]*http.Cookie, []*sticky.Decision) {
			return []*http.Cookie{ck}, []*sticky.Decision{nil}
		}},
		{"bound", true, func(t *testing.T, p *pool, bound string, ck *http.Cookie) ([]*http.Cookie, []*sticky.Decision) {
			return []*http.Cookie{ck}, []*sticky.Decision{{Backend: bound, Placement: event.Bound}}
		}},
		{"picked", true, func(t *testing.T, p *pool, bound string, ck *http.Cookie) ([]*http.Cookie, []*sticky.Decision) {
			require.NoError(t, p.set.SetState(bound, backend.Draining)) // new clients go to the other
			return nil, []*sticky.Decision{{Backend: other(bound), Placement: event.Picked}}
		}},
		{"rejected binding", true, func(t *testing.T, p *pool, bound string, ck *http.Cookie) ([]*http.Cookie, []*sticky.Decision) {
			require.NoError(t, p.set.SetState(bound, backend.Draining))
			bad := &http.Cookie{Name: ck.Name, Value: "garbage"}
			return []*http.Cookie{bad}, []*sticky.Decision{{Backend: other(bound), Placement: event.Picked, Binding: event.Malformed}}
		}},
		{"redispatched", true, func(t *testing.T, p *pool, bound string, ck *http.Cookie) ([]*http.Cookie, []*sticky.Decision) {
			require.NoError(t, p.set.SetState(bound, backend.Unhealthy))
			return []*http.Cookie{ck}, []*sticky.Decision{{Backend: other(bound), Placement: event.Redispatched}}
		}},
		{"retried", true, func(t *testing.T, p *pool, bound string, ck *http.Cookie) ([]*http.Cookie, []*sticky.Decision) {
			p.kill(t, bound) // still healthy in the set: the bound request goes there first
			return []*http.Cookie{ck}, []*sticky.Decision{
				{Backend: bound, Placement: event.Bound},
				{Backend: other(bound), Placement: event.Bound, Retries: 1},
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPool(t, 2)
			rt := &attempts{}
			h, err := sticky.New(p.set, newCookie(t), sticky.WithTransport(rt))
			require.NoError(t, err)
			decisions := make(chan sticky.Decision, 1)
			base := front(t, tracked(h, decisions))

			first := get(t, newClient(t, false), base+"/whoami")
			require.Equal(t, http.StatusOK, first.status)
			ck := balancerCookie(first.header, "affinity")
			require.NotNil(t, ck)
			rt.take()
			cookies, want := tc.prepare(t, p, first.server, ck)

			req, err := http.NewRequest(http.MethodGet, base+"/whoami", nil)
			require.NoError(t, err)
			if tc.track {
				req.Header.Set("X-Track", "1")
			}
			for _, c := range cookies {
				req.AddCookie(c)
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			_, err = io.Copy(io.Discard, resp.Body)
			require.NoError(t, err)
			require.NoError(t, resp.Body.Close())
			require.Equal(t, http.StatusOK, resp.StatusCode)
			if last := want[len(want)-1]; last != nil {
				require.Equal(t, last.Backend, resp.Header.Get("X-Served-By"), "the last attempt is to the backend that answered")
			}

			require.Equal(t, want, rt.take())
			if tc.track {
				d := <-decisions
				last := *want[len(want)-1]
				require.Equal(t, last.Backend, d.Backend, "the decision ends on the last attempt's backend")
				require.Equal(t, last.Retries, d.Retries)
				require.Equal(t, http.StatusOK, d.Status)
			}
		})
	}
}
