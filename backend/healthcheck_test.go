package backend_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/internal/accounting"
)

// checkWait bounds every wait for something the health checks should do
// soon; it only keeps a broken test from hanging.
const checkWait = 10 * time.Second

// fastInterval is the interval of most tests: probes come quickly.
const fastInterval = 10 * time.Millisecond

// serve starts a loopback backend that runs h, until the test ends.
func serve(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// counting returns a handler that answers status and counts the requests
// it answers.
func counting(status int, n *atomic.Int64) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.WriteHeader(status)
	}
}

// checkHealth runs set.CheckHealth until the test ends, and then checks
// that it returned context.Canceled. Servers the test started before are
// closed after it has returned.
func checkHealth(t *testing.T, set *backend.Set, hc backend.HealthCheck) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- set.CheckHealth(ctx, hc) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			assert.ErrorIs(t, err, context.Canceled, "CheckHealth's result")
		case <-time.After(checkWait):
			t.Error("CheckHealth did not return after its context was cancelled")
		}
	})
}

// waitState waits until b is in state want.
func waitState(t *testing.T, b *backend.Backend, want backend.State, msgAndArgs ...any) {
	t.Helper()
	require.Eventually(t, func() bool { return b.State() == want }, checkWait, time.Millisecond, msgAndArgs...)
}

// waitCount waits until n reaches at least want.
func waitCount(t *testing.T, n *atomic.Int64, want int64, msgAndArgs ...any) {
	t.Helper()
	require.Eventually(t, func() bool { return n.Load() >= want }, checkWait, time.Millisecond, msgAndArgs...)
}

// addBackend adds a backend at url to set, with the given ID.
func addBackend(t *testing.T, set *backend.Set, id, url string) *backend.Backend {
	t.Helper()
	b, err := set.Add(backend.Config{ID: id, URL: url})
	require.NoError(t, err)
	return b
}

// verdict records the first thing a handler saw that the test should fail
// on; handlers run on the server's goroutines, where t.Fatal must not be
// called.
type verdict struct{ first atomic.Pointer[string] }

func (v *verdict) failf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	v.first.CompareAndSwap(nil, &msg)
}

func (v *verdict) check(t *testing.T) {
	t.Helper()
	if msg := v.first.Load(); msg != nil {
		t.Error(*msg)
	}
}

