package endpointslice

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/affinitylb/affinity/backend"
)

// wait bounds how long a test waits for a delivery that must come.
const wait = 10 * time.Second

// run is a Source running on a fake clientset, its deliveries in a
// channel.
type run struct {
	t       *testing.T
	client  *fake.Clientset
	got     chan []backend.Config
	watches chan struct{} // a value each time the informer starts a watch
	done    chan error
	cancel  context.CancelFunc
}

// start runs a Source of cfg (its Client and Service filled in when unset)
// on client. It returns once the informer watches, having checked the
// first delivery against first.
func start(t *testing.T, client *fake.Clientset, cfg Config, first []backend.Config) *run {
	t.Helper()
	r := &run{t: t, client: client, got: make(chan []backend.Config, 100), watches: make(chan struct{}, 100), done: make(chan error, 1)}
	// The fake clientset has no resource versions: an object written
	// between the informer's list and its watch would be missed, so a
	// test writes only once the watch is there.
	client.PrependWatchReactor("endpointslices", func(k8stesting.Action) (bool, watch.Interface, error) {
		r.watches <- struct{}{}
		return false, nil, nil
	})
	if cfg.Client == nil {
		cfg.Client = client
	}
	if cfg.Service == (Service{}) {
		cfg.Service = Service{Namespace: testNS, Name: testSvc, Port: "http"}
	}
	s, err := New(cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- s.Run(ctx, func(cfgs []backend.Config) { r.got <- cfgs }) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-r.done:
			assert.ErrorIs(t, err, context.Canceled)
		case <-time.After(wait):
			t.Error("Run did not return after its context was cancelled")
		}
	})
	r.next(first)
	select {
	case <-r.watches:
	case <-time.After(wait):
		t.Fatal("the informer did not start watching")
	}
	return r
}

// next checks that the next delivery is want.
func (r *run) next(want []backend.Config) {
	r.t.Helper()
	select {
	case got := <-r.got:
		assert.Equal(r.t, want, nilIfEmpty(got))
	case <-time.After(wait):
		r.t.Fatalf("no delivery; want %v", want)
	}
}

// until reads deliveries until one is want, checking each with check.
func (r *run) until(want []backend.Config, check func([]backend.Config)) {
	r.t.Helper()
	timeout := time.After(wait)
	for {
		select {
		case got := <-r.got:
			check(got)
			if assert.ObjectsAreEqual(want, nilIfEmpty(got)) {
				return
			}
		case <-timeout:
			r.t.Fatalf("no delivery of %v", want)
		}
	}
}

func (r *run) create(sl *discoveryv1.EndpointSlice) {
	r.t.Helper()
	_, err := r.client.DiscoveryV1().EndpointSlices(sl.Namespace).Create(context.Background(), sl, metav1.CreateOptions{})
	require.NoError(r.t, err)
}

func (r *run) update(sl *discoveryv1.EndpointSlice) {
	r.t.Helper()
	_, err := r.client.DiscoveryV1().EndpointSlices(sl.Namespace).Update(context.Background(), sl, metav1.UpdateOptions{})
	require.NoError(r.t, err)
}

func (r *run) delete(name string) {
	r.t.Helper()
	require.NoError(r.t, r.client.DiscoveryV1().EndpointSlices(testNS).Delete(context.Background(), name, metav1.DeleteOptions{}))
}

func TestRunFollowsTheSlices(t *testing.T) {
	client := fake.NewClientset(slice("a", testSvc, v4, ep("10.0.0.1", "web-0")))
	r := start(t, client, Config{RemoveDelay: time.Millisecond}, []backend.Config{{ID: "web-0", URL: "http://10.0.0.1:8080"}})

	r.create(slice("b", testSvc, v4, ep("10.0.0.2", "web-1"), ep("10.0.0.3", "web-2")))
	r.next([]backend.Config{
		{ID: "web-0", URL: "http://10.0.0.1:8080"},
		{ID: "web-1", URL: "http://10.0.0.2:8080"},
		{ID: "web-2", URL: "http://10.0.0.3:8080"},
	})

	r.update(slice("b", testSvc, v4, terminating(ep("10.0.0.2", "web-1")), ep("10.0.0.3", "web-2")))
	r.next([]backend.Config{
		{ID: "web-0", URL: "http://10.0.0.1:8080"},
		{ID: "web-1", URL: "http://10.0.0.2:8080", Draining: true},
		{ID: "web-2", URL: "http://10.0.0.3:8080"},
	})

	// Not serving: removed at once, with no time held.
	r.update(slice("b", testSvc, v4, conds(ep("10.0.0.2", "web-1"), no, no, yes), ep("10.0.0.3", "web-2")))
	r.next([]backend.Config{
		{ID: "web-0", URL: "http://10.0.0.1:8080"},
		{ID: "web-2", URL: "http://10.0.0.3:8080"},
	})

	// A deleted slice: its endpoints drain for RemoveDelay, then go.
	r.delete("b")
	r.next([]backend.Config{
		{ID: "web-0", URL: "http://10.0.0.1:8080"},
		{ID: "web-2", URL: "http://10.0.0.3:8080", Draining: true},
	})
	r.next([]backend.Config{{ID: "web-0", URL: "http://10.0.0.1:8080"}})
}

