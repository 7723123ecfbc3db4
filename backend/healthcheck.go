package backend

import (
	"container/heap"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/affinitylb/affinity/internal/h2c"

	"golang.org/x/sync/errgroup"
)

const (
	defaultCheckInterval = 5 * time.Second
	minCheckInterval     = 10 * time.Millisecond
	defaultCheckTimeout  = 2 * time.Second
	defaultRise          = 2
	defaultFall          = 3

	// maxProbes bounds the probes in flight at once. When more are due, the
	// others wait their turn, so a round over many backends that time out
	// can take longer than the interval.
	maxProbes = 64
	// maxProbeBody is how much of a probe's response body is read.
	maxProbeBody = 4 << 10
	// checkUserAgent is every probe's User-Agent.
	checkUserAgent = "affinity-health-check"
)

// HealthCheck configures active HTTP health checks, run by
// [Set.CheckHealth], in the rise/fall model of HAProxy and load balancers
// such as ELB: a backend that fails Fall probes in a row is marked down
// (Unhealthy), and one that is down comes back after Rise probes in a row
// pass. Every field has a useful zero value.
type HealthCheck struct {
	// Path is the request path, with an optional query, such as "/healthz"
	// or "/health?full=1"; "/" when empty. It must start with "/". It is
	// joined to the path of the backend's URL: a backend at
	// http://10.0.0.1:8080/app is probed at /app/healthz (and at /app/ for
	// the default "/").
	Path string
	// Interval is the time between two probes of a backend: 5 seconds when
	// zero, at least 10ms. Each backend's probes are offset by a random
	// phase and each wait is jittered by up to ±10%, so that a large set is
	// not probed in one burst.
	Interval time.Duration
	// Timeout bounds each probe, from dialing to reading the response: the
	// smaller of 2 seconds and Interval when zero, at most Interval.
	Timeout time.Duration
	// MinStatus and MaxStatus are the range of response status codes, both
	// included, that pass: 200 and 399 when zero. Any other status, a
	// timeout or a transport error fails.
	MinStatus, MaxStatus int
	// Rise is how many probes in a row must pass for a backend that is down
	// to be marked healthy: 2 when zero.
	Rise int
	// Fall is how many probes in a row must fail for a backend to be marked
	// down: 3 when zero.
	Fall int
	// Host, if set, is the Host header of every probe, for backends that
	// route by virtual host. It does not change the address dialed.
	Host string
	// Client sends the probes. When nil, each call of [Set.CheckHealth]
	// uses a client of its own that opens a new connection for every probe
	// (as HAProxy does, so that a probe also tests accepting connections),
	// follows no redirects, ignores proxy environment variables, checks
	// https certificates as TLSConfig says and probes h2c backends over
	// HTTP/2 without TLS. A Client's redirect policy and timeouts are its
	// own, and it probes h2c backends only if its transport knows the h2c
	// scheme (as one made by the sticky package's DefaultTransport does).
	Client *http.Client
	// TLSConfig is the TLS configuration of the default client's probes of
	// https backends, such as a private authority's roots (RootCAs); nil
	// checks certificates against the system roots. It must be nil when
	// Client is set (a Client's TLS configuration is its transport's). It
	// is cloned: later changes to it are not seen.
	TLSConfig *tls.Config
	// Logger receives a Debug record with the reason for every failed probe,
	// and the health checks' verdicts: a backend marked down at Warn, one
	// marked healthy at Info. Nil means the set's logger ([WithLogger]).
	Logger *slog.Logger
}

// Effective returns hc with each zero field replaced by the value it stands
// for (Path "/", Interval 5s, Timeout the smaller of 2s and Interval,
// statuses 200 to 399, Rise 2, Fall 3), as [Set.CheckHealth] runs it, or
// the error CheckHealth would return for it.
func (hc HealthCheck) Effective() (HealthCheck, error) {
	err := hc.validate()
	return hc, err
}

