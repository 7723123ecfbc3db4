package sticky_test

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/balancer"
	"github.com/affinitylb/affinity/sticky"
)

// deadURL returns the URL of a port on 127.0.0.1 that refuses connections:
// a listener's, closed.
func deadURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	u := "http://" + ln.Addr().String()
	require.NoError(t, ln.Close())
	return u
}

// seen is what a recording backend saw of each request.
type seen struct {
	mu       sync.Mutex
	headers  []http.Header
	paths    []string
	requests int
}

func (s *seen) record(r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.headers = append(s.headers, r.Header.Clone())
	s.paths = append(s.paths, r.URL.Path)
	s.requests++
}

func (s *seen) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// recordingBackend serves on 127.0.0.1, recording each request and
// answering with X-Served-By: id and status.
func recordingBackend(t *testing.T, id string, status int) (backend.Config, *seen) {
	t.Helper()
	s := &seen{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.record(r)
		w.Header().Set("X-Served-By", id)
		w.WriteHeader(status)
		io.WriteString(w, "hello from "+id)
	}))
	t.Cleanup(srv.Close)
	return backend.Config{ID: id, URL: srv.URL}, s
}

// deadFirst is a picker that places a request on "dead" until the request
// has tried it, then on "live": every new request meets a dead backend
// first and is retried.
func deadFirst(info balancer.Info) (*backend.Backend, error) {
	for _, b := range info.Tried {
		if b.ID() == "dead" {
			return info.Snapshot.Lookup("live"), nil
		}
	}
	return info.Snapshot.Lookup("dead"), nil
}

// deadAndLive returns a set of a backend that refuses connections, "dead",
// and a recording one, "live", with passive ejection off so that every
// request meets the dead one.
func deadAndLive(t *testing.T) (*backend.Set, *seen) {
	t.Helper()
	live, s := recordingBackend(t, "live", http.StatusOK)
	set, err := backend.NewSet([]backend.Config{{ID: "dead", URL: deadURL(t)}, live},
		backend.WithEjection(backend.Ejection{}))
	require.NoError(t, err)
	return set, s
}

// TestRewriteOnEveryAttempt checks that the user's Rewrite runs after the
// handler's own, on the first attempt and on the retry, each time on the
// request as the handler made it for that attempt's backend: what it adds
// reaches the backend that answers once, not once per attempt.
func TestRewriteOnEveryAttempt(t *testing.T) {
	set, live := deadAndLive(t)
	var mu sync.Mutex
	var hosts []string // the backend each call saw pr.Out aimed at
	h, err := sticky.New(set, newCookie(t), sticky.WithPicker(balancer.PickerFunc(deadFirst)),
		sticky.WithRewrite(func(pr *httputil.ProxyRequest) {
			mu.Lock()
			hosts = append(hosts, pr.Out.URL.Host)
			mu.Unlock()
			pr.Out.Header.Add("X-Tenant", "blue")
			pr.Out.Header.Add("X-Forwarded-For", "hook") // sees the handler's own, set before it
			pr.Out.URL.Path = "/api" + pr.Out.URL.Path
		}))
	require.NoError(t, err)

	w := get(t, newClient(t, false), front(t, h)+"/whoami")
	require.Equal(t, http.StatusOK, w.status)
	assert.Equal(t, "live", w.server)

	snap := set.Snapshot()
	mu.Lock()
	assert.Equal(t, []string{snap.Lookup("dead").URL().Host, snap.Lookup("live").URL().Host}, hosts,
		"Rewrite is not called once per attempt, after the target is set")
	mu.Unlock()
	require.Equal(t, 1, live.count())
	got := live.headers[0]
	assert.Equal(t, []string{"blue"}, got["X-Tenant"], "the retry's header kept the first attempt's edits")
	assert.Equal(t, []string{"127.0.0.1", "hook"}, got["X-Forwarded-For"])
	assert.NotEmpty(t, got["Via"], "the handler's own rewrite was lost")
	assert.Equal(t, "/api/whoami", live.paths[0])
}

