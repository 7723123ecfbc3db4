package backend

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/affinitylb/affinity/event"
	"github.com/affinitylb/affinity/internal/backendhooks"
)

// State is a backend's health as the balancer sees it: [Healthy],
// [Unhealthy] or [Draining]. It is [event.State], under this package's name.
type State = event.State

// The states of a backend, as [event.State] defines them.
const (
	// Healthy backends take new clients and the clients bound to them.
	Healthy = event.Healthy
	// Unhealthy backends take no traffic; their clients are re-routed. A
	// half-open backend (see [Ejection]) is Unhealthy: it takes a single
	// trial request, and is Healthy again only once a request succeeds.
	Unhealthy = event.Unhealthy
	// Draining backends keep serving the clients bound to them but take no
	// new ones.
	Draining = event.Draining
)

// ParseState is the inverse of [State.String].
func ParseState(s string) (State, error) {
	switch s {
	case "healthy":
		return Healthy, nil
	case "unhealthy":
		return Unhealthy, nil
	case "draining":
		return Draining, nil
	}
	return 0, fmt.Errorf("backend: unknown state %q (want healthy, unhealthy or draining)", s)
}

// MaxWeight is the largest weight a backend may have.
const MaxWeight = 1 << 16

// maxIDLen bounds an ID's length; IDs travel in logs, URLs and JSON.
const maxIDLen = 64

// Config describes a backend to add to a [Set].
type Config struct {
	// ID names the backend. It must be 1 to 64 characters from
	// [A-Za-z0-9._-]. When empty, the ID is a digest of the normalized URL,
	// so processes configured with the same URL agree on it.
	ID string
	// URL is the backend's base URL: a scheme, a host, and optionally a
	// path prefix. The scheme is http, https, or h2c: HTTP/2 without TLS,
	// with prior knowledge (RFC 9113, section 3.3), as gRPC servers speak
	// it; its default port is 80. Query, fragment and user info are not
	// allowed.
	URL string
	// Weight is the backend's relative capacity, 1 to MaxWeight. Zero means 1.
	Weight int
	// Metadata is what pickers may know of the backend besides its ID,
	// such as its zone: at most 64 entries, each key 1 to 64 bytes and
	// each value at most 256. It is copied when the backend is built; the
	// caller may change the map afterwards. Read it with
	// [Backend.Metadata].
	Metadata map[string]string
	// Group is the backend's group: a version of the application, a
	// target group. It is 0 to 64 characters from [A-Za-z0-9._-]; "" is the
	// default group. New clients choose a group by its weight (see
	// [WithGroupWeights]) before a backend within it; a client bound to a
	// backend is re-placed within the backend's group.
	Group string
	// Draining says, as a [Source] may, that the backend is shutting down
	// (a terminating pod): it keeps the clients bound to it and takes no
	// new ones, as under [Set.Drain], until a list given to [Set.Update]
	// says otherwise or leaves it out. False takes back only a drain a
	// config asked for: an operator's drain, health checks and ejections
	// are the set's own and stay as they are.
	Draining bool
}

// Metadata bounds.
const (
	maxMetadata      = 64
	maxMetadataKey   = 64
	maxMetadataValue = 256
)

// Backend is one upstream server. Its ID, URL and weight never change; its
// metadata, state and in-flight count are safe to read from any goroutine. Backends are
// created by a [Set] and belong to it.
type Backend struct {
	id     string
	group  string
	url    *url.URL
	weight int64
	set    *Set
	meta   atomic.Pointer[map[string]string] // nil: none; replaced whole by Set.Update

	state       atomic.Int32 // a State, derived from health by Set.refresh
	inflight    atomic.Int64
	requests    atomic.Int64
	removed     atomic.Bool
	fails       failRun                    // the current run of consecutive failures, for passive health
	lastFailure atomic.Pointer[string]     // the cause of the last failure reported with one
	abandoned   atomic.Int64               // requests abandoned since the last answer, for stalls
	trial       atomic.Int64               // half-open: trialNone, trialOpen, or when the trial out was admitted
	ramp        ramp                       // slow start
	stall       stall                      // the current run of abandoned requests
	waiting     atomic.Int64               // requests sent and awaiting their response header
	waits       atomic.Int64               // waits started so far
	waitingBy   byClient                   // waiting, by class of client
	waitsBy     byClient                   // waits, by class of client
	quiet       atomic.Int32               // watch ticks since the last answer
	watch       watch                      // samples waiting while it is not zero
	info        atomic.Pointer[HealthInfo] // nil until b's health first changes; see Set.derive

	health health // guarded by set.mu
}