func TestHealthCheckConfigIsValidated(t *testing.T) {
	for _, tc := range []struct {
		name string
		hc   backend.HealthCheck
		want string // "" for a valid config
	}{
		{"zero value", backend.HealthCheck{}, ""},
		{"least interval, timeout equal to it", backend.HealthCheck{Interval: 10 * time.Millisecond, Timeout: 10 * time.Millisecond}, ""},
		{"one status, query in path", backend.HealthCheck{Path: "/health?full=1", MinStatus: 204, MaxStatus: 204}, ""},
		{"host and port", backend.HealthCheck{Host: "app.internal:8080"}, ""},

		{"relative path", backend.HealthCheck{Path: "healthz"}, `HealthCheck.Path "healthz": must start with "/"`},
		{"path with fragment", backend.HealthCheck{Path: "/healthz#x"}, `HealthCheck.Path "/healthz#x"`},
		{"host in path", backend.HealthCheck{Path: "//evil.example/x"}, `HealthCheck.Path "//evil.example/x"`},
		{"short interval", backend.HealthCheck{Interval: 5 * time.Millisecond}, "HealthCheck.Interval 5ms: less than 10ms"},
		{"negative interval", backend.HealthCheck{Interval: -time.Second}, "HealthCheck.Interval -1s"},
		{"negative timeout", backend.HealthCheck{Timeout: -time.Second}, "HealthCheck.Timeout -1s: negative"},
		{"timeout over interval", backend.HealthCheck{Interval: time.Second, Timeout: 2 * time.Second}, "HealthCheck.Timeout 2s: more than Interval 1s"},
		{"timeout over default interval", backend.HealthCheck{Timeout: 6 * time.Second}, "HealthCheck.Timeout 6s: more than Interval 5s"},
		{"min status too low", backend.HealthCheck{MinStatus: 99}, "HealthCheck.MinStatus 99: out of range 100..599"},
		{"max status too high", backend.HealthCheck{MaxStatus: 600}, "HealthCheck.MaxStatus 600: out of range 100..599"},
		{"min over default max", backend.HealthCheck{MinStatus: 500}, "HealthCheck.MinStatus 500: more than MaxStatus 399"},
		{"negative rise", backend.HealthCheck{Rise: -1}, "HealthCheck.Rise -1: negative"},
		{"negative fall", backend.HealthCheck{Fall: -2}, "HealthCheck.Fall -2: negative"},
		{"host with space", backend.HealthCheck{Host: "a b"}, `HealthCheck.Host "a b"`},
		{"host with path", backend.HealthCheck{Host: "a/b"}, `HealthCheck.Host "a/b"`},
		{"TLS config with a client", backend.HealthCheck{Client: &http.Client{}, TLSConfig: &tls.Config{}},
			"HealthCheck.TLSConfig: set with Client, which it would not configure; set the TLS configuration in Client's transport"},
		{"both statuses out of range", backend.HealthCheck{MinStatus: 99, MaxStatus: 600},
			"HealthCheck.MinStatus 99: out of range 100..599\nbackend: HealthCheck.MaxStatus 600: out of range 100..599"},
		{"every field reported", backend.HealthCheck{Path: "healthz", Interval: time.Millisecond, Timeout: -time.Second,
			MinStatus: 600, Rise: -1, Fall: -1, Host: "a b", Client: &http.Client{}, TLSConfig: &tls.Config{}},
			`HealthCheck.Path "healthz": must start with "/"` + "\n" +
				"backend: HealthCheck.Interval 1ms: less than 10ms\n" +
				"backend: HealthCheck.Timeout -1s: negative\n" +
				"backend: HealthCheck.MinStatus 600: out of range 100..599\n" +
				"backend: HealthCheck.Rise -1: negative\n" +
				"backend: HealthCheck.Fall -1: negative\n" +
				"backend: HealthCheck.TLSConfig: set with Client, which it would not configure; set the TLS configuration in Client's transport\n" +
				`backend: HealthCheck.Host "a b": not a host[:port]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set := threeBackends(t)
			// Done before it starts: a valid config returns ctx.Err() at
			// once, an invalid one its error, before looking at ctx.
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			err := set.CheckHealth(ctx, tc.hc)
			_, effErr := tc.hc.Effective()
			if tc.want == "" {
				assert.ErrorIs(t, err, context.Canceled)
				assert.NoError(t, effErr, "Effective")
				return
			}
			assert.ErrorContains(t, err, "backend: "+tc.want)
			assert.NotErrorIs(t, err, context.Canceled)
			assert.EqualError(t, effErr, err.Error(), "Effective gives CheckHealth's error")
		})
	}
}

func TestHealthCheckEffective(t *testing.T) {
	for _, tc := range []struct {
		name string
		hc   backend.HealthCheck
		want backend.HealthCheck
	}{
		{"zero value", backend.HealthCheck{},
			backend.HealthCheck{Path: "/", Interval: 5 * time.Second, Timeout: 2 * time.Second, MinStatus: 200, MaxStatus: 399, Rise: 2, Fall: 3}},
		{"short interval bounds the timeout", backend.HealthCheck{Path: "/healthz", Interval: time.Second},
			backend.HealthCheck{Path: "/healthz", Interval: time.Second, Timeout: time.Second, MinStatus: 200, MaxStatus: 399, Rise: 2, Fall: 3}},
		{"every field set", backend.HealthCheck{Path: "/h", Interval: time.Minute, Timeout: 3 * time.Second, MinStatus: 204, MaxStatus: 204, Rise: 5, Fall: 1, Host: "app"},
			backend.HealthCheck{Path: "/h", Interval: time.Minute, Timeout: 3 * time.Second, MinStatus: 204, MaxStatus: 204, Rise: 5, Fall: 1, Host: "app"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.hc.Effective()
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestHealthCheckRiseAndFall(t *testing.T) {
	const rise, fall = 2, 3
	set, err := backend.NewSet(nil)
	require.NoError(t, err)
	state := func() backend.State { return set.Snapshot().Lookup("a").State() }

	// The test moves the backend through three phases: passing, failing,
	// passing again. Probes are sequential, each recorded before the next
	// is sent, so the state a probe finds on arrival tells how many before
	// it had counted.
	const (
		up = iota
		failing
		recovering
	)
	var (
		phase         atomic.Int32
		passes, fails atomic.Int64
		recovered     atomic.Int64
		v             verdict
	)
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		switch phase.Load() {
		case up:
			passes.Add(1)
		case failing:
			if n := fails.Add(1); n <= fall && state() != backend.Healthy {
				v.failf("failure %d of %d found the backend %s", n, fall, state())
			}
			w.WriteHeader(http.StatusServiceUnavailable)
		case recovering:
			if n := recovered.Add(1); n <= rise && state() != backend.Unhealthy {
				v.failf("success %d of %d found the backend %s", n, rise, state())
			}
		}
	})
	addBackend(t, set, "a", srv.URL)
	checkHealth(t, set, backend.HealthCheck{Interval: fastInterval, Rise: rise, Fall: fall})

	waitCount(t, &passes, 3, "probes while up")
	assert.Equal(t, backend.Healthy, state())

	phase.Store(failing)
	require.Eventually(t, func() bool { return state() == backend.Unhealthy }, checkWait, time.Millisecond)
	assert.GreaterOrEqual(t, fails.Load(), int64(fall))

	phase.Store(recovering)
	require.Eventually(t, func() bool { return state() == backend.Healthy }, checkWait, time.Millisecond)
	assert.GreaterOrEqual(t, recovered.Load(), int64(rise))
	v.check(t)
}

func TestHealthCheckStatus(t *testing.T) {
	for _, tc := range []struct {
		name     string
		status   int
		min, max int
		wantDown bool
	}{
		{"503 fails", http.StatusServiceUnavailable, 0, 0, true},
		{"500 fails", http.StatusInternalServerError, 0, 0, true},
		{"404 fails", http.StatusNotFound, 0, 0, true},
		{"204 passes", http.StatusNoContent, 0, 0, false},
		{"302 passes by default, not followed", http.StatusFound, 0, 0, false},
		{"302 fails 200..299", http.StatusFound, 200, 299, true},
		{"404 passes 200..499", http.StatusNotFound, 200, 499, false},
		{"200 fails 204..204", http.StatusOK, 204, 204, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var probes, followed atomic.Int64
			mux := http.NewServeMux()
			mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
				probes.Add(1)
				if tc.status/100 == 3 {
					w.Header().Set("Location", "/elsewhere")
				}
				w.WriteHeader(tc.status)
			})
			mux.HandleFunc("/elsewhere", counting(http.StatusInternalServerError, &followed))
			srv := serve(t, mux.ServeHTTP)
			set, err := backend.NewSet(nil)
			require.NoError(t, err)
			a := addBackend(t, set, "a", srv.URL)
			checkHealth(t, set, backend.HealthCheck{
				Path: "/healthz", Interval: fastInterval, Fall: 1, Rise: 1,
				MinStatus: tc.min, MaxStatus: tc.max,
			})

			if tc.wantDown {
				waitState(t, a, backend.Unhealthy)
				return
			}
			// With Fall 1 any failure would be the verdict; three probes
			// received means at least two recorded.
			waitCount(t, &probes, 3)
			assert.Equal(t, backend.Healthy, a.State())
			assert.Zero(t, followed.Load(), "a redirect was followed")
		})
	}
}

func TestHealthCheckFailures(t *testing.T) {
	for _, tc := range []struct {
		name string
		url  func(t *testing.T) string
	}{
		{"timeout", func(t *testing.T) string {
			return serve(t, func(w http.ResponseWriter, r *http.Request) {
				<-r.Context().Done() // until the probe gives up
			}).URL
		}},
		{"dead backend", func(t *testing.T) string {
			srv := httptest.NewServer(http.NotFoundHandler())
			srv.Close() // connection refused
			return srv.URL
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set, err := backend.NewSet(nil)
			require.NoError(t, err)
			a := addBackend(t, set, "a", tc.url(t))
			checkHealth(t, set, backend.HealthCheck{Interval: 50 * time.Millisecond, Timeout: 10 * time.Millisecond, Fall: 2})
			waitState(t, a, backend.Unhealthy)
		})
	}
}

// TestHealthCheckTLSConfig checks that the default client's probes of an
// https backend trust TLSConfig's roots, and only the system's without it:
// the test server's certificate is signed by an authority of its own.
func TestHealthCheckTLSConfig(t *testing.T) {
	var probes atomic.Int64
	srv := httptest.NewTLSServer(counting(http.StatusOK, &probes))
	t.Cleanup(srv.Close)
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	for _, tc := range []struct {
		name string
		tls  *tls.Config
		want backend.State
	}{
		{"the server's authority", &tls.Config{RootCAs: roots}, backend.Healthy},
		{"system roots only", nil, backend.Unhealthy},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set, err := backend.NewSet(nil)
			require.NoError(t, err)
			a := addBackend(t, set, "a", srv.URL)
			if tc.want == backend.Healthy { // it must come up by its probes
				require.NoError(t, set.SetState("a", backend.Unhealthy))
			}
			before := probes.Load()
			checkHealth(t, set, backend.HealthCheck{Interval: fastInterval, Rise: 1, Fall: 1, TLSConfig: tc.tls})
			waitState(t, a, tc.want)
			if tc.want == backend.Healthy {
				assert.Greater(t, probes.Load(), before, "probes reached the backend")
			}
		})
	}
}

func TestHealthCheckEndsEjection(t *testing.T) {
	set, err := backend.NewSet(nil, backend.WithEjection(backend.Ejection{After: 1, Base: time.Hour, Max: time.Hour}))
	require.NoError(t, err)
	var (
		probes atomic.Int64
		v      verdict
	)
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		// The first probe passes; the second must find it back.
		if n := probes.Add(1); n >= 2 && set.Snapshot().Lookup("a").State() != backend.Healthy {
			v.failf("probe %d found the ejected backend still %s", n, set.Snapshot().Lookup("a").State())
		}
	})
	a := addBackend(t, set, "a", srv.URL)
	accounting.ReportFailure(a)
	require.Equal(t, backend.Unhealthy, a.State(), "not ejected")

	// Rise does not apply: the backend was ejected, not down.
	checkHealth(t, set, backend.HealthCheck{Interval: fastInterval, Rise: 5})
	waitState(t, a, backend.Healthy, "ejection not ended by a passing probe")
	waitCount(t, &probes, 2)
	v.check(t)
}

func TestHealthCheckLeavesDrainingAlone(t *testing.T) {
	var status atomic.Int32
	status.Store(http.StatusServiceUnavailable)
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(int(status.Load())) })
	set, err := backend.NewSet(nil)
	require.NoError(t, err)
	a := addBackend(t, set, "a", srv.URL)
	require.NoError(t, set.SetState("a", backend.Draining))

	checkHealth(t, set, backend.HealthCheck{Interval: fastInterval, Fall: 1, Rise: 1})
	waitState(t, a, backend.Unhealthy, "a failing draining backend is unhealthy")
	status.Store(http.StatusOK)
	waitState(t, a, backend.Draining, "a recovered draining backend is still draining")
}

func TestHealthCheckFollowsMembership(t *testing.T) {
	t.Run("added and removed", func(t *testing.T) {
		var probesA, probesB atomic.Int64
		srvA := serve(t, counting(http.StatusOK, &probesA))
		srvB := serve(t, counting(http.StatusOK, &probesB))
		set, err := backend.NewSet(nil)
		require.NoError(t, err)
		addBackend(t, set, "a", srvA.URL)
		checkHealth(t, set, backend.HealthCheck{Interval: fastInterval})
		waitCount(t, &probesA, 1)

		addBackend(t, set, "b", srvB.URL)
		waitCount(t, &probesB, 1, "an added backend is not probed")

		_, err = set.Remove("a")
		require.NoError(t, err)
		before, fromB := probesA.Load(), probesB.Load()
		waitCount(t, &probesB, fromB+10)
		// A probe of a may have been in flight when it was removed, and one
		// more sent by a round that began before; no other.
		assert.LessOrEqual(t, probesA.Load(), before+2, "a removed backend is still probed")
	})

	t.Run("a replaced backend starts over", func(t *testing.T) {
		const fall = 3
		set, err := backend.NewSet(nil)
		require.NoError(t, err)
		var (
			newFails atomic.Int64
			v        verdict
		)
		oldSrv := serve(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
		newSrv := serve(t, func(w http.ResponseWriter, r *http.Request) {
			if n := newFails.Add(1); n <= fall && set.Snapshot().Lookup("a").State() != backend.Healthy {
				v.failf("failure %d of %d found the new backend %s", n, fall, set.Snapshot().Lookup("a").State())
			}
			w.WriteHeader(http.StatusServiceUnavailable)
		})
		old := addBackend(t, set, "a", oldSrv.URL)
		checkHealth(t, set, backend.HealthCheck{Interval: fastInterval, Fall: fall})
		waitState(t, old, backend.Unhealthy)

		// Same ID, new URL: a new backend, healthy, with no failures counted.
		require.NoError(t, set.Update([]backend.Config{{ID: "a", URL: newSrv.URL}}))
		replaced := set.Snapshot().Lookup("a")
		require.NotSame(t, old, replaced)
		assert.Equal(t, backend.Healthy, replaced.State())
		waitState(t, replaced, backend.Unhealthy)
		assert.GreaterOrEqual(t, newFails.Load(), int64(fall))
		v.check(t)
	})
}

func TestHealthCheckRequest(t *testing.T) {
	for _, tc := range []struct {
		name      string
		prefix    string // the backend URL's path
		hc        backend.HealthCheck
		wantPath  string
		wantQuery string
		wantHost  string // "" for the backend's host:port
	}{
		{"default path", "", backend.HealthCheck{}, "/", "", ""},
		{"path", "", backend.HealthCheck{Path: "/healthz"}, "/healthz", "", ""},
		{"joined to the URL's path", "/app", backend.HealthCheck{Path: "/healthz"}, "/app/healthz", "", ""},
		{"default path under a prefix", "/app", backend.HealthCheck{}, "/app/", "", ""},
		{"prefix with a slash, query", "/app/", backend.HealthCheck{Path: "/healthz?full=1"}, "/app/healthz", "full=1", ""},
		{"host header", "", backend.HealthCheck{Host: "app.internal"}, "/", "", "app.internal"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			type probe struct{ method, path, query, host, agent string }
			got := make(chan probe, 1)
			srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
				select {
				case got <- probe{r.Method, r.URL.Path, r.URL.RawQuery, r.Host, r.UserAgent()}:
				default:
				}
			})
			set, err := backend.NewSet(nil)
			require.NoError(t, err)
			addBackend(t, set, "a", srv.URL+tc.prefix)
			tc.hc.Interval = fastInterval
			checkHealth(t, set, tc.hc)

			var p probe
			select {
			case p = <-got:
			case <-time.After(checkWait):
				t.Fatal("no probe")
			}
			wantHost := tc.wantHost
			if wantHost == "" {
				wantHost = strings.TrimPrefix(srv.URL, "http://")
			}
			assert.Equal(t, probe{http.MethodGet, tc.wantPath, tc.wantQuery, wantHost, "affinity-health-check"}, p)
		})
	}
}

func TestHealthCheckStopsWithContext(t *testing.T) {
	inFlight := make(chan struct{}, 1)
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case inFlight <- struct{}{}:
		default:
		}
		<-r.Context().Done() // until the probe is cancelled
	})
	set, err := backend.NewSet(nil)
	require.NoError(t, err)
	a := addBackend(t, set, "a", srv.URL)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- set.CheckHealth(ctx, backend.HealthCheck{Interval: time.Second, Timeout: time.Second, Fall: 1})
	}()
	select {
	case <-inFlight:
	case <-time.After(checkWait):
		t.Fatal("no probe")
	}
	cancel()
	select {
	case err := <-done:
		assert.ErrorIs(t, err, context.Canceled)
	case <-time.After(checkWait):
		t.Fatal("CheckHealth did not return with a probe in flight")
	}
	assert.Equal(t, backend.Healthy, a.State(), "the cancelled probe counted as a failure")
}

// syncBuffer is a bytes.Buffer safe for concurrent writes, for a logger.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestHealthCheckLogs(t *testing.T) {
	var out syncBuffer
	logger := slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
	// No HealthCheck.Logger: the set's is used.
	set, err := backend.NewSet(nil, backend.WithLogger(logger))
	require.NoError(t, err)
	a := addBackend(t, set, "a", srv.URL)
	checkHealth(t, set, backend.HealthCheck{Interval: fastInterval, Fall: 2})
	waitState(t, a, backend.Unhealthy)
	// The state is set before the change is logged.
	changed := `level=INFO msg="backend state changed" id=a from=healthy to=unhealthy`
	require.Eventually(t, func() bool { return strings.Contains(out.String(), changed) }, 10*time.Second, time.Millisecond)

	logs := out.String()
	assert.Contains(t, logs, `level=DEBUG msg="health check failed" id=a err="status 503, want 200..399" fails=1 fall=2`)
	assert.Contains(t, logs, `level=WARN msg="backend failed health checks" id=a fails=2`)
	assert.Contains(t, logs, `level=INFO msg="backend state changed" id=a from=healthy to=unhealthy`)
	assert.NotContains(t, logs, "level=INFO msg=\"health check", "probes are logged at Debug only")
}

func ExampleSet_CheckHealth() {
	// A backend whose health endpoint says it is not ready.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()

	set, err := backend.NewSet([]backend.Config{{ID: "web-1", URL: srv.URL}})
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- set.CheckHealth(ctx, backend.HealthCheck{
			Path:     "/healthz",
			Interval: 50 * time.Millisecond, // seconds, in production
			Fall:     2,
		})
	}()

	// Two failed probes later, web-1 is down.
	web1 := set.Snapshot().Lookup("web-1")
	for web1.State() == backend.Healthy {
		time.Sleep(10 * time.Millisecond)
	}
	fmt.Println(web1, web1.State())

	cancel()
	fmt.Println(<-done)
	// Output:
	// web-1 unhealthy
	// context canceled
}
