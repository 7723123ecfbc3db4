package cookie

import (
	"fmt"
	"net/http"
	"net/textproto"
	"strings"
	"time"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/internal/cookies"
	"github.com/affinitylb/affinity/policy"
)

// App is a [policy.Policy] that keeps a client on a backend for as long
// as the application's own session cookie lives (PHPSESSID,
// JSESSIONID...), like AWS ALB's application-based stickiness. The binding
// is the signed balancer cookie of [Policy], with the same format, keys,
// name and attributes, so a Policy and an App configured alike accept each
// other's cookies; only its lifetime differs: it follows the application
// cookie's, read from the backend's Set-Cookie lines, and does not slide.
// Its Path, unless [WithPath] is given, is the application cookie's, so
// that applications on one host, each with its own path, get a binding
// each.
//
// Until the application sets its cookie no balancer cookie is set, and
// requests go to the picker; a request that carries the application's
// cookie but no binding to the backend that serves it is bound there (see
// Save). The application's cookie is read on requests only to see whether
// there is one, and never changed on responses: App only adds Set-Cookie
// lines of its own.
//
// An App is safe for concurrent use. Its Lookup is [Policy.Lookup]'s, with
// the same guarantees: it never panics and allocates nothing once the
// snapshot's index is built.
type App struct {
	app    string
	cookie *Policy
}

var (
	_ policy.Policy   = (*App)(nil)
	_ policy.Stripper = (*App)(nil)
)

// Strip removes the balancer's cookie and its CORS twin, not the
// application's, from the Cookie header h. It implements [policy.Stripper].
func (a *App) Strip(h http.Header) { a.cookie.Strip(h) }

// NewApp returns an App that follows the application cookie called app,
// signing with keys[0] and accepting cookies signed with any of keys, as
// [New] does.
//
// The options are [Policy]'s: the name, Path, Domain, SameSite, HttpOnly,
// Secure and Partitioned attributes, the CORS twin, the maximum life and
// the clock. [WithTTL] and [WithSliding] do not apply, the lifetime being
// the application's: NewApp returns an error if either is given, rather
// than ignore it.
//
// NewApp checks app, the keys and every option's value, and returns an
// error listing all that are invalid, each naming the key, the option or
// app, and its value: app must be a valid cookie name (an HTTP token)
// other than the balancer cookie's and its CORS twin's.
func NewApp(app string, keys [][]byte, opts ...Option) (*App, error) {
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	var errs []error
	if o.ttlSet {
		errs = append(errs, fmt.Errorf("cookie: WithTTL(%v): does not apply to an App: its cookie lives as long as the application's", o.ttl))
	}
	if o.slidingSet {
		errs = append(errs, fmt.Errorf("cookie: WithSliding(%v): does not apply to an App: its cookie lives as long as the application's", o.sliding))
	}
	switch err := cookies.ValidToken(app); {
	case err != nil:
		errs = append(errs, fmt.Errorf("cookie: application cookie name %q: %v", app, err))
	case app == o.name:
		errs = append(errs, fmt.Errorf("cookie: application cookie name %q is also the balancer cookie's; rename the balancer's with WithName", app))
	case o.cors && app == o.name+corsSuffix:
		errs = append(errs, fmt.Errorf("cookie: application cookie name %q is also the balancer cookie's CORS twin's; rename the balancer's with WithName", app))
	}
	// The lifetime is the application's, and does not slide.
	o.ttl, o.sliding = 0, false
	c, err := newPolicy(keys, o, errs)
	if err != nil {
		return nil, err
	}
	return &App{app: app, cookie: c}, nil
}

// Name returns the balancer cookie's name.
func (a *App) Name() string { return a.cookie.Name() }

// App returns the name of the application cookie a follows.
func (a *App) App() string { return a.app }

// Lookup returns the binding carried by r's balancer cookie, exactly as
// [Policy.Lookup] does, several cookies of the name included. Refresh is
// set when the cookie was signed with a key other than the first; never
// for its age, since it does not slide.
func (a *App) Lookup(r *http.Request, s *backend.Snapshot) policy.Binding {
	return a.cookie.Lookup(r, s)
}

