package endpointslice

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/affinitylb/affinity/backend"
)

// defaultRemoveDelay is Config.RemoveDelay's zero value.
const defaultRemoveDelay = time.Second

// Config configures a [Source]. Client and Service are required; every
// other field has a useful zero value.
type Config struct {
	// Client reads the EndpointSlices. It needs get, list and watch on
	// endpointslices.discovery.k8s.io in the Service's namespace.
	Client kubernetes.Interface
	// Service is the Service and port whose endpoints are the backends.
	Service Service
	// Scheme is the backends' URL scheme: "http", the default, "https", or
	// "h2c" (HTTP/2 without TLS; see [backend.Config]).
	Scheme string
	// Family is the address family used for a pod listed with both, in the
	// slices of a dual-stack Service: [discoveryv1.AddressTypeIPv4], the
	// default, or [discoveryv1.AddressTypeIPv6].
	Family discoveryv1.AddressType
	// RemoveDelay is how long a backend that is in no slice any more stays,
	// draining, before it is removed: one second when zero. It covers an
	// endpoint moving from one slice to another, which takes two updates.
	// An endpoint that is listed but not serving, or whose address another
	// listed endpoint has, is removed at once.
	RemoveDelay time.Duration
	// Logger receives membership changes at Info, the first failure to
	// list or watch of an outage at Warn, later ones at Debug, and the
	// outage's end at Info; nil logs nothing.
	Logger *slog.Logger
}

// Source is a [backend.Source] whose membership is the endpoints of one
// Kubernetes Service's port; the package documentation says how endpoints
// map to backends. A Source is safe for concurrent use; each call of Run
// runs an informer of its own.
type Source struct {
	cfg  Config // validated, defaults filled in
	port int32  // the Service's port number, 0 if it is a name
}

// New validates cfg and returns a Source. The error lists every invalid
// field with its value.
func New(cfg Config) (*Source, error) {
	var errs []error
	if cfg.Client == nil {
		errs = append(errs, errors.New("endpointslice: Config.Client is nil"))
	}
	if err := cfg.Service.validate(); err != nil {
		errs = append(errs, fmt.Errorf("endpointslice: Config.Service %q: %w", cfg.Service, err))
	}
	switch cfg.Scheme {
	case "":
		cfg.Scheme = "http"
	case "http", "https", "h2c":
	default:
		errs = append(errs, fmt.Errorf("endpointslice: Config.Scheme %q: want http, https or h2c", cfg.Scheme))
	}
	switch cfg.Family {
	case "":
		cfg.Family = discoveryv1.AddressTypeIPv4
	case discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6:
	default:
		errs = append(errs, fmt.Errorf("endpointslice: Config.Family %q: want IPv4 or IPv6", cfg.Family))
	}
	switch {
	case cfg.RemoveDelay == 0:
		cfg.RemoveDelay = defaultRemoveDelay
	case cfg.RemoveDelay < 0:
		errs = append(errs, fmt.Errorf("endpointslice: Config.RemoveDelay %v: negative", cfg.RemoveDelay))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	port, _ := cfg.Service.portNumber() // validated above
	return &Source{cfg: cfg, port: port}, nil
}

// Run watches the Service's EndpointSlices and calls update with the
// membership once the informer has listed them, and again whenever it
// changes, until ctx is done; then it stops the informer and returns
// ctx.Err(). Until the first list succeeds it delivers nothing. Failures to
// reach the API server are logged and retried; they never end Run.
func (s *Source) Run(ctx context.Context, update func([]backend.Config)) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait() // after cancel, deferred below
	defer cancel()

	svc := s.cfg.Service
	log := s.cfg.Logger.With("service", svc.String())
	reach := &reachability{log: log}
	inf := s.informer(reach)
	if err := inf.SetWatchErrorHandler(func(_ *cache.Reflector, err error) { reach.failed(err) }); err != nil {
		return fmt.Errorf("endpointslice: %w", err)
	}
	kick := make(chan struct{}, 1)
	poke := func() {
		select {
		case kick <- struct{}{}:
		default: // a computation is due already and will see this change
		}
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { poke() },
		UpdateFunc: func(any, any) { poke() },
		DeleteFunc: func(any) { poke() },
	}); err != nil {
		return fmt.Errorf("endpointslice: %w", err)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		inf.RunWithContext(ctx)
	}()
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return ctx.Err()
	}
	log.Info("endpointslices listed")

	var (
		last      []backend.Config
		delivered bool
		gone      = map[string]held{} // backends in no slice, by ID
		timer     = time.NewTimer(time.Hour)
	)
	defer timer.Stop()
	for {
		now := time.Now()
		cur, listed := s.membership(inf.GetStore().List())
		next := s.hold(cur, listed, last, gone, now)
		if !delivered || !slices.EqualFunc(next, last, sameConfig) {
			last, delivered = next, true
			log.Info("endpointslice backends changed", "backends", len(next), "held", len(gone))
			update(cloneConfigs(next)) // last stays ours whatever update does
		}
		timer.Reset(nextExpiry(gone, now))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-kick:
		case <-timer.C:
		}
	}
}

