package scenarios_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/cookie"
	"github.com/affinitylb/affinity/kubernetes/endpointslice"
	"github.com/affinitylb/affinity/kubernetes/internal/apiservertest"
	"github.com/affinitylb/affinity/sticky"
)

// The Service every test follows, and where its pods listen.
const (
	namespace  = "scenarios"
	service    = "web"
	podPort    = 8080
	domain     = "test.example" // reserved (RFC 2606): never resolved
	cookieName = "affinity"     // cookie.New's default
	servedBy   = "X-Served-By"  // the header a test backend names itself in
)

// Bounds of the tests' waits and loops. They are far above what a working
// system needs and only stop a broken one.
const (
	waitTimeout = 2 * time.Minute // the set to follow a slice
	pollEvery   = 2 * time.Millisecond
	maxLoadReqs = 3000 // requests by one client of a load
)

// world is one test's cluster and balancer: an API server with the
// Service and its one EndpointSlice, test backends standing for its pods,
// and the backend set, fed by an endpointslice source, behind a sticky
// handler served on 127.0.0.1. Its methods are for the test's goroutine;
// the dialer and the backends may run on any.
type world struct {
	t      *testing.T
	api    *apiservertest.Server
	client kubernetes.Interface
	slice  *discoveryv1.EndpointSlice // as last written
	set    *backend.Set
	lb     *httptest.Server
	front  *http.Transport // the clients' transport to lb
	warns  atomic.Int64    // records at Warn or above, by the source and the set

	mu      sync.Mutex
	hosts   map[string]string           // "web-N.test.example:8080" to a backend's 127.0.0.1 address
	pods    map[string]*httptest.Server // test backends, by pod name
	refused atomic.Int64                // dials of a name hosts does not have
}

// newCluster starts the API server and creates the Service. A test then
// starts its pods' backends with startPod, and the slice and the balancer
// with start.
func newCluster(t *testing.T) *world {
	w := &world{t: t, hosts: map[string]string{}, pods: map[string]*httptest.Server{}}
	w.api = apiservertest.Start(t)
	w.client = w.api.Client()
	ctx := t.Context()
	_, err := w.client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = w.client.CoreV1().Services(namespace).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: service},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	t.Cleanup(func() {
		assert.Zero(t, w.refused.Load(), "dials of a name that is no test backend's")
	})
	return w
}

// start writes the Service's slice with eps, then runs the source, the set
// and the handler, and waits for the set to show eps.
func (w *world) start(eps ...discoveryv1.Endpoint) {
	t := w.t
	ctx := t.Context()
	sl, err := w.client.DiscoveryV1().EndpointSlices(namespace).Create(ctx, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: service + "-1", Labels: map[string]string{discoveryv1.LabelServiceName: service}},
		AddressType: discoveryv1.AddressTypeFQDN,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](podPort), Protocol: ptr.To(corev1.ProtocolTCP)}},
		Endpoints:   eps,
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	w.slice = sl

	log := slog.New(countWarns{slog.NewTextHandler(testWriter{t}, nil), &w.warns})
	src, err := endpointslice.New(endpointslice.Config{
		Client:  w.client,
		Service: endpointslice.Service{Namespace: namespace, Name: service, Port: "http"},
		Logger:  log,
	})
	require.NoError(t, err)
	w.set, err = backend.NewSet(nil, backend.WithLogger(log))
	require.NoError(t, err)
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.set.Sync(runCtx, src) }()
	t.Cleanup(func() { cancel(); assert.ErrorIs(t, <-done, context.Canceled) })

	pol, err := cookie.New([][]byte{[]byte("scenarios: a key of at least 16 bytes")})
	require.NoError(t, err)
	tr := sticky.DefaultTransport()
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		w.mu.Lock()
		target, ok := w.hosts[addr]
		w.mu.Unlock()
		if !ok {
			w.refused.Add(1)
			return nil, fmt.Errorf("scenarios: dial %s: not a test backend", addr)
		}
		return dialer.DialContext(ctx, network, target)
	}
	t.Cleanup(tr.CloseIdleConnections)
	h, err := sticky.New(w.set, pol, sticky.WithTransport(tr), sticky.WithLogger(log))
	require.NoError(t, err)
	w.lb = httptest.NewServer(h)
	t.Cleanup(w.lb.Close)
	w.front = &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: time.Minute}
	t.Cleanup(w.front.CloseIdleConnections)

	w.waitStates(statesOf(eps), time.Now())
}

// startPod starts the test backend of pod name, answering every request
// with 200, its name in the X-Served-By header and the body, and makes
// host:8080 lead to it. It stops when the test ends.
func (w *world) startPod(name, host string) {
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) {
		rw.Header().Set(servedBy, name)
		io.WriteString(rw, name)
	}))
	w.t.Cleanup(srv.Close)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pods[name] = srv
	w.hosts[fmt.Sprintf("%s:%d", host, podPort)] = srv.Listener.Addr().String()
}

// stopPod stops the test backend of pod name: its address refuses
// connections from then on.
func (w *world) stopPod(name string) {
	w.mu.Lock()
	srv := w.pods[name]
	w.mu.Unlock()
	require.NotNil(w.t, srv, "pod %s", name)
	srv.Close()
}

// write makes eps the slice's endpoints, and returns when the API server
// has stored them.
func (w *world) write(eps ...discoveryv1.Endpoint) {
	w.t.Helper()
	sl := w.slice.DeepCopy()
	sl.Endpoints = eps
	sl, err := w.client.DiscoveryV1().EndpointSlices(namespace).Update(w.t.Context(), sl, metav1.UpdateOptions{})
	require.NoError(w.t, err)
	w.slice = sl
}