// newBackend validates c and builds a healthy backend of s from it.
func newBackend(c Config, s *Set) (*Backend, error) {
	u, err := parseURL(c.URL)
	if err != nil {
		return nil, err
	}
	id := c.ID
	if id == "" {
		id = digestID(u)
	} else if err := validateID(id); err != nil {
		return nil, err
	}
	w := c.Weight
	switch {
	case w == 0:
		w = 1
	case w < 0 || w > MaxWeight:
		return nil, fmt.Errorf("backend: %s: weight %d out of range 1..%d", id, w, MaxWeight)
	}
	if err := validateGroup(c.Group); err != nil {
		return nil, fmt.Errorf("backend: %s: %w", id, err)
	}
	b := &Backend{id: id, group: c.Group, url: u, weight: int64(w), set: s}
	if c.Draining {
		b.health.retiring = true
		b.state.Store(int32(Draining))
		b.info.Store(&HealthInfo{State: Draining, Since: time.Now(), Reason: "config: shutting down"})
	}
	if len(c.Metadata) > 0 {
		if err := validateMetadata(id, c.Metadata); err != nil {
			return nil, err
		}
		m := maps.Clone(c.Metadata)
		b.meta.Store(&m)
	}
	return b, nil
}

// validateMetadata checks the metadata of the backend called id.
func validateMetadata(id string, m map[string]string) error {
	if len(m) > maxMetadata {
		return fmt.Errorf("backend: %s: %d metadata entries, more than %d", id, len(m), maxMetadata)
	}
	for k, v := range m {
		switch {
		case k == "":
			return fmt.Errorf("backend: %s: empty metadata key", id)
		case len(k) > maxMetadataKey:
			return fmt.Errorf("backend: %s: metadata key %.16q...: longer than %d bytes", id, k, maxMetadataKey)
		case len(v) > maxMetadataValue:
			return fmt.Errorf("backend: %s: metadata %q: value longer than %d bytes", id, k, maxMetadataValue)
		}
	}
	return nil
}

// Metadata returns the value of b's metadata for key ([Config.Metadata]),
// "" when it has none. It takes no lock and does not allocate. The
// metadata is replaced whole, never changed in place, when [Set.Update]
// gives the backend other metadata; the change publishes a new snapshot.
func (b *Backend) Metadata(key string) string {
	if m := b.meta.Load(); m != nil {
		return (*m)[key]
	}
	return ""
}

// sameMetadata reports whether b and c hold equal metadata.
func (b *Backend) sameMetadata(c *Backend) bool {
	var mb, mc map[string]string
	if p := b.meta.Load(); p != nil {
		mb = *p
	}
	if p := c.meta.Load(); p != nil {
		mc = *p
	}
	return maps.Equal(mb, mc)
}

// ID returns the backend's stable identifier.
func (b *Backend) ID() string { return b.id }

// Group returns the backend's group ([Config.Group]); "" is the default
// group.
func (b *Backend) Group() string { return b.group }

// URL returns the backend's base URL. The caller must not modify it.
func (b *Backend) URL() *url.URL { return b.url }

// Weight returns the backend's relative capacity, at least 1.
func (b *Backend) Weight() int64 { return b.weight }

// State returns the backend's current state.
func (b *Backend) State() State { return State(b.state.Load()) }

// InFlight returns the number of requests b is serving now, for metrics
// and status pages. A picker weighs a backend's load with [Snapshot.Load]
// instead, which adds the slow-start allowance.
func (b *Backend) InFlight() int64 { return b.inflight.Load() }

// Requests returns the number of requests b has admitted so far.
func (b *Backend) Requests() int64 { return b.requests.Load() }

// Removed reports whether b has been removed from its set. A removed backend
// admits no new requests; those admitted before finish normally.
func (b *Backend) Removed() bool { return b.removed.Load() }

