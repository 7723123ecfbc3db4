package backend

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

const (
	defaultDNSInterval = 5 * time.Second
	minDNSInterval     = 100 * time.Millisecond
)

// DNSConfig configures a [DNS] source. Name is required, and so is Port for
// address lookups; every other field has a useful zero value.
type DNSConfig struct {
	// Name is the name to look up. For address lookups it is a host name,
	// such as a headless Service's "web.shop.svc.cluster.local". With SRV it
	// is the whole record name, "_service._proto.name", such as
	// "_http._tcp.web.shop.svc.cluster.local" for the Service's port named
	// http. It may end in a dot.
	Name string
	// SRV looks up SRV records instead of addresses; see [DNS].
	SRV bool
	// Scheme is the backends' URL scheme: "http", the default, or "https".
	Scheme string
	// Port is the backends' port, 1 to 65535. Address lookups require it;
	// with SRV it must be zero, as each record carries its port.
	Port int
	// Network selects the address records: "ip", the default, for A and
	// AAAA, "ip4" for A only, "ip6" for AAAA only. A dual-stack pod has
	// both, and with "ip" it counts as two backends; choose one family
	// there. With SRV it must be empty.
	Network string
	// Interval is the time between lookups: 5 seconds when zero, at least
	// 100ms. Each wait is jittered by up to ±10%, so
	// processes polling one name spread their queries out.
	Interval time.Duration
	// Timeout bounds each lookup; zero means Interval.
	Timeout time.Duration
	// Resolver does the lookups; nil means [net.DefaultResolver].
	Resolver *net.Resolver
	// Logger receives membership changes at Info and failed lookups at
	// Warn; nil logs nothing.
	Logger *slog.Logger
}

// DNS is a [Source] whose membership is what a DNS name resolves to. It
// looks the name up when Run starts and every Interval after, and delivers
// the answer whenever it differs from the one delivered last.
//
// The common case is a Kubernetes headless Service (clusterIP: None): its
// name resolves to the addresses of its ready pods, one A or AAAA record
// each, so the balancer follows the pods as they are scaled, rolled out and
// replaced, with no access to the Kubernetes API.
//
// Address lookups make one backend per address, URL scheme://ip:port, with
// no ID, so the ID is the digest of the URL: the same in every process and
// every poll, and a pod's ID changes only if its address does.
//
// SRV lookups make one backend per record, URL scheme://target:port. The
// target stays a host name, resolved when a connection is dialed, rather
// than being resolved here to addresses: for a headless Service the targets
// are per-pod names, and a StatefulSet's pod keeps its name, so its ID and
// the clients bound to it survive a reschedule that changes its address;
// with https the name is what the certificate is checked against; and one
// target is one backend with its record's weight, however many addresses it
// has. Only the records of the lowest priority value are used: the others
// are backups, and the source cannot tell when the primaries are down, so a
// backup group is used only once DNS stops returning the records before it.
// A record's weight becomes the backend's weight, 0 counting as 1. Records
// for the target "." (no service here) or port 0 are skipped.
//
// A lookup that fails because the name does not exist, or has no records
// of the type asked for, is an answer: no backends. Any other failure, such
// as a timeout or a server failure, keeps the membership as it was, is
// logged at Warn and is retried at the next interval. Until the first
// lookup succeeds Run delivers nothing.
//
// Backends are delivered sorted by URL, duplicates removed. A DNS is safe
// for concurrent use; each call of Run polls on its own.
type DNS struct {
	cfg DNSConfig // validated, defaults filled in
}

// NewDNS validates cfg and returns a DNS source. The error names the field
// that is wrong and its value.
func NewDNS(cfg DNSConfig) (*DNS, error) {
	if cfg.Name == "" {
		return nil, errors.New("backend: DNSConfig.Name is empty")
	}
	for _, c := range cfg.Name {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return nil, fmt.Errorf("backend: DNSConfig.Name %q: character %q not allowed in a DNS name", cfg.Name, c)
		}
	}
	switch cfg.Scheme {
	case "":
		cfg.Scheme = "http"
	case "http", "https":
	default:
		return nil, fmt.Errorf("backend: DNSConfig.Scheme %q: want http or https", cfg.Scheme)
	}
	switch {
	case cfg.SRV && cfg.Port != 0:
		return nil, fmt.Errorf("backend: DNSConfig.Port %d: must be 0 with SRV, whose records carry the port", cfg.Port)
	case !cfg.SRV && (cfg.Port < 1 || cfg.Port > 65535):
		return nil, fmt.Errorf("backend: DNSConfig.Port %d: out of range 1..65535", cfg.Port)
	}
	switch {
	case cfg.SRV && cfg.Network != "":
		return nil, fmt.Errorf("backend: DNSConfig.Network %q: must be empty with SRV", cfg.Network)
	case cfg.SRV:
	case cfg.Network == "":
		cfg.Network = "ip"
	case cfg.Network != "ip" && cfg.Network != "ip4" && cfg.Network != "ip6":
		return nil, fmt.Errorf("backend: DNSConfig.Network %q: want ip, ip4 or ip6", cfg.Network)
	}
	switch {
	case cfg.Interval == 0:
		cfg.Interval = defaultDNSInterval
	case cfg.Interval < minDNSInterval:
		return nil, fmt.Errorf("backend: DNSConfig.Interval %v: less than %v", cfg.Interval, minDNSInterval)
	}
	switch {
	case cfg.Timeout == 0:
		cfg.Timeout = cfg.Interval
	case cfg.Timeout < 0:
		return nil, fmt.Errorf("backend: DNSConfig.Timeout %v: negative", cfg.Timeout)
	}
	if cfg.Resolver == nil {
		cfg.Resolver = net.DefaultResolver
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &DNS{cfg: cfg}, nil
}