// states returns the set's backends and their states, by ID.
func (w *world) states() map[string]backend.State {
	m := map[string]backend.State{}
	for _, b := range w.set.Snapshot().Backends() {
		m[b.ID()] = b.State()
	}
	return m
}

// waitStates waits, up to waitTimeout, for the set to be exactly want,
// and returns how long after since it was seen so.
func (w *world) waitStates(want map[string]backend.State, since time.Time) time.Duration {
	w.t.Helper()
	require.EventuallyWithT(w.t, func(c *assert.CollectT) { assert.Equal(c, want, w.states()) }, waitTimeout, pollEvery)
	return time.Since(since)
}

// ready returns the endpoint of a ready pod at host.
func ready(pod, host string) discoveryv1.Endpoint {
	return discoveryv1.Endpoint{
		Addresses:  []string{host},
		Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true), Serving: ptr.To(true), Terminating: ptr.To(false)},
		TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: namespace, Name: pod},
	}
}

// terminating returns the endpoint of a pod at host that is terminating and
// still serving, as the EndpointSlice controller writes it.
func terminating(pod, host string) discoveryv1.Endpoint {
	e := ready(pod, host)
	e.Conditions = discoveryv1.EndpointConditions{Ready: ptr.To(false), Serving: ptr.To(true), Terminating: ptr.To(true)}
	return e
}

// host returns the address of pod web-N: web-N.test.example.
func host(pod string) string { return pod + "." + domain }

// statesOf returns the states the set should show for eps: Healthy for a
// ready endpoint, Draining for a terminating one.
func statesOf(eps []discoveryv1.Endpoint) map[string]backend.State {
	m := map[string]backend.State{}
	for _, e := range eps {
		st := backend.Healthy
		if *e.Conditions.Terminating {
			st = backend.Draining
		}
		m[e.TargetRef.Name] = st
	}
	return m
}

// client is one user of the balancer, with a cookie jar of its own. It
// tells what it sees: who served each response, and which responses bound
// it anew (carried the affinity cookie). A client is for one goroutine at
// a time.
type client struct {
	http *http.Client
	url  string

	first    string // the backend that served the response of its first binding
	bound    string // the backend that served the response of its last binding
	bindings int    // responses that bound it, the first one included
	strays   int    // responses served by another backend than bound, without binding it
	sent     int    // requests sent
	fails    int    // requests with a transport error or a status other than 200
	server5  int    // of fails, those answered 5xx
	lastErr  string // the last failure, for the test's log
	progress atomic.Int64
}

// newClients returns n clients of the balancer.
func (w *world) newClients(n int) []*client {
	cs := make([]*client, n)
	for i := range cs {
		jar, err := cookiejar.New(nil)
		require.NoError(w.t, err)
		cs[i] = &client{http: &http.Client{Jar: jar, Transport: w.front, Timeout: time.Minute}, url: w.lb.URL}
	}
	return cs
}

// get sends one GET and records what came back.
func (c *client) get() {
	c.sent++
	defer c.progress.Add(1)
	resp, err := c.http.Get(c.url)
	if err != nil {
		c.fails++
		c.lastErr = err.Error()
		return
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		c.fails++
		if resp.StatusCode >= 500 {
			c.server5++
		}
		c.lastErr = fmt.Sprintf("%s: %s %v", resp.Status, strings.TrimSpace(string(body)), err)
		return
	}
	by := resp.Header.Get(servedBy)
	if boundAnew(resp) {
		c.bindings++
		c.bound = by
		if c.first == "" {
			c.first = by
		}
	} else if by != c.bound {
		c.strays++
	}
}

// gets sends n GETs, one after the other.
func (c *client) gets(n int) {
	for range n {
		c.get()
	}
}

// boundAnew reports whether resp sets the affinity cookie. Within a test
// the policy never refreshes a cookie (its TTL is 15 minutes and refreshing
// starts after half of it), so this is a new binding.
func boundAnew(resp *http.Response) bool {
	for _, ck := range resp.Cookies() {
		if ck.Name == cookieName {
			return true
		}
	}
	return false
}

// tally is what a group of clients saw.
type tally struct {
	sent, fails, server5, bindings, strays int
}

// tallyOf adds up what cs saw.
func tallyOf(cs []*client) tally {
	var s tally
	for _, c := range cs {
		s.sent += c.sent
		s.fails += c.fails
		s.server5 += c.server5
		s.bindings += c.bindings
		s.strays += c.strays
	}
	return s
}

// byBackend groups cs by the backend they are bound to.
func byBackend(cs []*client) map[string][]*client {
	m := map[string][]*client{}
	for _, c := range cs {
		m[c.bound] = append(m[c.bound], c)
	}
	return m
}

// snapshot is a client's counters at one moment, to compare with later.
type snapshot struct {
	bound            string
	bindings, strays int
}

// snapshots returns the counters of cs.
func snapshots(cs []*client) []snapshot {
	out := make([]snapshot, len(cs))
	for i, c := range cs {
		out[i] = snapshot{bound: c.bound, bindings: c.bindings, strays: c.strays}
	}
	return out
}

// countWarns is a slog handler that counts the records at Warn or above
// that it passes on.
type countWarns struct {
	slog.Handler
	n *atomic.Int64
}

func (h countWarns) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		h.n.Add(1)
	}
	return h.Handler.Handle(ctx, r)
}

func (h countWarns) WithAttrs(as []slog.Attr) slog.Handler {
	return countWarns{h.Handler.WithAttrs(as), h.n}
}

func (h countWarns) WithGroup(name string) slog.Handler {
	return countWarns{h.Handler.WithGroup(name), h.n}
}

// testWriter writes each line to t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