// TestModifyResponse checks that the user's ModifyResponse sees the
// response after the handler's own work (the binding cookie is there), and
// that its edits reach the client.
func TestModifyResponse(t *testing.T) {
	live, _ := recordingBackend(t, "live", http.StatusOK)
	set, err := backend.NewSet([]backend.Config{live})
	require.NoError(t, err)
	var sawCookie bool
	h, err := sticky.New(set, newCookie(t), sticky.WithModifyResponse(func(resp *http.Response) error {
		sawCookie = balancerCookie(resp.Header, "affinity") != nil
		resp.Header.Set("X-Modified", resp.Header.Get("X-Served-By"))
		return nil
	}))
	require.NoError(t, err)

	w := get(t, newClient(t, false), front(t, h)+"/")
	require.Equal(t, http.StatusOK, w.status)
	assert.True(t, sawCookie, "ModifyResponse ran before the policy's Save")
	assert.Equal(t, "live", w.header.Get("X-Modified"))
	assert.NotNil(t, balancerCookie(w.header, "affinity"))
}

// TestModifyResponseError checks that a response ModifyResponse refuses is
// discarded and answered by the error handler with its error, 502 by
// default, and is not the backend's failure: it is neither ejected (one
// failure would eject it) nor is the request retried, and no binding
// reaches the client.
func TestModifyResponseError(t *testing.T) {
	errRefused := errors.New("refused by the test")
	for _, tc := range []struct {
		name     string
		handler  bool
		wantCode int
		wantBody string
	}{
		{"default answer", false, http.StatusBadGateway, "502 bad gateway: the backend's response was refused"},
		{"error handler", true, http.StatusTeapot, "custom"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg1, seen1 := recordingBackend(t, "app1", http.StatusOK)
			cfg2, seen2 := recordingBackend(t, "app2", http.StatusOK)
			set, err := backend.NewSet([]backend.Config{cfg1, cfg2},
				backend.WithEjection(backend.Ejection{After: 1, Base: time.Hour, Max: time.Hour}))
			require.NoError(t, err)
			var gotErr error
			opts := []sticky.Option{sticky.WithModifyResponse(func(*http.Response) error { return errRefused })}
			if tc.handler {
				opts = append(opts, sticky.WithErrorHandler(func(w http.ResponseWriter, _ *http.Request, err error) {
					gotErr = err
					http.Error(w, "custom", http.StatusTeapot)
				}))
			}
			h, err := sticky.New(set, newCookie(t), opts...)
			require.NoError(t, err)

			w := get(t, newClient(t, false), front(t, h)+"/")
			assert.Equal(t, tc.wantCode, w.status)
			assert.Equal(t, tc.wantBody+"\n", w.body)
			assert.Nil(t, balancerCookie(w.header, "affinity"), "a refused response bound the client")
			assert.Equal(t, 1, seen1.count()+seen2.count(), "the request was retried")
			if tc.handler {
				assert.ErrorIs(t, gotErr, errRefused)
			}
			for _, b := range set.Snapshot().Backends() {
				assert.Equal(t, backend.Healthy, b.State(), "%s was blamed", b.ID())
				assert.Zero(t, b.InFlight(), "%s: not counted out", b.ID())
			}
		})
	}
}

