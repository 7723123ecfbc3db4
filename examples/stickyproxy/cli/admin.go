package cli

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/metrics"
)

const (
	// maxAdminBody bounds the request bodies the admin API reads.
	maxAdminBody = 64 << 10
	// defaultDrainTimeout is how long a drain lasts at most when its
	// request gives no timeout.
	defaultDrainTimeout = 30 * time.Second
)

// admin is the JSON admin API over a backend set; see README.md.
type admin struct {
	set    *backend.Set
	logger *slog.Logger
	mux    *http.ServeMux
	csrf   *http.CrossOriginProtection
	opts   adminOptions
	token  [sha256.Size]byte // opts.token's SHA-256, when it is not nil
}

// adminOptions are what the admin API checks before it routes a request.
// The zero value accepts the Host names of loopback, and every request
// that carries them.
type adminOptions struct {
	// host is the host name in -admin, accepted as a request's Host
	// besides IP literals and localhost; "": none.
	host string
	// token, when not nil, is the bearer token every request must carry.
	token []byte
	// self, when not nil, returns an error for a backend URL that is the
	// proxy itself, which POST /backends refuses.
	self func(rawURL string) error
	// config, when not nil, is the running configuration: served at GET
	// /config and added to the status page.
	config *runningConfig
	// sourced says that a membership source gives the backends: POST
	// /backends and DELETE /backends/{id} are refused, as the source's
	// next list would undo them.
	sourced bool
}

// newAdmin returns the admin API's handler for set. It logs the changes
// it makes to logger, at Info.
//
//	GET    /                     200, the status page (?format=json: as JSON)
//	GET    /config               200, the running configuration, with opts.config
//	GET    /metrics              200, Prometheus metrics
//	GET    /backends             200, every backend, in the set's order
//	POST   /backends             201, the backend added: {"url": ..., "id": ..., "weight": ...}
//	GET    /backends/{id}        200, one backend
//	DELETE /backends/{id}        204, the backend removed at once
//	POST   /backends/{id}/drain  202, the backend draining: {"timeout": "30s"}
//	GET    /groups               200, every group, by name
//	GET    /groups/{name}        200, one group; /groups/ is the default group, ""
//	PUT    /groups/{name}        200, the group with its new weight: {"weight": 10}
//
// Every request, to any path, must name in its Host an IP address,
// localhost or opts.host (else 421: a web page whose name was rebound to
// this address cannot reach the API), and, with opts.token, carry
// Authorization: Bearer and the token (else 401, with WWW-Authenticate:
// Bearer).
//
// POST /backends refuses (400) a URL that opts.self says is the proxy.
// With opts.sourced, POST /backends and DELETE /backends/{id} are refused
// (409): the membership is the source's; draining and group weights are
// still allowed.
//
// Errors are {"error": "..."}: 400 for an invalid request, 401 for a
// missing or wrong token, 403 for a cross-origin request from a browser,
// 404 for an unknown path, ID or group, 405 (with Allow) for a wrong method, 409
// for a duplicate ID or a change to a source's membership, 413 for a body
// over 64 KiB, 421 for a Host not this API's.
func newAdmin(set *backend.Set, rec *metrics.Recorder, logger *slog.Logger, opts adminOptions) http.Handler {
	a := &admin{set: set, logger: logger, mux: http.NewServeMux(), csrf: http.NewCrossOriginProtection(), opts: opts}
	if opts.token != nil {
		a.token = sha256.Sum256(opts.token)
	}
	// The status page and the Prometheus metrics.
	status := rec.Status()
	if opts.config != nil {
		status = opts.config.withConfig(status, set)
		a.mux.HandleFunc("GET /config", opts.config.serveConfig(set))
		a.mux.Handle("/config", notAllowed("GET, HEAD"))
	}
	a.mux.Handle("GET /{$}", status)
	a.mux.Handle("GET /metrics", rec.Metrics())
	// Each path has its methods' handlers, then a handler for the other
	// methods: the mux prefers a pattern with a method to one without.
	a.mux.HandleFunc("GET /backends", a.list)
	a.mux.HandleFunc("POST /backends", a.add)
	a.mux.Handle("/backends", notAllowed("GET, HEAD, POST"))
	a.mux.HandleFunc("GET /backends/{id}", a.get)
	a.mux.HandleFunc("DELETE /backends/{id}", a.remove)
	a.mux.Handle("/backends/{id}", notAllowed("GET, HEAD, DELETE"))
	a.mux.HandleFunc("POST /backends/{id}/drain", a.drain)
	a.mux.Handle("/backends/{id}/drain", notAllowed("POST"))
	a.mux.HandleFunc("GET /groups", a.listGroups)
	a.mux.Handle("/groups", notAllowed("GET, HEAD"))
	for _, path := range []string{"/groups/{$}", "/groups/{name}"} { // {$}: the default group, ""
		a.mux.HandleFunc("GET "+path, a.getGroup)
		a.mux.HandleFunc("PUT "+path, a.setGroupWeight)
		a.mux.Handle(path, notAllowed("GET, HEAD, PUT"))
	}
	a.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such path %q", r.URL.Path)
	})
	return a
}

