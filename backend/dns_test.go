package backend_test

import (
	"bytes"
	"context"
	"errors"
	"log"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/internal/accounting"
)

// dnsWait bounds every wait for something the code under test should do
// soon; it only keeps a broken test from hanging.
const dnsWait = 10 * time.Second

// dnsRecorder records what a source delivers.
type dnsRecorder struct {
	mu  sync.Mutex
	got [][]backend.Config
}

func (r *dnsRecorder) update(cfgs []backend.Config) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, cfgs)
}

// deliveries returns the lists delivered so far, in order.
func (r *dnsRecorder) deliveries() [][]backend.Config {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]backend.Config(nil), r.got...)
}

// waitFor waits until the source has delivered n lists and returns the last.
func (r *dnsRecorder) waitFor(t *testing.T, n int) []backend.Config {
	t.Helper()
	require.Eventually(t, func() bool { return len(r.deliveries()) >= n }, dnsWait, time.Millisecond,
		"waiting for delivery %d", n)
	got := r.deliveries()
	require.Len(t, got, n, "deliveries")
	return got[n-1]
}

// newDNS returns a DNS source that asks srv, polling as often as allowed
// unless cfg says otherwise.
func newDNS(t *testing.T, srv *dnsServer, cfg backend.DNSConfig) *backend.DNS {
	t.Helper()
	cfg.Resolver = srv.resolver()
	if cfg.Interval == 0 {
		cfg.Interval = 100 * time.Millisecond // the least allowed
	}
	d, err := backend.NewDNS(cfg)
	require.NoError(t, err)
	return d
}

// runDNS runs src until the test ends, and then checks that Run returned
// ctx.Err().
func runDNS(t *testing.T, src backend.Source) *dnsRecorder {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &dnsRecorder{}
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, r.update) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			assert.ErrorIs(t, err, context.Canceled, "Run's result")
		case <-time.After(dnsWait):
			t.Error("Run did not return after its context was canceled")
		}
	})
	return r
}

// waitQueries waits until srv has received n more queries than it had when
// called: as a poll asks only after the one before is done, this lets a few
// polls go by.
func waitQueries(t *testing.T, srv *dnsServer, n int64) {
	t.Helper()
	target := srv.queries.Load() + n
	require.Eventually(t, func() bool { return srv.queries.Load() >= target }, dnsWait, time.Millisecond,
		"waiting for %d queries", n)
}

// dnsLogs collects a logger's output; it is safe for concurrent use.
type dnsLogs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *dnsLogs) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *dnsLogs) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func dnsURLs(cfgs []backend.Config) []string {
	out := make([]string, len(cfgs))
	for i, c := range cfgs {
		out[i] = c.URL
	}
	return out
}

func TestNewDNSInvalid(t *testing.T) {
	tests := []struct {
		name string
		cfg  backend.DNSConfig
		want string // in the error: the field and its value
	}{
		{"no name", backend.DNSConfig{Port: 80}, "DNSConfig.Name"},
		{"name with a port", backend.DNSConfig{Name: "web:8080", Port: 80}, `DNSConfig.Name "web:8080"`},
		{"name as a URL", backend.DNSConfig{Name: "http://web", Port: 80}, `DNSConfig.Name "http://web"`},
		{"scheme", backend.DNSConfig{Name: "web", Port: 80, Scheme: "ftp"}, `DNSConfig.Scheme "ftp"`},
		{"no port", backend.DNSConfig{Name: "web"}, "DNSConfig.Port 0"},
		{"port too large", backend.DNSConfig{Name: "web", Port: 65536}, "DNSConfig.Port 65536"},
		{"port with SRV", backend.DNSConfig{Name: "_http._tcp.web", SRV: true, Port: 80}, "DNSConfig.Port 80"},
		{"network", backend.DNSConfig{Name: "web", Port: 80, Network: "tcp"}, `DNSConfig.Network "tcp"`},
		{"network with SRV", backend.DNSConfig{Name: "_http._tcp.web", SRV: true, Network: "ip4"}, `DNSConfig.Network "ip4"`},
		{"interval too short", backend.DNSConfig{Name: "web", Port: 80, Interval: 10 * time.Millisecond}, "DNSConfig.Interval 10ms"},
		{"negative interval", backend.DNSConfig{Name: "web", Port: 80, Interval: -time.Second}, "DNSConfig.Interval -1s"},
		{"negative timeout", backend.DNSConfig{Name: "web", Port: 80, Timeout: -time.Second}, "DNSConfig.Timeout -1s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := backend.NewDNS(tt.cfg)
			assert.ErrorContains(t, err, tt.want)
			assert.Nil(t, d)
		})
	}
}