// Run looks the name up at once and then every Interval, and calls update
// with the backends whenever they differ from those it delivered last. It
// returns ctx.Err() when ctx is done, promptly, even in the middle of a
// lookup.
func (d *DNS) Run(ctx context.Context, update func([]Config)) error {
	var (
		last      []Config
		delivered bool
	)
	t := time.NewTimer(0) // the first lookup at once
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		cfgs, err := d.lookup(ctx)
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil && !isNotFound(err):
			d.cfg.Logger.Warn("dns lookup failed; backends unchanged", "name", d.cfg.Name, "err", err)
		case !delivered || !slices.EqualFunc(cfgs, last, sameConfig):
			last, delivered = cfgs, true
			if err != nil {
				d.cfg.Logger.Warn("dns name not found; no backends", "name", d.cfg.Name, "err", err)
			} else {
				d.cfg.Logger.Info("dns backends changed", "name", d.cfg.Name, "backends", len(cfgs))
			}
			update(slices.Clone(cfgs)) // last stays ours whatever update does
		}
		t.Reset(d.wait())
	}
}

// lookup resolves the name once. When the name is not found it returns an
// empty list with the error.
func (d *DNS) lookup(ctx context.Context) ([]Config, error) {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	var cfgs []Config
	if d.cfg.SRV {
		_, srvs, err := d.cfg.Resolver.LookupSRV(ctx, "", "", d.cfg.Name)
		if len(srvs) == 0 && err != nil {
			return []Config{}, err
		}
		if err != nil { // some records had invalid names and were dropped
			d.cfg.Logger.Warn("dns: some SRV records ignored", "name", d.cfg.Name, "err", err)
		}
		cfgs = d.fromSRV(srvs)
	} else {
		ips, err := d.cfg.Resolver.LookupNetIP(ctx, d.cfg.Network, d.cfg.Name)
		if err != nil {
			return []Config{}, err
		}
		cfgs = make([]Config, 0, len(ips))
		for _, ip := range ips {
			hostport := netip.AddrPortFrom(ip.Unmap(), uint16(d.cfg.Port)).String()
			cfgs = append(cfgs, Config{URL: d.url(hostport)})
		}
	}
	// Sorted, so that equal answers compare equal; the largest weight first,
	// so that of duplicate URLs the one with the largest weight is kept.
	slices.SortFunc(cfgs, func(a, b Config) int {
		return cmp.Or(strings.Compare(a.URL, b.URL), cmp.Compare(b.Weight, a.Weight))
	})
	return slices.CompactFunc(cfgs, func(a, b Config) bool { return a.URL == b.URL }), nil
}

// fromSRV makes a backend of each usable record of the lowest priority value.
func (d *DNS) fromSRV(srvs []*net.SRV) []Config {
	usable := func(s *net.SRV) bool {
		return s.Port != 0 && strings.TrimSuffix(s.Target, ".") != "" // "." means no service
	}
	lowest := -1
	for _, s := range srvs {
		if usable(s) && (lowest < 0 || int(s.Priority) < lowest) {
			lowest = int(s.Priority)
		}
	}
	cfgs := make([]Config, 0, len(srvs))
	for _, s := range srvs {
		if !usable(s) || int(s.Priority) != lowest {
			continue
		}
		host := strings.ToLower(strings.TrimSuffix(s.Target, "."))
		cfgs = append(cfgs, Config{
			URL:    d.url(net.JoinHostPort(host, strconv.Itoa(int(s.Port)))),
			Weight: max(int(s.Weight), 1), // at most 65535 < MaxWeight
		})
	}
	return cfgs
}

// url returns the URL of a backend at hostport.
func (d *DNS) url(hostport string) string {
	return (&url.URL{Scheme: d.cfg.Scheme, Host: hostport}).String()
}

// wait returns the time until the next lookup: Interval, ±10%.
func (d *DNS) wait() time.Duration {
	iv := d.cfg.Interval
	return iv - iv/10 + rand.N(iv/5+1)
}

func isNotFound(err error) bool {
	var de *net.DNSError
	return errors.As(err, &de) && de.IsNotFound
}

// sameConfig reports whether a and b describe the same backend alike.
func sameConfig(a, b Config) bool {
	return a.ID == b.ID && a.URL == b.URL && a.Weight == b.Weight && maps.Equal(a.Metadata, b.Metadata)
}