// acquire counts a request in flight on b and reports whether b admitted
// it; false, counting nothing, once b has been removed from its set. Every
// successful acquire is paired with exactly one release. The request path
// reaches it through package accounting, which documents the contract.
func (b *Backend) acquire() bool {
	b.inflight.Add(1)
	if b.removed.Load() {
		b.inflight.Add(-1)
		return false
	}
	b.set.inflight.Add(1)
	b.requests.Add(1)
	return true
}

// release ends a request counted by a successful acquire.
func (b *Backend) release() {
	b.set.inflight.Add(-1)
	b.inflight.Add(-1)
}

// init gives the request path's calls to package accounting, the only
// package that exports them.
func init() {
	backendhooks.Set(&backendhooks.Funcs[*Backend, *Snapshot]{
		Acquire:         (*Backend).acquire,
		Release:         (*Backend).release,
		ReportFailure:   (*Backend).reportFailure,
		ReportSuccess:   (*Backend).reportSuccess,
		ReportAbandoned: (*Backend).reportAbandoned,
		WaitStarted:     (*Backend).waitStarted,
		WaitEnded:       (*Backend).waitEnded,
		TryTrial:        (*Backend).tryTrial,
		Trial:           (*Snapshot).tryTrial,
	})
}

// String returns the backend's ID, for logs.
func (b *Backend) String() string { return b.id }

// parseURL checks that raw is a base URL a reverse proxy can target.
func parseURL(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, fmt.Errorf("backend: empty URL")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("backend: invalid URL %q: %w", raw, err)
	}
	u.Scheme = strings.ToLower(u.Scheme)
	u.Host = strings.ToLower(u.Host)
	switch {
	case u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "h2c":
		return nil, fmt.Errorf("backend: URL %q: scheme must be http, https or h2c", raw)
	case u.Host == "" || u.Hostname() == "":
		return nil, fmt.Errorf("backend: URL %q: no host", raw)
	case u.User != nil:
		return nil, fmt.Errorf("backend: URL %q: user info is not allowed", u.Redacted())
	case u.RawQuery != "" || u.ForceQuery:
		return nil, fmt.Errorf("backend: URL %q: a query is not allowed", raw)
	case u.Fragment != "":
		return nil, fmt.Errorf("backend: URL %q: a fragment is not allowed", raw)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("backend: URL %q: invalid port %q", raw, p)
		}
	}
	normalize(u)
	return u, nil
}

// normalize rewrites u so that spellings of one address are one URL, and so
// one digest ID: no default port, no empty port, no lone "/" path.
func normalize(u *url.URL) {
	host, port := u.Hostname(), u.Port()
	if port == "" || u.Scheme != "https" && port == "80" || u.Scheme == "https" && port == "443" {
		if strings.Contains(host, ":") {
			host = "[" + host + "]" // IPv6 literal
		}
		u.Host = host
	}
	if u.Path == "/" && u.RawPath == "" {
		u.Path = ""
	}
}

// digestID names a backend that was given no ID: the first 12 hex digits of
// the SHA-256 of its normalized URL.
func digestID(u *url.URL) string {
	sum := sha256.Sum256([]byte(u.String()))
	return hex.EncodeToString(sum[:6])
}

// validateID checks a configured ID.
func validateID(id string) error {
	if len(id) > maxIDLen {
		return fmt.Errorf("backend: id %.16q...: longer than %d characters", id, maxIDLen)
	}
	if c, ok := badChar(id); ok {
		return fmt.Errorf("backend: id %q: character %q not allowed (use A-Z a-z 0-9 . _ -)", id, c)
	}
	return nil
}

// validateGroup checks a group name: like an ID, but it may be empty.
func validateGroup(g string) error {
	if len(g) > maxIDLen {
		return fmt.Errorf("group %.16q...: longer than %d characters", g, maxIDLen)
	}
	if c, ok := badChar(g); ok {
		return fmt.Errorf("group %q: character %q not allowed (use A-Z a-z 0-9 . _ -)", g, c)
	}
	return nil
}

// badChar returns the first character of s that an ID or a group name may
// not hold.
func badChar(s string) (rune, bool) {
	for _, c := range s {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return c, true
		}
	}
	return 0, false
}