func TestDNSAddresses(t *testing.T) {
	tests := []struct {
		name string
		cfg  backend.DNSConfig // Name is "web.test."
		ips  []string
		want []backend.Config
	}{
		{
			name: "A, sorted by URL",
			cfg:  backend.DNSConfig{Port: 8080},
			ips:  []string{"10.0.0.2", "10.0.0.1", "10.0.0.10"},
			want: []backend.Config{
				{URL: "http://10.0.0.10:8080"}, // ':' sorts after '0'
				{URL: "http://10.0.0.1:8080"},
				{URL: "http://10.0.0.2:8080"},
			},
		},
		{
			name: "AAAA, bracketed",
			cfg:  backend.DNSConfig{Port: 8080},
			ips:  []string{"fd00::1"},
			want: []backend.Config{{URL: "http://[fd00::1]:8080"}},
		},
		{
			name: "A and AAAA",
			cfg:  backend.DNSConfig{Port: 8080},
			ips:  []string{"fd00::1", "10.0.0.1"},
			want: []backend.Config{{URL: "http://10.0.0.1:8080"}, {URL: "http://[fd00::1]:8080"}},
		},
		{
			name: "ip4 only",
			cfg:  backend.DNSConfig{Port: 8080, Network: "ip4"},
			ips:  []string{"fd00::1", "10.0.0.1"},
			want: []backend.Config{{URL: "http://10.0.0.1:8080"}},
		},
		{
			name: "ip6 only",
			cfg:  backend.DNSConfig{Port: 8080, Network: "ip6"},
			ips:  []string{"fd00::1", "10.0.0.1"},
			want: []backend.Config{{URL: "http://[fd00::1]:8080"}},
		},
		{
			name: "https, duplicates removed",
			cfg:  backend.DNSConfig{Port: 8443, Scheme: "https"},
			ips:  []string{"10.0.0.1", "10.0.0.1"},
			want: []backend.Config{{URL: "https://10.0.0.1:8443"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newDNSServer(t)
			srv.set("web.test.", zone{ips: tt.ips})
			tt.cfg.Name = "web.test."
			got := runDNS(t, newDNS(t, srv, tt.cfg)).waitFor(t, 1)
			assert.Equal(t, tt.want, got, "no ID, default weight, sorted by URL")

			// The IDs are digests of the URLs: another process, polling
			// the same name, names the backends alike.
			again := runDNS(t, newDNS(t, srv, tt.cfg)).waitFor(t, 1)
			a, err := backend.NewSet(got)
			require.NoError(t, err)
			b, err := backend.NewSet(again)
			require.NoError(t, err)
			assert.Equal(t, ids(a.Snapshot().Backends()), ids(b.Snapshot().Backends()))
		})
	}
}

func TestDNSSRV(t *testing.T) {
	tests := []struct {
		name   string
		scheme string
		srv    []net.SRV
		want   []backend.Config
	}{
		{
			name: "lowest priority value only, weights",
			srv: []net.SRV{
				{Target: "web-1.web.test.", Port: 8080, Priority: 10, Weight: 60},
				{Target: "backup.web.test.", Port: 8080, Priority: 20, Weight: 100},
				{Target: "web-0.web.test.", Port: 8080, Priority: 10, Weight: 0},
				{Target: "web-2.web.test.", Port: 9090, Priority: 10, Weight: 65535},
			},
			want: []backend.Config{
				{URL: "http://web-0.web.test:8080", Weight: 1}, // weight 0 counts as 1
				{URL: "http://web-1.web.test:8080", Weight: 60},
				{URL: "http://web-2.web.test:9090", Weight: 65535},
			},
		},
		{
			name:   "https, names lower-cased, duplicates removed",
			scheme: "https",
			srv: []net.SRV{
				{Target: "WEB-0.web.test.", Port: 8443, Weight: 3},
				{Target: "web-0.web.test.", Port: 8443, Weight: 7},
			},
			want: []backend.Config{{URL: "https://web-0.web.test:8443", Weight: 7}},
		},
		{
			name: "no service",
			srv:  []net.SRV{{Target: ".", Port: 0}},
			want: []backend.Config{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newDNSServer(t)
			srv.set("_http._tcp.web.test.", zone{srv: tt.srv})
			d := newDNS(t, srv, backend.DNSConfig{Name: "_http._tcp.web.test.", SRV: true, Scheme: tt.scheme})
			got := runDNS(t, d).waitFor(t, 1)
			assert.Equal(t, tt.want, got)
			_, err := backend.NewSet(got)
			assert.NoError(t, err, "a set takes the list")
		})
	}
}

func TestDNSDeliversChangesOnly(t *testing.T) {
	t.Parallel()
	srv := newDNSServer(t)
	srv.set("web.test.", zone{ips: []string{"10.0.0.1", "10.0.0.2"}})
	r := runDNS(t, newDNS(t, srv, backend.DNSConfig{Name: "web.test.", Port: 80, Network: "ip4"}))
	first := r.waitFor(t, 1)
	assert.Equal(t, []string{"http://10.0.0.1:80", "http://10.0.0.2:80"}, dnsURLs(first))

	waitQueries(t, srv, 3)
	assert.Len(t, r.deliveries(), 1, "an unchanged answer is not delivered again")

	srv.set("web.test.", zone{ips: []string{"10.0.0.2", "10.0.0.1"}})
	waitQueries(t, srv, 3)
	assert.Len(t, r.deliveries(), 1, "the same records in another order are the same answer")

	srv.set("web.test.", zone{ips: []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"}})
	got := r.waitFor(t, 2)
	assert.Equal(t, []string{"http://10.0.0.1:80", "http://10.0.0.2:80", "http://10.0.0.3:80"}, dnsURLs(got))
}

func TestDNSNotFound(t *testing.T) {
	t.Parallel()
	srv := newDNSServer(t)
	r := runDNS(t, newDNS(t, srv, backend.DNSConfig{Name: "web.test.", Port: 80}))
	got := r.waitFor(t, 1)
	assert.Empty(t, got, "NXDOMAIN is an answer: no backends")
	assert.NotNil(t, got, "an empty list, delivered")

	srv.set("web.test.", zone{ips: []string{"10.0.0.1"}})
	assert.Equal(t, []string{"http://10.0.0.1:80"}, dnsURLs(r.waitFor(t, 2)))

	srv.set("web.test.", zone{}) // the name exists, with no addresses
	assert.Empty(t, r.waitFor(t, 3))

	srv.set("web.test.", zone{ips: []string{"10.0.0.1"}})
	r.waitFor(t, 4)
	srv.del("web.test.")
	assert.Empty(t, r.waitFor(t, 5))
}

func TestDNSFailureKeepsLast(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		bad  zone
	}{
		{"SERVFAIL", zone{fail: true}},
		{"timeout", zone{drop: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newDNSServer(t)
			srv.set("web.test.", tt.bad)
			logs := &dnsLogs{}
			d := newDNS(t, srv, backend.DNSConfig{
				Name:    "web.test.",
				Port:    80,
				Network: "ip4",
				Timeout: 50 * time.Millisecond,
				Logger:  slog.New(slog.NewTextHandler(logs, nil)),
			})
			r := runDNS(t, d)
			waitQueries(t, srv, 3)
			assert.Empty(t, r.deliveries(), "nothing is delivered before the first answer")

			srv.set("web.test.", zone{ips: []string{"10.0.0.1"}})
			assert.Equal(t, []string{"http://10.0.0.1:80"}, dnsURLs(r.waitFor(t, 1)))

			srv.set("web.test.", tt.bad)
			waitQueries(t, srv, 3)
			assert.Len(t, r.deliveries(), 1, "a failed lookup keeps the last list")
			assert.Contains(t, logs.String(), "level=WARN msg=\"dns lookup failed; backends unchanged\" name=web.test.")

			srv.set("web.test.", zone{ips: []string{"10.0.0.2"}})
			assert.Equal(t, []string{"http://10.0.0.2:80"}, dnsURLs(r.waitFor(t, 2)), "recovered")
		})
	}
}

func TestDNSRunStops(t *testing.T) {
	tests := []struct {
		name  string
		zone  zone
		ready func(*testing.T, *dnsServer, *dnsRecorder) // when to cancel
	}{
		{
			name:  "between polls",
			zone:  zone{ips: []string{"10.0.0.1"}},
			ready: func(t *testing.T, _ *dnsServer, r *dnsRecorder) { r.waitFor(t, 1) },
		},
		{
			name:  "during a lookup",
			zone:  zone{drop: true},
			ready: func(t *testing.T, srv *dnsServer, _ *dnsRecorder) { waitQueries(t, srv, 1) },
		},
		{
			name:  "before the first lookup",
			zone:  zone{ips: []string{"10.0.0.1"}},
			ready: func(*testing.T, *dnsServer, *dnsRecorder) {},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newDNSServer(t)
			srv.set("web.test.", tt.zone)
			d := newDNS(t, srv, backend.DNSConfig{
				Name:     "web.test.",
				Port:     80,
				Interval: time.Hour,
				Timeout:  time.Hour,
			})
			ctx, cancel := context.WithCancel(context.Background())
			r := &dnsRecorder{}
			done := make(chan error, 1)
			go func() { done <- d.Run(ctx, r.update) }()
			tt.ready(t, srv, r)
			cancel()
			select {
			case err := <-done:
				assert.ErrorIs(t, err, context.Canceled)
			case <-time.After(dnsWait):
				t.Fatal("Run did not return after its context was canceled")
			}
		})
	}
}

// TestDNSSync scales a headless Service up and down under a real Set: the
// backends that stay are the same objects, with their requests in flight.
func TestDNSSync(t *testing.T) {
	t.Parallel()
	srv := newDNSServer(t)
	srv.set("web.test.", zone{ips: []string{"10.0.0.1", "10.0.0.2"}})
	d := newDNS(t, srv, backend.DNSConfig{Name: "web.test.", Port: 8080})

	set := &backend.Set{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- set.Sync(ctx, d) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			assert.ErrorIs(t, err, context.Canceled, "Sync's result")
		case <-time.After(dnsWait):
			t.Error("Sync did not return after its context was canceled")
		}
	})

	// byURL waits until the set has n members and returns them by URL.
	byURL := func(n int) map[string]*backend.Backend {
		t.Helper()
		require.Eventually(t, func() bool { return len(set.Snapshot().Backends()) == n }, dnsWait, time.Millisecond,
			"waiting for %d backends", n)
		m := map[string]*backend.Backend{}
		for _, b := range set.Snapshot().Backends() {
			m[b.URL().String()] = b
		}
		return m
	}
	before := byURL(2)
	b1, b2 := before["http://10.0.0.1:8080"], before["http://10.0.0.2:8080"]
	require.NotNil(t, b1)
	require.NotNil(t, b2)
	require.True(t, accounting.Acquire(b1))
	require.True(t, accounting.Acquire(b1))
	require.True(t, accounting.Acquire(b2))

	srv.set("web.test.", zone{ips: []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"}})
	up := byURL(3)
	assert.Same(t, b1, up["http://10.0.0.1:8080"], "kept")
	assert.Same(t, b2, up["http://10.0.0.2:8080"], "kept")
	b3 := up["http://10.0.0.3:8080"]
	require.NotNil(t, b3, "added")
	assert.Equal(t, int64(2), b1.InFlight())
	assert.Equal(t, int64(1), b2.InFlight())
	assert.Equal(t, int64(0), b3.InFlight())

	srv.set("web.test.", zone{ips: []string{"10.0.0.2", "10.0.0.3"}})
	down := byURL(2)
	assert.Same(t, b2, down["http://10.0.0.2:8080"], "kept")
	assert.Same(t, b3, down["http://10.0.0.3:8080"], "kept")
	assert.True(t, b1.Removed(), "the missing one is removed")
	assert.False(t, b2.Removed())
	assert.False(t, b3.Removed())
	assert.Equal(t, int64(2), b1.InFlight(), "its requests finish normally")
	assert.False(t, accounting.Acquire(b1), "and it takes no new ones")
	accounting.Release(b1)
	accounting.Release(b1)
	accounting.Release(b2)
	assert.Equal(t, int64(0), set.Snapshot().InFlight())
}

// A Kubernetes headless Service "web" in namespace "shop" resolves to the
// addresses of its ready pods: the set follows them as the Service is scaled
// and its pods are replaced.
func ExampleNewDNS() {
	src, err := backend.NewDNS(backend.DNSConfig{
		Name: "web.shop.svc.cluster.local",
		Port: 8080,
	})
	if err != nil {
		log.Fatal(err)
	}
	set := &backend.Set{} // empty until the first answer
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	go func() {
		if err := set.Sync(ctx, src); !errors.Is(err, context.Canceled) {
			log.Print(err)
		}
	}()
	// Balance across set.Snapshot() until interrupted.
	<-ctx.Done()
}