// Save reads the application cookie's Set-Cookie lines in resp (the last
// one wins) and adds the balancer cookie's to match:
//
//   - set with a lifetime (Max-Age, or else Expires in the future): the
//     client is bound to b for as long, capped at 400 days and rounded
//     down to whole seconds, at least one; a binding to b that the
//     application renews keeps its age, and with [WithMaxLife] the
//     lifetime is cut short so as not to outlast the maximum;
//   - set for the browser session (neither attribute): the client is bound
//     to b for the session;
//   - deleted (Max-Age zero or negative, or Expires in the past): the
//     balancer cookie is deleted;
//   - not set at all: the binding is left as it is, with two exceptions.
//     A valid cookie for b signed with an old key (prev is Valid and names
//     b, and Refresh is set) is signed again with the first, expiring when
//     it did. And a request that carries the application's cookie (with a
//     value) but no valid binding to b is bound to b: its binding was
//     absent, refused, or named a backend that could not serve it, and the
//     application, b, took over the session without setting its cookie,
//     as PHP does by default with a session ID it does not know. The new
//     binding expires when the old one did if that was authentic and
//     unexpired (prev is Unknown, or Valid and names another backend), and
//     is a session cookie otherwise. So a client whose backend failed
//     moves once, not on every request.
//
// When it follows the application's line, set or deleted, the balancer
// cookie takes its Path (none if the line has none or an invalid one, as
// the browser then takes the default path for both), unless [WithPath]
// was given. A re-signed or taken-over binding has the configured path,
// "/" by default: the request does not say which path the cookies it
// carries were set with. So, for an application whose cookie has a Path of
// its own and that takes over sessions without setting its cookie, the old
// binding stays in the browser beside the new one: Lookup prefers the new
// one while the old one's backend does not serve, and the old one again
// once it does.
//
// With [WithCORS], every balancer cookie set or deleted comes with
// its twin, set or deleted alike. Save never changes or removes other
// Set-Cookie lines.
func (a *App) Save(r *http.Request, resp *http.Response, b *backend.Backend, prev policy.Binding) {
	c := a.cookie
	switch life, path, set := a.appCookie(resp.Header); {
	case set && life < 0:
		c.set(resp, nil, -1, c.secure(r), path)
	case set:
		var born int64 // a binding to b that the application renews keeps its age
		if prev.Status == policy.Valid && prev.ID == b.ID() {
			if p, _, ok := c.payloadFor(r, b.ID()); ok {
				born = p.issued()
			}
		}
		c.bind(resp, b, born, life, c.secure(r), path)
	case prev.Status == policy.Valid && prev.ID == b.ID():
		if prev.Refresh {
			a.resign(r, resp, b)
		}
	case a.inRequest(r):
		a.takeOver(r, resp, b, prev)
	}
}

// appCookie reports whether h sets the application cookie and, if it
// does, the lifetime its last Set-Cookie line gives it, in seconds (over
// 0, that many; 0, the browser session; under 0, it is deleted) and the
// path for the balancer's cookie.
func (a *App) appCookie(h http.Header) (life int64, path string, set bool) {
	var last string
	for _, line := range h["Set-Cookie"] {
		name, _, ok := strings.Cut(line, "=")
		if ok && textproto.TrimString(name) == a.app {
			last, set = line, true
		}
	}
	if !set {
		return 0, "", false
	}
	// Only the attributes matter. Parse them under a stand-in name and
	// value: the application's value is its own business and may hold
	// bytes a browser takes but net/http refuses.
	attrs := ""
	if i := strings.IndexByte(last, ';'); i >= 0 {
		attrs = last[i:]
	}
	cfg := &a.cookie.cfg
	path = cfg.path
	c, err := http.ParseSetCookie("v=v" + attrs)
	if err != nil {
		return 0, path, true // unreachable with the stand-in; a session cookie
	}
	if !cfg.pathSet {
		path = c.Path
		if cookies.ValidPath(path) != nil {
			path = "" // the browser takes the default path, for both cookies
		}
	}
	limit := int64(maxTTL / time.Second)
	switch {
	case c.MaxAge > 0:
		return min(int64(c.MaxAge), limit), path, true
	case c.MaxAge < 0:
		return -1, path, true
	case c.Expires.IsZero():
		return 0, path, true
	}
	d := c.Expires.Sub(cfg.now())
	if d <= 0 {
		return -1, path, true
	}
	return min(max(int64(d/time.Second), 1), limit), path, true
}

// inRequest reports whether r carries the application cookie with a value.
// It allocates nothing.
func (a *App) inRequest(r *http.Request) bool {
	if r == nil {
		return false
	}
	cs := cookies.Iterate(r.Header, a.app)
	for {
		v, ok := cs.NextRaw()
		if !ok {
			return false
		}
		if v != "" && v != `""` {
			return true
		}
	}
}

// resign adds to resp the Set-Cookie lines binding the client to b until
// the request's cookie for b expires, signed with the first key, if the
// request had an authentic and unexpired cookie for b.
func (a *App) resign(r *http.Request, resp *http.Response, b *backend.Backend) {
	c := a.cookie
	p, now, ok := c.payloadFor(r, b.ID())
	if !ok {
		return
	}
	var ttl int64 // a session cookie stays one
	if exp := p.expires(); exp != 0 {
		ttl = exp - now // over 0: payloadFor checked it is unexpired
	}
	q := c.issue(b.ID(), b.Group(), p.issued(), uint32(p.expires()))
	c.set(resp, &q, ttl, c.secure(r), c.cfg.path)
}

// takeOver adds to resp the Set-Cookie lines binding to b a client whose
// request carries the application's cookie but no valid binding to b,
// prev being what Lookup found: expiring when the request's binding did if
// that was authentic and unexpired, else for the browser session.
func (a *App) takeOver(r *http.Request, resp *http.Response, b *backend.Backend, prev policy.Binding) {
	c := a.cookie
	var (
		exp    uint32
		maxAge int64
		now    int64
		found  bool
	)
	if prev.Status == policy.Valid || prev.Status == policy.Unknown {
		// Valid names another backend here; Unknown has no ID, and
		// payloadFor then returns the first authentic, unexpired cookie,
		// the one Lookup found Unknown.
		var p payload
		if p, now, found = c.payloadFor(r, prev.ID); found && p.expires() != 0 {
			exp, maxAge = uint32(p.expires()), p.expires()-now
		}
	}
	if !found {
		now = c.cfg.now().Unix()
	}
	q := c.issue(b.ID(), b.Group(), now, exp)
	c.set(resp, &q, maxAge, c.secure(r), c.cfg.path)
}