// informer returns an informer of the Service's EndpointSlices whose lists
// and watches tell reach how they went. client-go's reflector retries a
// watch that cannot connect without telling the informer's watch error
// handler, so the calls themselves are watched.
func (s *Source) informer(reach *reachability) cache.SharedIndexInformer {
	slices := s.cfg.Client.DiscoveryV1().EndpointSlices(s.cfg.Service.Namespace)
	selector := discoveryv1.LabelServiceName + "=" + s.cfg.Service.Name
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.LabelSelector = selector
			l, err := slices.List(ctx, o)
			reach.report(ctx, err)
			return l, err
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.LabelSelector = selector
			w, err := slices.Watch(ctx, o)
			reach.report(ctx, err)
			return w, err
		},
	}
	return cache.NewSharedIndexInformerWithOptions(cache.ToListWatcherWithWatchListSemantics(lw, s.cfg.Client),
		&discoveryv1.EndpointSlice{}, cache.SharedIndexInformerOptions{})
}

// reachability logs the API server becoming unreachable, once, at Warn,
// and reachable again at Info; the failures in between at Debug.
type reachability struct {
	log  *slog.Logger
	mu   sync.Mutex
	down bool
}

// report records how a list or watch call went; calls cut short by their
// context (Run ending) say nothing.
func (r *reachability) report(ctx context.Context, err error) {
	switch {
	case ctx.Err() != nil:
	case err != nil:
		r.failed(err)
	default:
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.down {
			r.down = false
			r.log.Info("endpointslices reachable again")
		}
	}
}

// failed records a failed list or watch.
func (r *reachability) failed(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.down {
		r.log.Debug("endpointslice list or watch failed again", "err", err)
		return
	}
	r.down = true
	r.log.Warn("endpointslice list or watch failed; backends unchanged, retrying", "err", err)
}

// held is a backend that has left every slice, kept draining until
// RemoveDelay has passed.
type held struct {
	cfg   backend.Config
	until time.Time
}

// hold returns cur with the backends of last that are in no slice (not in
// listed) added back as draining, until s.cfg.RemoveDelay after they left,
// unless a backend of cur has the same URL: another pod has the address,
// and the departed pod's clients must be placed anew, not sent to it.
// gone records them; hold updates it. Every backend of gone is in last, as
// Run delivers what hold returns. The result is sorted by ID.
func (s *Source) hold(cur []backend.Config, listed map[string]bool, last []backend.Config, gone map[string]held, now time.Time) []backend.Config {
	inCur := make(map[string]bool, len(cur))
	urls := make(map[string]bool, len(cur))
	for _, c := range cur {
		inCur[c.ID] = true
		urls[c.URL] = true
	}
	for _, c := range last {
		if listed[c.ID] || inCur[c.ID] {
			delete(gone, c.ID) // back in a slice: cur says what it is
			continue
		}
		h, ok := gone[c.ID]
		switch {
		case urls[c.URL]:
			delete(gone, c.ID) // another pod has its address: it is gone
		case !ok:
			c.Draining = true
			gone[c.ID] = held{cfg: c, until: now.Add(s.cfg.RemoveDelay)}
		case !now.Before(h.until):
			delete(gone, c.ID)
		}
	}
	out := cur
	for _, h := range gone {
		out = append(out, h.cfg)
	}
	sortConfigs(out)
	return out
}

// nextExpiry returns how long after now the first backend of gone is due
// for removal, or an hour if there is none.
func nextExpiry(gone map[string]held, now time.Time) time.Duration {
	d := time.Hour
	for _, h := range gone {
		d = min(d, h.until.Sub(now))
	}
	return max(d, 0)
}