func TestRunEndpointMovingBetweenSlices(t *testing.T) {
	client := fake.NewClientset(
		slice("a", testSvc, v4, ep("10.0.0.1", "web-0"), ep("10.0.0.2", "web-1")),
		slice("b", testSvc, v4, ep("10.0.0.3", "web-2")),
	)
	all := []backend.Config{
		{ID: "web-0", URL: "http://10.0.0.1:8080"},
		{ID: "web-1", URL: "http://10.0.0.2:8080"},
		{ID: "web-2", URL: "http://10.0.0.3:8080"},
	}
	r := start(t, client, Config{RemoveDelay: time.Hour}, all)

	// web-1 leaves a and joins b, in two updates, as a controller that
	// rebalances slices writes them.
	r.update(slice("a", testSvc, v4, ep("10.0.0.1", "web-0")))
	r.update(slice("b", testSvc, v4, ep("10.0.0.3", "web-2"), ep("10.0.0.2", "web-1")))
	r.until(all, func(got []backend.Config) {
		ids := make([]string, len(got))
		for i, c := range got {
			ids[i] = c.ID
		}
		assert.Equal(t, []string{"web-0", "web-1", "web-2"}, ids, "a moving endpoint is never removed")
	})
}

// A pod replaced by another at its address is not held: its clients must
// be placed anew, not sent to the new pod under the old one's name.
func TestRunReplacedAtTheSameAddress(t *testing.T) {
	client := fake.NewClientset(slice("a", testSvc, v4, ep("10.0.0.1", "web-0"), ep("10.0.0.2", "web-1")))
	r := start(t, client, Config{RemoveDelay: time.Hour}, []backend.Config{
		{ID: "web-0", URL: "http://10.0.0.1:8080"},
		{ID: "web-1", URL: "http://10.0.0.2:8080"},
	})
	r.update(slice("a", testSvc, v4, ep("10.0.0.1", "web-0"), ep("10.0.0.2", "web-3")))
	r.next([]backend.Config{
		{ID: "web-0", URL: "http://10.0.0.1:8080"},
		{ID: "web-3", URL: "http://10.0.0.2:8080"},
	})
}

func TestRunDeliversOnlyChanges(t *testing.T) {
	client := fake.NewClientset(slice("a", testSvc, v4, ep("10.0.0.1", "web-0")))
	r := start(t, client, Config{}, []backend.Config{{ID: "web-0", URL: "http://10.0.0.1:8080"}})

	// Changes that leave the membership as it is: an annotation, an
	// endpoint without the port, another Service's slice, a copy of an
	// endpoint in a second slice.
	sl := slice("a", testSvc, v4, ep("10.0.0.1", "web-0"))
	sl.Annotations = map[string]string{"note": "changed"}
	r.update(sl)
	r.create(withPorts(slice("b", testSvc, v4, ep("10.0.0.2", "web-1")), discoveryv1.EndpointPort{Name: new("metrics"), Port: new(int32(9090))}))
	r.create(slice("c", "api", v4, ep("10.0.0.3", "api-0")))
	r.create(slice("d", testSvc, v4, ep("10.0.0.1", "web-0")))
	// Then one that changes it: the next delivery is this one.
	r.create(slice("e", testSvc, v4, ep("10.0.0.4", "web-3")))
	r.next([]backend.Config{
		{ID: "web-0", URL: "http://10.0.0.1:8080"},
		{ID: "web-3", URL: "http://10.0.0.4:8080"},
	})
}

func TestRunEmptyServiceDeliversEmpty(t *testing.T) {
	r := start(t, fake.NewClientset(), Config{}, nil)
	r.create(slice("a", testSvc, v4, ep("10.0.0.1", "web-0")))
	r.next([]backend.Config{{ID: "web-0", URL: "http://10.0.0.1:8080"}})
}