// TestErrorHandler checks that the user's error handler answers instead of
// the handler's defaults, with the error of the failure: the dial error of
// an unreachable backend, one that wraps balancer.ErrNoBackend when no
// backend can take the request (strict binding included); and that the
// handler's bookkeeping happens all the same.
func TestErrorHandler(t *testing.T) {
	type call struct {
		err error
		req *http.Request
	}
	serve := func(t *testing.T, set *backend.Set, opts ...sticky.Option) (string, <-chan call) {
		calls := make(chan call, 4)
		opts = append(opts, sticky.WithErrorHandler(func(w http.ResponseWriter, r *http.Request, err error) {
			calls <- call{err, r}
			w.Header().Set("X-Error-Page", "yes")
			http.Error(w, "our own error page", http.StatusServiceUnavailable)
		}))
		h, err := sticky.New(set, newCookie(t), opts...)
		require.NoError(t, err)
		return front(t, h), calls
	}
	recv := func(t *testing.T, calls <-chan call) call {
		t.Helper()
		select {
		case c := <-calls:
			return c
		case <-time.After(10 * time.Second): // a guard against a hang
			t.Fatal("the error handler was not called")
			return call{}
		}
	}
	check := func(t *testing.T, w whoami) {
		t.Helper()
		assert.Equal(t, http.StatusServiceUnavailable, w.status)
		assert.Equal(t, "our own error page\n", w.body)
		assert.Equal(t, "yes", w.header.Get("X-Error-Page"))
		assert.Empty(t, w.header.Get("Retry-After"), "the handler's own answer leaked into f's")
	}

	t.Run("unreachable backend", func(t *testing.T) {
		set, err := backend.NewSet([]backend.Config{{ID: "dead", URL: deadURL(t)}},
			backend.WithEjection(backend.Ejection{After: 1, Base: time.Hour, Max: time.Hour}))
		require.NoError(t, err)
		base, calls := serve(t, set)
		check(t, get(t, newClient(t, false), base+"/"))
		c := recv(t, calls)
		assert.ErrorIs(t, c.err, syscall.ECONNREFUSED)
		var op *net.OpError
		if assert.ErrorAs(t, c.err, &op) {
			assert.Equal(t, "dial", op.Op)
		}
		dead := set.Snapshot().Lookup("dead")
		assert.Equal(t, backend.Unhealthy, dead.State(), "the failure was not reported")
		assert.Zero(t, dead.InFlight())
	})

	t.Run("no backend", func(t *testing.T) {
		set, err := backend.NewSet(nil)
		require.NoError(t, err)
		base, calls := serve(t, set)
		check(t, get(t, newClient(t, false), base+"/"))
		c := recv(t, calls)
		assert.ErrorIs(t, c.err, balancer.ErrNoBackend)
		assert.Equal(t, "/", c.req.URL.Path)
	})

	t.Run("a picker's own error", func(t *testing.T) {
		set, _ := deadAndLive(t)
		errFull := errors.New("the test's picker is full")
		base, calls := serve(t, set, sticky.WithPicker(balancer.PickerFunc(func(balancer.Info) (*backend.Backend, error) {
			return nil, errFull
		})))
		check(t, get(t, newClient(t, false), base+"/"))
		c := recv(t, calls)
		assert.ErrorIs(t, c.err, balancer.ErrNoBackend)
		assert.ErrorIs(t, c.err, errFull)
	})

	t.Run("strict binding to an unhealthy backend", func(t *testing.T) {
		p := newPool(t, 2)
		base, calls := serve(t, p.set, sticky.WithStrictBinding(true))
		c := newClient(t, true)
		w := get(t, c, base+"/whoami")
		require.Equal(t, http.StatusOK, w.status)
		require.NoError(t, p.set.SetState(w.server, backend.Unhealthy)) // the other stays healthy: no failing open
		check(t, get(t, c, base+"/whoami"))
		assert.ErrorIs(t, recv(t, calls).err, balancer.ErrNoBackend)
	})
}

// TestHookPanics checks that a panic in a hook is recovered as a policy's
// or a picker's is: the client is answered 500, the request is counted
// out, and the handler serves on.
func TestHookPanics(t *testing.T) {
	boom := func() { panic("the test's hook") }
	for _, tc := range []struct {
		name string
		dead bool // the set's only backend refuses connections
		opt  sticky.Option
	}{
		{"Rewrite", false, sticky.WithRewrite(func(*httputil.ProxyRequest) { boom() })},
		{"ModifyResponse", false, sticky.WithModifyResponse(func(*http.Response) error { boom(); return nil })},
		{"ErrorHandler", true, sticky.WithErrorHandler(func(http.ResponseWriter, *http.Request, error) { boom() })},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, _ := recordingBackend(t, "app1", http.StatusOK)
			if tc.dead {
				cfg.URL = deadURL(t)
			}
			set, err := backend.NewSet([]backend.Config{cfg}, backend.WithEjection(backend.Ejection{}))
			require.NoError(t, err)
			h, err := sticky.New(set, newCookie(t), tc.opt)
			require.NoError(t, err)
			base := front(t, h)
			for range 2 {
				w := get(t, newClient(t, false), base+"/")
				assert.Equal(t, http.StatusInternalServerError, w.status)
			}
			assert.Zero(t, set.Snapshot().Lookup("app1").InFlight(), "not counted out")
		})
	}
}