// ServeHTTP refuses a request for another host, one without the token
// when there is one, and what a browser sends across origins (a web page
// must not reconfigure the proxy on its visitor's behalf), and routes the
// rest.
func (a *admin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !a.hostAllowed(r.Host) {
		writeError(w, http.StatusMisdirectedRequest, "host %q is not this admin API's: want an IP address or localhost%s", r.Host, orHost(a.opts.host))
		return
	}
	if a.opts.token != nil {
		if err := a.authorize(r); err != nil {
			a.logger.Debug("admin: unauthorized", "err", err, "remote", r.RemoteAddr)
			w.Header().Set("WWW-Authenticate", "Bearer")
			writeError(w, http.StatusUnauthorized, "%v", err)
			return
		}
	}
	if err := a.csrf.Check(r); err != nil {
		writeError(w, http.StatusForbidden, "%v", err)
		return
	}
	a.mux.ServeHTTP(w, r)
}

// hostAllowed reports whether hostport, a request's Host, names this admin
// API: its host is an IP literal, localhost or the host of -admin, with any
// port or none. A name that an attacker's DNS answers for (DNS rebinding)
// is none of these. Names are compared without regard to case; a trailing
// dot makes another name.
func (a *admin) hostAllowed(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	} else if len(host) > 1 && host[0] == '[' && host[len(host)-1] == ']' {
		host = host[1 : len(host)-1] // an IPv6 literal without a port
	}
	if host == "" {
		return false
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	return strings.EqualFold(host, "localhost") || strings.EqualFold(host, a.opts.host)
}

// orHost returns " or host" to end the list of the Host names accepted,
// or "" if host is "".
func orHost(host string) string {
	if host == "" {
		return ""
	}
	return " or " + host
}

// authorize returns nil if r carries the bearer token, else why not. The
// token is compared in constant time, by SHA-256, which hides its length
// too.
func (a *admin) authorize(r *http.Request) error {
	v := r.Header.Get("Authorization")
	if v == "" {
		return errors.New("authorization required: send Authorization: Bearer and the token")
	}
	scheme, tok, _ := strings.Cut(v, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return errors.New("authorization scheme is not Bearer")
	}
	sum := sha256.Sum256([]byte(strings.TrimLeft(tok, " ")))
	if subtle.ConstantTimeCompare(sum[:], a.token[:]) != 1 {
		return errors.New("invalid bearer token")
	}
	return nil
}

// backendJSON is a backend as the admin API shows it.
type backendJSON struct {
	ID       string `json:"id"`
	URL      string `json:"url"`
	Group    string `json:"group"` // "": the default group
	State    string `json:"state"` // healthy, unhealthy or draining
	Weight   int64  `json:"weight"`
	InFlight int64  `json:"inflight"` // requests being served now
	Requests int64  `json:"requests"` // requests admitted so far
}

func toJSON(b *backend.Backend) backendJSON {
	return backendJSON{
		ID:       b.ID(),
		URL:      b.URL().String(),
		Group:    b.Group(),
		State:    b.State().String(),
		Weight:   b.Weight(),
		InFlight: b.InFlight(),
		Requests: b.Requests(),
	}
}