// validate checks hc, fills in its defaults, and reports every invalid
// field.
func (hc *HealthCheck) validate() error {
	var errs []error
	if hc.Path == "" {
		hc.Path = "/"
	}
	if !strings.HasPrefix(hc.Path, "/") {
		errs = append(errs, fmt.Errorf("backend: HealthCheck.Path %q: must start with \"/\"", hc.Path))
	} else if u, err := url.Parse(hc.Path); err != nil || u.Fragment != "" || u.Host != "" {
		errs = append(errs, fmt.Errorf("backend: HealthCheck.Path %q: not a path with an optional query", hc.Path))
	}
	switch {
	case hc.Interval == 0:
		hc.Interval = defaultCheckInterval
	case hc.Interval < minCheckInterval:
		errs = append(errs, fmt.Errorf("backend: HealthCheck.Interval %v: less than %v", hc.Interval, minCheckInterval))
	}
	switch {
	case hc.Timeout == 0:
		hc.Timeout = min(defaultCheckTimeout, hc.Interval)
	case hc.Timeout < 0:
		errs = append(errs, fmt.Errorf("backend: HealthCheck.Timeout %v: negative", hc.Timeout))
	case hc.Timeout > hc.Interval:
		errs = append(errs, fmt.Errorf("backend: HealthCheck.Timeout %v: more than Interval %v", hc.Timeout, hc.Interval))
	}
	if hc.MinStatus == 0 {
		hc.MinStatus = 200
	}
	if hc.MaxStatus == 0 {
		hc.MaxStatus = 399
	}
	minOK := hc.MinStatus >= 100 && hc.MinStatus <= 599
	if !minOK {
		errs = append(errs, fmt.Errorf("backend: HealthCheck.MinStatus %d: out of range 100..599", hc.MinStatus))
	}
	maxOK := hc.MaxStatus >= 100 && hc.MaxStatus <= 599
	if !maxOK {
		errs = append(errs, fmt.Errorf("backend: HealthCheck.MaxStatus %d: out of range 100..599", hc.MaxStatus))
	}
	if minOK && maxOK && hc.MinStatus > hc.MaxStatus {
		errs = append(errs, fmt.Errorf("backend: HealthCheck.MinStatus %d: more than MaxStatus %d", hc.MinStatus, hc.MaxStatus))
	}
	switch {
	case hc.Rise == 0:
		hc.Rise = defaultRise
	case hc.Rise < 0:
		errs = append(errs, fmt.Errorf("backend: HealthCheck.Rise %d: negative", hc.Rise))
	}
	switch {
	case hc.Fall == 0:
		hc.Fall = defaultFall
	case hc.Fall < 0:
		errs = append(errs, fmt.Errorf("backend: HealthCheck.Fall %d: negative", hc.Fall))
	}
	if hc.Client != nil && hc.TLSConfig != nil {
		errs = append(errs, errors.New("backend: HealthCheck.TLSConfig: set with Client, which it would not configure; set the TLS configuration in Client's transport"))
	}
	if hc.Host != "" {
		if u, err := url.Parse("http://" + hc.Host + "/"); err != nil || u.Host != hc.Host {
			errs = append(errs, fmt.Errorf("backend: HealthCheck.Host %q: not a host[:port]", hc.Host))
		}
	}
	return errors.Join(errs...)
}