// TestFlushInterval checks that WithFlushInterval(-1) hands the client
// each write of the backend at once: the client reads the first part of a
// body of known length while the backend still holds the rest.
func TestFlushInterval(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "10") // a known length: not flushed as a stream would be
		io.WriteString(w, "first")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "-last")
	}))
	t.Cleanup(srv.Close)
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	set, err := backend.NewSet([]backend.Config{{ID: "app1", URL: srv.URL}})
	require.NoError(t, err)
	h, err := sticky.New(set, newCookie(t), sticky.WithFlushInterval(-1))
	require.NoError(t, err)

	resp, err := http.Get(front(t, h) + "/")
	require.NoError(t, err)
	t.Cleanup(func() { resp.Body.Close() })
	first := make(chan string, 1)
	go func() {
		buf := make([]byte, 5)
		n, _ := io.ReadFull(resp.Body, buf)
		first <- string(buf[:n])
	}()
	select {
	case got := <-first:
		assert.Equal(t, "first", got)
	case <-time.After(10 * time.Second): // a guard against a hang, not a measure
		t.Fatal("the first write was not flushed while the backend held the rest")
	}
	once.Do(func() { close(release) })
	rest, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, "-last", string(rest))
}

// donePicker is a DonePicker over deadFirst that records what it is told.
type donePicker struct {
	mu    sync.Mutex
	picks []pickCall
	dones []balancer.DoneInfo
}

type pickCall struct {
	id    string
	tried []string
}

func (p *donePicker) Pick(info balancer.Info) (*backend.Backend, error) {
	b, err := deadFirst(info)
	if err != nil || b == nil {
		return b, err
	}
	var tried []string
	for _, t := range info.Tried {
		tried = append(tried, t.ID())
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.picks = append(p.picks, pickCall{b.ID(), tried})
	return b, nil
}

func (p *donePicker) Done(d balancer.DoneInfo) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dones = append(p.dones, d)
}

// TestDonePicker checks that a DonePicker is told of every placement it
// made exactly once: the failed attempt, with its dial error, before the
// retry, then the retry, with its status; that Info.Tried holds the failed
// backend on the retry's pick and nothing on a first; and that a request
// it did not place (a bound one) is not reported.
func TestDonePicker(t *testing.T) {
	set, _ := deadAndLive(t)
	live := set.Snapshot().Lookup("live")
	dead := set.Snapshot().Lookup("dead")
	p := &donePicker{}
	h, err := sticky.New(set, newCookie(t), sticky.WithPicker(p))
	require.NoError(t, err)
	base := front(t, h)

	c := newClient(t, true)
	require.Equal(t, "live", get(t, c, base+"/whoami").server)
	p.mu.Lock()
	assert.Equal(t, []pickCall{{"dead", nil}, {"live", []string{"dead"}}}, p.picks)
	if assert.Len(t, p.dones, 2) {
		first, retry := p.dones[0], p.dones[1]
		assert.Same(t, dead, first.Backend)
		assert.ErrorIs(t, first.Err, syscall.ECONNREFUSED)
		assert.Zero(t, first.StatusCode)
		assert.Same(t, live, retry.Backend)
		assert.NoError(t, retry.Err)
		assert.Equal(t, http.StatusOK, retry.StatusCode)
		for _, d := range p.dones {
			assert.Equal(t, "/whoami", d.Request.URL.Path)
			assert.GreaterOrEqual(t, d.Latency, time.Duration(0))
		}
	}
	p.mu.Unlock()

	require.Equal(t, "live", get(t, c, base+"/whoami").server) // bound: not placed by the picker
	p.mu.Lock()
	assert.Len(t, p.picks, 2)
	assert.Len(t, p.dones, 2, "a request the picker did not place was reported")
	p.mu.Unlock()
}

// statusPicker is a DonePicker that places every request on its set's
// first routable backend and counts what it is told.
type statusPicker struct {
	mu       sync.Mutex
	picks    int
	statuses map[int]int
}

func (p *statusPicker) Pick(info balancer.Info) (*backend.Backend, error) {
	p.mu.Lock()
	p.picks++
	p.mu.Unlock()
	return info.Snapshot.Routable()[0], nil
}

func (p *statusPicker) Done(d balancer.DoneInfo) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if d.Err != nil {
		p.statuses[-1]++
		return
	}
	p.statuses[d.StatusCode]++
}