func (a *admin) list(w http.ResponseWriter, r *http.Request) {
	bs := a.set.Snapshot().Backends()
	out := make([]backendJSON, 0, len(bs))
	for _, b := range bs {
		out = append(out, toJSON(b))
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *admin) get(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	b := a.set.Snapshot().Lookup(id)
	if b == nil {
		writeError(w, http.StatusNotFound, "%v %q", backend.ErrNotFound, id)
		return
	}
	writeJSON(w, http.StatusOK, toJSON(b))
}

// errSourced is why the admin API does not add or remove backends that a
// membership source gives.
const errSourced = "the backends are the membership source's: its next list would undo this; drain with POST /backends/{id}/drain"

func (a *admin) add(w http.ResponseWriter, r *http.Request) {
	if a.opts.sourced {
		writeError(w, http.StatusConflict, errSourced)
		return
	}
	var req struct {
		URL    string `json:"url"`
		ID     string `json:"id"`
		Group  string `json:"group"`
		Weight *int   `json:"weight"` // nil: absent, weight 1
	}
	if err := readJSON(w, r, &req); err != nil {
		writeBodyError(w, err)
		return
	}
	weight := 0 // backend.Config's zero: weight 1
	if req.Weight != nil {
		if weight = *req.Weight; weight < 1 || weight > backend.MaxWeight {
			// Checked here, not by Add, which reads 0 as 1.
			writeError(w, http.StatusBadRequest, "invalid weight %d: want 1 to %d", weight, backend.MaxWeight)
			return
		}
	}
	if a.opts.self != nil {
		if err := a.opts.self(req.URL); err != nil {
			writeError(w, http.StatusBadRequest, "%v", err)
			return
		}
	}
	b, err := a.set.Add(backend.Config{ID: req.ID, URL: req.URL, Group: req.Group, Weight: weight})
	switch {
	case errors.Is(err, backend.ErrDuplicate):
		writeError(w, http.StatusConflict, "%v", err)
		return
	case err != nil:
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	a.logger.Info("admin: backend added", "id", b.ID(), "url", b.URL().String(), "group", b.Group(), "remote", r.RemoteAddr)
	w.Header().Set("Location", "/backends/"+b.ID())
	writeJSON(w, http.StatusCreated, toJSON(b))
}

func (a *admin) remove(w http.ResponseWriter, r *http.Request) {
	if a.opts.sourced {
		writeError(w, http.StatusConflict, errSourced)
		return
	}
	id := r.PathValue("id")
	if _, err := a.set.Remove(id); err != nil {
		writeError(w, http.StatusNotFound, "%v", err) // ErrNotFound, the only error
		return
	}
	a.logger.Info("admin: backend removed", "id", id, "remote", r.RemoteAddr)
	w.WriteHeader(http.StatusNoContent)
}

func (a *admin) drain(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Timeout string `json:"timeout"` // a Go duration; "": defaultDrainTimeout
	}
	if err := readJSON(w, r, &req); err != nil && !errors.Is(err, io.EOF) { // an empty body takes the defaults
		writeBodyError(w, err)
		return
	}
	timeout := defaultDrainTimeout
	if req.Timeout != "" {
		d, err := time.ParseDuration(req.Timeout)
		if err != nil || d <= 0 {
			writeError(w, http.StatusBadRequest, "invalid timeout %q: want a positive duration such as \"30s\"", req.Timeout)
			return
		}
		timeout = d
	}
	id := r.PathValue("id")
	// Looked up first: a drain may end, removing the backend, at once.
	b := a.set.Snapshot().Lookup(id)
	if b == nil {
		writeError(w, http.StatusNotFound, "%v %q", backend.ErrNotFound, id)
		return
	}
	if _, err := a.set.Drain(id, timeout); err != nil {
		writeError(w, http.StatusNotFound, "%v", err) // removed meanwhile: the timeout is positive
		return
	}
	a.logger.Info("admin: backend draining", "id", id, "timeout", timeout, "remote", r.RemoteAddr)
	writeJSON(w, http.StatusAccepted, toJSON(b))
}

// groupJSON is a group as the admin API shows it.
type groupJSON struct {
	Name     string   `json:"name"` // "": the default group
	Weight   int      `json:"weight"`
	Backends []string `json:"backends"` // their IDs, in the set's order; never null
}

// groupsJSON returns the groups of snap, by name, as the admin API shows
// them: those that have backends or a weight set.
func groupsJSON(snap *backend.Snapshot) []groupJSON {
	gs := snap.Groups()
	out := make([]groupJSON, 0, len(gs))
	for _, g := range gs {
		out = append(out, toGroupJSON(g))
	}
	return out
}

func toGroupJSON(g backend.Group) groupJSON {
	ids := make([]string, 0, len(g.Backends))
	for _, b := range g.Backends {
		ids = append(ids, b.ID())
	}
	return groupJSON{Name: g.Name, Weight: g.Weight, Backends: ids}
}

// lookupGroup returns the group called name in snap, if it has backends or
// a weight set.
func lookupGroup(snap *backend.Snapshot, name string) (groupJSON, bool) {
	for _, g := range snap.Groups() {
		if g.Name == name {
			return toGroupJSON(g), true
		}
	}
	return groupJSON{}, false
}

func (a *admin) listGroups(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, groupsJSON(a.set.Snapshot()))
}

