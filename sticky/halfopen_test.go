package sticky_test

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/internal/demoapp"
	"github.com/affinitylb/affinity/sticky"
)

// timeline is what happened to one backend, in order: "dial" for each
// connection made to it, and the set's log messages about it.
type timeline struct {
	mu     sync.Mutex
	events []string
}

func (tl *timeline) add(e string) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.events = append(tl.events, e)
}

func (tl *timeline) get() []string {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return append([]string(nil), tl.events...)
}

func (tl *timeline) count(e string) int {
	n := 0
	for _, x := range tl.get() {
		if x == e {
			n++
		}
	}
	return n
}

// timelineLog is a slog handler that adds the messages about one backend
// to a timeline.
type timelineLog struct {
	id string
	tl *timeline
}

func (l timelineLog) Enabled(context.Context, slog.Level) bool { return true }
func (l timelineLog) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l timelineLog) WithGroup(string) slog.Handler            { return l }
func (l timelineLog) Handle(_ context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "id" && a.Value.String() == l.id {
			l.tl.add(r.Message)
			return false
		}
		return true
	})
	return nil
}

// flakyListener notes every connection on a timeline and, while the
// server is dead, closes it at once: the server's address takes
// connections, and every request to it fails.
type flakyListener struct {
	net.Listener
	alive atomic.Bool
	tl    *timeline
}

func (l *flakyListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		l.tl.add("dial") // before the close, so before the failure it causes
		if l.alive.Load() {
			return c, nil
		}
		c.Close()
	}
}

const (
	msgEjected     = "backend ejected"
	msgTrialFailed = "trial request failed; backend ejected again"
	msgReadmitted  = "backend re-admitted after a successful request"
)

// TestEjectedBackendIsTriedWithOneRequestPerBackOff checks passive
// ejection as a circuit breaker, through the handler: a dead backend,
// once ejected, gets exactly one request per back-off period, never shows
// healthy while it is dead, and once it comes back is re-admitted after
// its first successful request and gets new clients again.
func TestEjectedBackendIsTriedWithOneRequestPerBackOff(t *testing.T) {
	const id = "app3"
	tl := &timeline{}
	p := newPool(t, 2,
		backend.WithEjection(backend.Ejection{After: 2, Base: 100 * time.Millisecond, Max: 400 * time.Millisecond}),
		backend.WithLogger(slog.New(timelineLog{id: id, tl: tl})))
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ln := &flakyListener{Listener: inner, tl: tl}
	srv := &http.Server{Handler: demoapp.New(id)}
	go srv.Serve(ln) //nolint:errcheck // ends with ErrServerClosed
	t.Cleanup(func() { srv.Close() })
	flaky, err := p.set.Add(backend.Config{ID: id, URL: "http://" + inner.Addr().String()})
	require.NoError(t, err)

	ck := newCookie(t)
	h, err := sticky.New(p.set, ck)
	require.NoError(t, err)
	base := front(t, h)
	boundToFlaky := &http.Cookie{Name: ck.Name(), Value: ck.Issue(id)}

	// Two requests in a row, of two clients, fail and eject it; the
	// handler retries them elsewhere.
	for i := range 2 {
		w := get(t, peerClient(t, false, 1+i), base+"/whoami", boundToFlaky)
		assert.NotEqual(t, id, w.server)
	}
	require.Equal(t, backend.Unhealthy, flaky.State(), "two failures did not eject")
	start := len(tl.get())
	require.Equal(t, []string{"backend added", "dial", "dial", msgEjected, "backend state changed"}, tl.get()[:start])

	// traffic sends requests from clients bound to the backend and from
	// new ones, and samples its state, until stop is closed.
	traffic := func(t *testing.T, stop <-chan struct{}, sawHealthy *atomic.Bool) *sync.WaitGroup {
		var wg sync.WaitGroup
		for i := range 4 {
			wg.Go(func() {
				c := newClient(t, false)
				for {
					select {
					case <-stop:
						return
					default:
					}
					if i%2 == 0 {
						get(t, c, base+"/whoami", boundToFlaky)
					} else {
						get(t, c, base+"/whoami")
					}
				}
			})
		}
		if sawHealthy != nil {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					if flaky.State() == backend.Healthy {
						sawHealthy.Store(true)
					}
					time.Sleep(time.Millisecond)
				}
			})
		}
		return &wg
	}

	t.Run("dead: one trial per back-off, never healthy", func(t *testing.T) {
		stop := make(chan struct{})
		var sawHealthy atomic.Bool
		wg := traffic(t, stop, &sawHealthy)
		ok := assert.Eventually(t, func() bool { return tl.count(msgTrialFailed) >= 4 }, 10*time.Second, 5*time.Millisecond,
			"the dead backend was not tried and ejected again 4 times")
		close(stop)
		wg.Wait() // every request has reported: every dial's failure is on the timeline
		assert.False(t, sawHealthy.Load(), "a dead backend was shown healthy")
		require.True(t, ok, "timeline: %v", tl.get())

		assert.Equal(t, backend.Unhealthy, flaky.State())
		// After the ejection, each dial is a trial that fails and ejects
		// it again: one request per back-off period, and no other.
		var got []string
		for _, e := range tl.get()[start:] {
			if e == "dial" || e == msgTrialFailed || e == msgEjected || strings.HasPrefix(e, "backend state changed") {
				got = append(got, e)
			}
		}
		want := make([]string, 0, len(got))
		for range tl.count(msgTrialFailed) {
			want = append(want, "dial", msgTrialFailed)
		}
		assert.Equal(t, want, got)
	})

	t.Run("alive again: re-admitted after a successful trial, then takes new clients", func(t *testing.T) {
		ln.alive.Store(true)
		stop := make(chan struct{})
		wg := traffic(t, stop, nil)
		ok := assert.Eventually(t, func() bool { return flaky.State() == backend.Healthy }, 10*time.Second, 5*time.Millisecond,
			"not re-admitted")
		close(stop)
		wg.Wait()
		require.True(t, ok, "timeline: %v", tl.get())
		assert.Equal(t, 1, tl.count(msgReadmitted), "timeline: %v", tl.get())

		n := 0
		for range 6 {
			w := get(t, newClient(t, false), base+"/whoami")
			require.Equal(t, http.StatusOK, w.status)
			if w.server == id {
				n++
			}
		}
		assert.Positive(t, n, "the re-admitted backend got no new client")
	})
}