// TestDonePickerConcurrent checks that under concurrent requests each
// placement is reported once, with the backend's status, whatever it is.
func TestDonePickerConcurrent(t *testing.T) {
	cfg, _ := recordingBackend(t, "app1", http.StatusServiceUnavailable)
	set, err := backend.NewSet([]backend.Config{cfg}, backend.WithEjection(backend.Ejection{}))
	require.NoError(t, err)
	p := &statusPicker{statuses: map[int]int{}}
	h, err := sticky.New(set, newCookie(t), sticky.WithPicker(p))
	require.NoError(t, err)
	base := front(t, h)
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			resp, err := http.Get(base + "/")
			if assert.NoError(t, err) {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	assert.Equal(t, 20, p.picks)
	assert.Equal(t, map[int]int{http.StatusServiceUnavailable: 20}, p.statuses)
}

// TestInvalidOptions lists each invalid value of each option and the error
// New gives for it; given together, New reports them all.
func TestInvalidOptions(t *testing.T) {
	set, err := backend.NewSet(nil)
	require.NoError(t, err)
	mapped := strings.Join([]string{"::ffff:10.0.0.0", "104"}, "/")
	tests := []struct {
		name string
		opt  sticky.Option
		want string
	}{
		{"negative retries", sticky.WithRetries(-1, time.Second), "sticky: WithRetries(-1, 1s): want n ≥ 0 and, with retries, a positive time"},
		{"negative retry time", sticky.WithRetries(0, -time.Second), "sticky: WithRetries(0, -1s): want n ≥ 0 and, with retries, a positive time"},
		{"retries without time", sticky.WithRetries(2, 0), "sticky: WithRetries(2, 0s): want n ≥ 0 and, with retries, a positive time"},
		{"invalid trusted prefix", sticky.WithTrustedProxies(netip.Prefix{}), "sticky: WithTrustedProxies(invalid Prefix): invalid prefix"},
		{"IPv4-mapped trusted prefix", sticky.WithTrustedProxies(netip.MustParsePrefix(mapped)), "sticky: WithTrustedProxies(::ffff:10.0.0.0/104): the prefix is IPv4-mapped IPv6; give it as IPv4"},
		{"empty Via", sticky.WithVia(""), "sticky: WithVia(\"\"): want a token (letters, digits and !#$%&'*+-.^_`|~) of 1 to 255 bytes"},
		{"nil picker", sticky.WithPicker(nil), "sticky: WithPicker(nil): nil picker"},
		{"nil key picker", sticky.WithKeyPicker(nil), "sticky: WithKeyPicker(nil): nil picker"},
		{"nil transport", sticky.WithTransport(nil), "sticky: WithTransport(nil): nil transport"},
		{"nil Rewrite", sticky.WithRewrite(nil), "sticky: WithRewrite(nil): nil function"},
		{"nil ModifyResponse", sticky.WithModifyResponse(nil), "sticky: WithModifyResponse(nil): nil function"},
		{"nil ErrorHandler", sticky.WithErrorHandler(nil), "sticky: WithErrorHandler(nil): nil function"},
		{"nil observer", sticky.WithObserver(nil), "sticky: WithObserver(nil): nil observer"},
		{"negative body timeout", sticky.WithBodyTimeout(-time.Second), "sticky: WithBodyTimeout(-1s): negative"},
		{"negative write timeout", sticky.WithWriteTimeout(-time.Second), "sticky: WithWriteTimeout(-1s): negative"},
	}
	var all []sticky.Option
	var want []string
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := sticky.New(set, newCookie(t), tt.opt)
			assert.Nil(t, h)
			assert.EqualError(t, err, tt.want)
		})
		all, want = append(all, tt.opt), append(want, tt.want)
	}
	t.Run("all together", func(t *testing.T) {
		// The last WithRetries is the one that counts; the others are
		// replaced, as a later option replaces an earlier one.
		h, err := sticky.New(set, newCookie(t), all...)
		assert.Nil(t, h)
		require.Error(t, err)
		for _, w := range want[2:] {
			assert.Contains(t, err.Error(), w)
		}
		assert.Len(t, strings.Split(err.Error(), "\n"), len(want)-2)
	})
}