func (a *admin) getGroup(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	g, ok := lookupGroup(a.set.Snapshot(), name)
	if !ok {
		writeError(w, http.StatusNotFound, "no such group %q: it has no backend and no weight set", name)
		return
	}
	writeJSON(w, http.StatusOK, g)
}

// setGroupWeight sets the weight of a known group: one with backends or a
// weight set already (-group-weights), so that a typo does not create a
// group.
func (a *admin) setGroupWeight(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if _, ok := lookupGroup(a.set.Snapshot(), name); !ok {
		writeError(w, http.StatusNotFound, "no such group %q: it has no backend and no weight set", name)
		return
	}
	var req struct {
		Weight *int `json:"weight"`
	}
	if err := readJSON(w, r, &req); err != nil {
		writeBodyError(w, err)
		return
	}
	if req.Weight == nil {
		writeError(w, http.StatusBadRequest, "no weight: want {\"weight\": N}, N from 0 to %d", backend.MaxGroupWeight)
		return
	}
	if n := *req.Weight; n < 0 || n > backend.MaxGroupWeight {
		writeError(w, http.StatusBadRequest, "invalid weight %d: want 0 to %d", n, backend.MaxGroupWeight)
		return
	}
	if err := a.set.SetGroupWeight(name, *req.Weight); err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	// Read back from the snapshot SetGroupWeight published; a concurrent
	// change may show, as it would on the next GET.
	g, ok := lookupGroup(a.set.Snapshot(), name)
	if !ok {
		g = groupJSON{Name: name, Weight: *req.Weight, Backends: []string{}}
	}
	a.logger.Info("admin: group weight set", "group", name, "weight", *req.Weight, "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, g)
}

// readJSON decodes r's body, one JSON object of at most maxAdminBody bytes
// with none but v's fields, into v. It returns io.EOF for an empty body.
func readJSON(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxAdminBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	switch err := dec.Decode(&json.RawMessage{}); {
	case errors.Is(err, io.EOF):
		return nil
	case err == nil:
		return errors.New("more than one JSON value")
	default:
		return fmt.Errorf("after the JSON value: %w", err)
	}
}

// writeBodyError answers a request whose body readJSON refused.
func writeBodyError(w http.ResponseWriter, err error) {
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge, "request body over %d bytes", tooBig.Limit)
	case errors.Is(err, io.EOF):
		writeError(w, http.StatusBadRequest, "empty request body: want a JSON object")
	default:
		writeError(w, http.StatusBadRequest, "invalid request body: %v", err)
	}
}

// notAllowed answers 405 for a path whose methods are allow.
func notAllowed(allow string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeError(w, http.StatusMethodNotAllowed, "method %s not allowed on %s; allowed: %s", r.Method, r.URL.Path, allow)
	})
}

// writeError answers with status and {"error": message}.
func writeError(w http.ResponseWriter, status int, format string, args ...any) {
	writeJSON(w, status, struct {
		Error string `json:"error"`
	}{fmt.Sprintf(format, args...)})
}

// writeJSON answers with status and v in JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v) // the client's loss only
}