// logBuffer is an io.Writer safe for the informer's goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestRunDeliversNothingBeforeTheList(t *testing.T) {
	client := fake.NewClientset(
		slice("a", testSvc, v4, ep("10.0.0.1", "web-0")),
		slice("b", testSvc, v4, ep("10.0.0.2", "web-1")),
	)
	// The API server is away for the first list.
	var lists atomic.Int32
	client.PrependReactor("list", "endpointslices", func(k8stesting.Action) (bool, runtime.Object, error) {
		if lists.Add(1) == 1 {
			return true, nil, errors.New("connection refused")
		}
		return false, nil, nil
	})
	var logs logBuffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	// start checks that the first delivery is the whole membership.
	start(t, client, Config{Logger: logger}, []backend.Config{
		{ID: "web-0", URL: "http://10.0.0.1:8080"},
		{ID: "web-1", URL: "http://10.0.0.2:8080"},
	})
	assert.GreaterOrEqual(t, lists.Load(), int32(2))
	assert.Contains(t, logs.String(), "level=WARN msg=\"endpointslice list or watch failed; backends unchanged, retrying\" service=shop/web:http err=\"connection refused\"")
	assert.Contains(t, logs.String(), "level=INFO msg=\"endpointslices reachable again\" service=shop/web:http")
}

// A watch that cannot connect is retried by client-go's reflector without
// a word to the informer's watch error handler: the source still says,
// once, that the API server is away, and when it is back.
func TestRunLogsAnUnreachableWatch(t *testing.T) {
	client := fake.NewClientset(slice("a", testSvc, v4, ep("10.0.0.1", "web-0")))
	var watches atomic.Int32
	client.PrependWatchReactor("endpointslices", func(k8stesting.Action) (bool, watch.Interface, error) {
		if watches.Add(1) <= 3 {
			return true, nil, fmt.Errorf("dial tcp 10.0.0.100:443: %w", syscall.ECONNREFUSED)
		}
		return false, nil, nil
	})
	var logs logBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	r := start(t, client, Config{Logger: logger}, []backend.Config{{ID: "web-0", URL: "http://10.0.0.1:8080"}})
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "endpointslices reachable again") },
		30*time.Second, 10*time.Millisecond, "logs: %s", &logs)
	assert.Equal(t, 1, strings.Count(logs.String(), "level=WARN"), "one warning for the whole outage: %s", &logs)
	assert.Contains(t, logs.String(), "level=WARN msg=\"endpointslice list or watch failed; backends unchanged, retrying\" service=shop/web:http err=\"dial tcp 10.0.0.100:443: connection refused\"")
	// The watch, once connected, delivers again.
	r.create(slice("b", testSvc, v4, ep("10.0.0.2", "web-1")))
	r.next([]backend.Config{
		{ID: "web-0", URL: "http://10.0.0.1:8080"},
		{ID: "web-1", URL: "http://10.0.0.2:8080"},
	})
}

func TestRunReturnsWhenCancelledBeforeTheList(t *testing.T) {
	client := fake.NewClientset()
	listed := make(chan struct{}, 100)
	client.PrependReactor("list", "endpointslices", func(k8stesting.Action) (bool, runtime.Object, error) {
		listed <- struct{}{}
		return true, nil, errors.New("connection refused")
	})
	s, err := New(Config{Client: client, Service: Service{Namespace: testNS, Name: testSvc, Port: "http"}})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- s.Run(ctx, func([]backend.Config) { t.Error("delivered before the list") })
	}()
	<-listed
	cancel()
	select {
	case err := <-done:
		assert.ErrorIs(t, err, context.Canceled)
	case <-time.After(wait):
		t.Fatal("Run did not return after its context was cancelled")
	}
}

func TestRunIntoSet(t *testing.T) {
	client := fake.NewClientset(slice("a", testSvc, v4, ep("10.0.0.1", "web-0"), ep("10.0.0.2", "web-1")))
	s, err := New(Config{Client: client, Service: Service{Namespace: testNS, Name: testSvc, Port: "http"}})
	require.NoError(t, err)
	set, err := backend.NewSet(nil)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- set.Sync(ctx, s) }()
	t.Cleanup(func() { cancel(); assert.ErrorIs(t, <-done, context.Canceled) })

	state := func() map[string]backend.State {
		m := map[string]backend.State{}
		for _, b := range set.Snapshot().Backends() {
			m[b.ID()] = b.State()
		}
		return m
	}
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, map[string]backend.State{"web-0": backend.Healthy, "web-1": backend.Healthy}, state())
	}, wait, 10*time.Millisecond)
	_, err = client.DiscoveryV1().EndpointSlices(testNS).Update(ctx,
		slice("a", testSvc, v4, ep("10.0.0.1", "web-0"), terminating(ep("10.0.0.2", "web-1"))), metav1.UpdateOptions{})
	require.NoError(t, err)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, map[string]backend.State{"web-0": backend.Healthy, "web-1": backend.Draining}, state())
	}, wait, 10*time.Millisecond)
}