// CheckHealth probes the set's members as hc says until ctx is done, marks
// those that fail down and those that recover healthy, and returns
// ctx.Err(). An invalid hc is reported at once, before any probe, by an
// error naming each invalid field and its value.
//
// Every member of the current snapshot is probed: a backend that joins
// while CheckHealth runs is first probed within about two intervals, one
// that leaves is forgotten, and a backend replaced by [Set.Update] starts
// over with no probes counted. Each backend starts in the state the set
// holds: a healthy one needs Fall failures to go down; one already down
// (say, by [Set.SetState]) needs Rise successes to come back.
//
// A passing probe also ends a passive ejection ([Ejection]) at once, since
// the backend has just shown it answers. Health checks do not start or
// end a drain: a draining backend that fails is Unhealthy, and Draining
// again once it recovers.
//
// A backend has at most one probe in flight (one still running when the
// next is due makes it skip that turn), and the set at most 64. When ctx is
// done, the probes in flight are cancelled, and are not counted;
// CheckHealth returns once they have all ended.
//
// CheckHealth is safe to call while the set is in use. Run one per set:
// two would each apply their own verdicts.
func (s *Set) CheckHealth(ctx context.Context, hc HealthCheck) error {
	if err := hc.validate(); err != nil {
		return err
	}
	c := &checker{set: s, cfg: hc, client: hc.Client, log: hc.Logger}
	if c.client == nil {
		c.client = newCheckClient(hc.TLSConfig)
	}
	if c.log == nil {
		c.log = s.logger
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if q := strings.IndexByte(hc.Path, '?'); q >= 0 {
		c.path, c.query = hc.Path[:q], hc.Path[q+1:]
	} else {
		c.path = hc.Path
	}
	return c.run(ctx)
}

// newCheckClient returns the default probe client, with the given TLS
// configuration for https backends; see [HealthCheck.Client].
func newCheckClient(tc *tls.Config) *http.Client {
	t := &http.Transport{
		DisableKeepAlives:      true,
		MaxResponseHeaderBytes: 64 << 10,
		TLSClientConfig:        tc.Clone(),
	}
	h2c.Register(t)
	return &http.Client{
		Transport:     t,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// checker is one run of [Set.CheckHealth].
type checker struct {
	set         *Set
	cfg         HealthCheck // validated, defaults filled in
	client      *http.Client
	log         *slog.Logger
	path, query string // cfg.Path, split; path is escaped
}

// check is one backend's health checking. The scheduler owns due; passes
// and fails belong to the probe in flight, of which busy allows one at a
// time.
type check struct {
	b      *Backend
	target string    // the URL probed
	due    time.Time // of the next probe

	busy   atomic.Bool
	passes int // consecutive
	fails  int // consecutive
}

// run schedules the probes: it keeps a queue of the members' checks by due
// time, and starts each check's probe when it is due.
func (c *checker) run(ctx context.Context) error {
	var (
		g      errgroup.Group
		checks map[*Backend]*check
		q      queue
		seen   uint64 // the snapshot version checks reflects
	)
	g.SetLimit(maxProbes)
	t := time.NewTimer(0)
	defer t.Stop()
	wake := t.C
	if c.set.checkTicks != nil {
		t.Stop()
		wake = c.set.checkTicks
	}
	for {
		var now time.Time
		select {
		case <-ctx.Done():
			g.Wait() // probes return promptly: their context is ctx
			return ctx.Err()
		case now = <-wake:
		}
		if c.set.checkTicks == nil {
			now = time.Now()
		}
		if snap := c.set.Snapshot(); checks == nil || snap.Version() != seen {
			seen = snap.Version()
			checks = c.reconcile(snap, checks, &q, now)
		}
		for len(q) > 0 && !q[0].due.After(now) && ctx.Err() == nil {
			k := q[0]
			if checks[k.b] != k { // no longer a member
				heap.Pop(&q)
				continue
			}
			k.due = now.Add(c.jitter())
			heap.Fix(&q, 0)
			if !k.busy.CompareAndSwap(false, true) {
				c.log.Debug("health check skipped: last probe still running", "id", k.b.id)
				continue
			}
			g.Go(func() error { // waits while maxProbes are in flight
				defer k.busy.Store(false)
				c.probe(ctx, k)
				return nil
			})
		}
		if c.set.checkTicks != nil {
			continue
		}
		wait := c.cfg.Interval // look for new members at least this often
		if len(q) > 0 {
			wait = min(wait, time.Until(q[0].due))
		}
		t.Reset(wait)
	}
}

// reconcile returns the checks of snap's members: those of old that are
// still members, and new ones, queued at a random phase within the
// interval. Checks of former members stay queued until they are due.
func (c *checker) reconcile(snap *Snapshot, old map[*Backend]*check, q *queue, now time.Time) map[*Backend]*check {
	checks := make(map[*Backend]*check, len(snap.Backends()))
	for _, b := range snap.Backends() {
		k := old[b]
		if k == nil {
			u := b.url.JoinPath(c.path)
			u.RawQuery = c.query
			k = &check{b: b, target: u.String(), due: now.Add(rand.N(c.cfg.Interval))}
			heap.Push(q, k)
		}
		checks[b] = k
	}
	return checks
}

// jitter returns the wait before a backend's next probe: Interval, ±10%.
func (c *checker) jitter() time.Duration {
	iv := c.cfg.Interval
	return iv - iv/10 + rand.N(iv/5+1)
}

// probe probes k's backend once and records the result, unless ctx is done
// first.
func (c *checker) probe(ctx context.Context, k *check) {
	err := c.get(ctx, k.target)
	if ctx.Err() != nil || k.b.Removed() {
		return
	}
	if err != nil {
		k.passes = 0
		k.fails++
		c.log.Debug("health check failed", "id", k.b.id, "err", err, "fails", k.fails, "fall", c.cfg.Fall)
		if k.fails >= c.cfg.Fall {
			if down, _ := c.set.healthFlags(k.b); !down {
				c.log.Warn("backend failed health checks", "id", k.b.id, "fails", k.fails, "err", err)
				c.set.setHealthy(k.b, false, err)
			}
		}
		return
	}
	k.fails = 0
	k.passes++
	if k.b.State() != Unhealthy { // neither down nor ejected
		return
	}
	switch down, ejected := c.set.healthFlags(k.b); {
	case down && k.passes >= c.cfg.Rise:
		c.log.Info("backend passed health checks", "id", k.b.id, "passes", k.passes)
		c.set.setHealthy(k.b, true, nil)
	case !down && ejected:
		c.log.Info("ejected backend passed a health check; re-admitted", "id", k.b.id)
		c.set.setHealthy(k.b, true, nil)
	}
}

// get sends one probe and reports why it failed, or nil if it passed.
func (c *checker) get(ctx context.Context, target string) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", checkUserAgent)
	if c.cfg.Host != "" {
		req.Host = c.cfg.Host
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxProbeBody))
	resp.Body.Close()
	if resp.StatusCode < c.cfg.MinStatus || resp.StatusCode > c.cfg.MaxStatus {
		return fmt.Errorf("status %d, want %d..%d", resp.StatusCode, c.cfg.MinStatus, c.cfg.MaxStatus)
	}
	return nil
}

// healthFlags reports whether b is down and whether it is ejected.
func (s *Set) healthFlags(b *Backend) (down, ejected bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return b.health.down, b.health.ejected
}

// queue is a min-heap of checks by due time.
type queue []*check

func (q queue) Len() int           { return len(q) }
func (q queue) Less(i, j int) bool { return q[i].due.Before(q[j].due) }
func (q queue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *queue) Push(x any)        { *q = append(*q, x.(*check)) }
func (q *queue) Pop() any {
	old := *q
	k := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	return k
}