func TestNew(t *testing.T) {
	svc := Service{Namespace: testNS, Name: testSvc, Port: "http"}
	tests := []struct {
		name string
		cfg  Config
		errs []string // each in the error; none: valid
	}{
		{name: "minimal", cfg: Config{Client: fake.NewClientset(), Service: svc}},
		{name: "every field", cfg: Config{Client: fake.NewClientset(), Service: svc, Scheme: "https", Family: v6, RemoveDelay: time.Minute, Logger: slog.Default()}},
		{name: "no client", cfg: Config{Service: svc}, errs: []string{"endpointslice: Config.Client is nil"}},
		{name: "no service", cfg: Config{Client: fake.NewClientset()}, errs: []string{`endpointslice: Config.Service "/:": namespace ""`, `name ""`, `port ""`}},
		{name: "scheme", cfg: Config{Client: fake.NewClientset(), Service: svc, Scheme: "ftp"}, errs: []string{`endpointslice: Config.Scheme "ftp": want http, https or h2c`}},
		{name: "family", cfg: Config{Client: fake.NewClientset(), Service: svc, Family: fqdn}, errs: []string{`endpointslice: Config.Family "FQDN": want IPv4 or IPv6`}},
		{name: "remove delay", cfg: Config{Client: fake.NewClientset(), Service: svc, RemoveDelay: -time.Second}, errs: []string{`endpointslice: Config.RemoveDelay -1s: negative`}},
		{
			name: "all at once",
			cfg:  Config{Scheme: "ws", Family: "IPv5", RemoveDelay: -1, Service: Service{Namespace: "Shop", Name: testSvc, Port: "70000"}},
			errs: []string{"Config.Client", `namespace "Shop"`, `port "70000": out of range 1..65535`, `Config.Scheme "ws"`, `Config.Family "IPv5"`, "Config.RemoveDelay -1ns"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(tt.cfg)
			if len(tt.errs) == 0 {
				require.NoError(t, err)
				assert.NotNil(t, s)
				return
			}
			require.Error(t, err)
			assert.Nil(t, s)
			for _, e := range tt.errs {
				assert.Contains(t, err.Error(), e)
			}
		})
	}
}

func TestParseService(t *testing.T) {
	tests := []struct {
		in   string
		want Service
		err  string
	}{
		{in: "shop/web:http", want: Service{Namespace: "shop", Name: "web", Port: "http"}},
		{in: "shop/web:8080", want: Service{Namespace: "shop", Name: "web", Port: "8080"}},
		{in: "kube-system/my-svc:1", want: Service{Namespace: "kube-system", Name: "my-svc", Port: "1"}},
		{in: "web:http", err: `endpointslice: service "web:http": want NAMESPACE/NAME:PORT, no slash`},
		{in: "shop/web", err: `endpointslice: service "shop/web": want NAMESPACE/NAME:PORT, no port`},
		{in: "/web:http", err: `endpointslice: service "/web:http": namespace ""`},
		{in: "shop/:http", err: `endpointslice: service "shop/:http": name ""`},
		{in: "shop/web:", err: `endpointslice: service "shop/web:": port "": not a number, and not a port name`},
		{in: "shop/Web:http", err: `name "Web"`},
		{in: "shop/1web:http", err: `name "1web"`},
		{in: "sh_op/web:http", err: `namespace "sh_op"`},
		{in: "shop/web:0", err: `port "0": out of range 1..65535`},
		{in: "shop/web:65536", err: `port "65536": out of range 1..65535`},
		{in: "shop/web:99999999999999999999", err: `port "99999999999999999999": out of range 1..65535`},
		{in: "shop/web:Http", err: `port "Http": not a number, and not a port name`},
		{in: "shop/web:a-very-long-port-name", err: `port "a-very-long-port-name"`},
		{in: "shop/web/x:http", err: `name "web/x"`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseService(tt.in)
			if tt.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.in, got.String())
			assert.False(t, strings.Contains(got.Port, ":"))
		})
	}
}
