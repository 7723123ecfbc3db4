package policy

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"time"
)

// maxTTL is the longest cookie lifetime accepted: browsers cap Max-Age at
// 400 days (RFC 6265bis), so a longer one would not be kept anyway.
const maxTTL = 400 * 24 * time.Hour

// SecureMode says when a [Cookie] carries the Secure attribute, which keeps
// browsers from sending it over plain HTTP.
type SecureMode int

const (
	// SecureAuto marks the cookie Secure when the client's request came
	// over TLS (its TLS field is set). Behind a proxy that terminates TLS,
	// use SecureAlways.
	SecureAuto SecureMode = iota
	// SecureAlways always marks the cookie Secure.
	SecureAlways
	// SecureNever never marks the cookie Secure. It cannot be combined with
	// SameSite=None, [WithPartitioned] or [WithCORSCookie], which browsers
	// only accept on Secure cookies.
	SecureNever
)

// CookieOption configures a [Cookie]. Options are validated by [NewCookie].
type CookieOption func(*cookieConfig)

type cookieConfig struct {
	name     string
	ttl      time.Duration
	path     string
	domain   string
	sameSite http.SameSite
	httpOnly bool
	secure   SecureMode
	sliding  bool
	maxLife  time.Duration
	now      func() time.Time

	partitioned bool // WithPartitioned
	cors        bool // WithCORSCookie

	// Whether WithTTL and WithSliding were given: an AppCookie refuses
	// them. Whether WithPath was: an AppCookie otherwise takes the path of
	// the application's cookie.
	ttlSet, slidingSet, pathSet bool
}

func defaultCookieConfig() cookieConfig {
	return cookieConfig{
		name:     "affinity",
		ttl:      15 * time.Minute,
		path:     "/",
		sameSite: http.SameSiteLaxMode,
		httpOnly: true,
		secure:   SecureAuto,
		sliding:  true,
		now:      time.Now,
	}
}

// WithName sets the cookie's name, "affinity" by default. It must be an
// RFC 6265 token: printable ASCII without spaces or separators.
func WithName(name string) CookieOption {
	return func(c *cookieConfig) { c.name = name }
}

// WithTTL sets how long a cookie binds its client, 15 minutes by default,
// counted from the client's last request: expiry slides (see
// [WithSliding]). Expiry is enforced twice: by the browser (Max-Age and
// Expires) and by [Cookie.Lookup], from the expiry signed into the value.
// The TTL is truncated to whole seconds; it must be at least one second and
// at most 400 days; a TTL of one second never slides. Zero makes a session
// cookie: no Max-Age or Expires, no expiry in the value, bound until the
// browser ends the session, which sliding does not change.
//
// WithTTL does not apply to an [AppCookie], whose cookie lives as long as
// the application's: [NewAppCookie] refuses it.
func WithTTL(d time.Duration) CookieOption {
	return func(c *cookieConfig) { c.ttl, c.ttlSet = d, true }
}

// WithPath sets the cookie's Path attribute, "/" by default. It must begin
// with '/' and hold printable ASCII other than ';'. An [AppCookie] without
// it takes the Path of the application's cookie; given, it is used
// whatever the application's says.
func WithPath(p string) CookieOption {
	return func(c *cookieConfig) { c.path, c.pathSet = p, true }
}

// WithDomain sets the cookie's Domain attribute, letting the cookie reach
// subdomains of d. By default there is none: the cookie goes back only to
// the host that set it. d must be a host name (letters, digits, '-', '_'
// and '.'); empty means none.
func WithDomain(d string) CookieOption {
	return func(c *cookieConfig) { c.domain = d }
}

// WithSameSite sets the cookie's SameSite attribute, [http.SameSiteLaxMode]
// by default. [http.SameSiteDefaultMode] omits it. [http.SameSiteNoneMode]
// makes the cookie Secure whatever [WithSecure] says, as browsers require.
func WithSameSite(s http.SameSite) CookieOption {
	return func(c *cookieConfig) { c.sameSite = s }
}

// WithHTTPOnly sets whether the cookie is HttpOnly, hidden from scripts in
// the page. It is by default.
func WithHTTPOnly(on bool) CookieOption {
	return func(c *cookieConfig) { c.httpOnly = on }
}

// WithSecure sets when the cookie is Secure, [SecureAuto] by default.
func WithSecure(m SecureMode) CookieOption {
	return func(c *cookieConfig) { c.secure = m }
}

// WithPartitioned sets whether the cookie is Partitioned (CHIPS): a
// browser that supports it keeps the cookie in a jar of its own for each
// top-level site the proxy's pages are embedded in, and sends it only
// there. It is off by default. A Partitioned cookie is Secure whatever
// [WithSecure] says, since browsers ignore Partitioned on other cookies;
// [SecureNever] with it is an error. Deletions carry the attribute too, so
// that they reach the partitioned cookie.
func WithPartitioned(on bool) CookieOption {
	return func(c *cookieConfig) { c.partitioned = on }
}

// WithCORSCookie sets whether the cookie has a CORS twin, as AWS ALB's
// AWSALBCORS: a second cookie, named the cookie's name followed by
// "-cors", with the same value and attributes but always SameSite=None and
// Secure, set and deleted with the cookie on every response that sets or
// deletes it. Browsers send it on cross-site requests that lack the
// cookie itself when that is SameSite=Lax or Strict, such as the form
// POST of a SAML or OpenID Connect (form_post) login returning from the
// identity provider, which then reaches the session's backend.
//
// The twin is read only from a request that carries no cookie of the
// cookie's own name; it is checked as the cookie is, and its value,
// signed for the cookie's name, binds no more than the cookie does. It is
// removed from requests as the cookie is ([Cookie.Strip]). What crosses
// sites is the binding only: a cross-site request reaches the backend a
// same-site one would, and the application's own cookies decide what it
// may do there. Being Secure,
// it is dropped by browsers over plain HTTP: the twin works over HTTPS
// only, and [SecureNever] with it is an error. It is off by default.
func WithCORSCookie(on bool) CookieOption {
	return func(c *cookieConfig) { c.cors = on }
}

// WithSliding sets whether expiry slides, as it does by default: the
// lifetime counts from the client's last request. A client bound by a
// cookie at most half of whose lifetime is left gets a new one, expiring a
// full TTL from now, on its next response ([Binding.Refresh] is set by
// Lookup), so a client active at least once per half TTL stays bound, up
// to the maximum life if [WithMaxLife] sets one; the refreshed cookie
// keeps the binding's age. Times are whole seconds: with a TTL of 2
// seconds, a client active at least once a second is refreshed in time; a
// TTL of 1 second cannot slide. WithSliding(false) makes the lifetime
// absolute: a binding ends a TTL after it was made, however active the
// client.
//
// WithSliding does not apply to an [AppCookie]: [NewAppCookie] refuses it.
func WithSliding(on bool) CookieOption {
	return func(c *cookieConfig) { c.sliding, c.slidingSet = on, true }
}

// WithMaxLife bounds how long a binding lasts, however often it is
// refreshed (HAProxy's maxlife): a cookie whose binding was made d ago or
// more is treated as expired, active client or not, and the client is
// placed afresh by the picker, which may choose the same backend.
// Long-lived sessions then give backends added by a scale-out their share.
// Refreshing a cookie (sliding expiry, re-signing with a new key) keeps the
// binding's age, and a [Cookie]'s refreshed cookie expires no later than
// the end of its max life, so the browser drops it then too. d is truncated
// to whole seconds; it must be at least a second and, with a TTL, no
// shorter than the TTL. 0, the default, sets no bound.
func WithMaxLife(d time.Duration) CookieOption {
	return func(c *cookieConfig) { c.maxLife = d }
}

// WithClock sets the clock cookies are issued and checked with, [time.Now]
// by default. It is meant for tests and simulations; it must be safe for
// concurrent use.
func WithClock(now func() time.Time) CookieOption {
	return func(c *cookieConfig) { c.now = now }
}

// validate reports the first problem with c, naming the bad value.
func (c *cookieConfig) validate() error {
	if err := validName(c.name); err != nil {
		return err
	}
	switch {
	case c.ttl < 0:
		return fmt.Errorf("policy: cookie TTL %v is negative; use 0 for a session cookie", c.ttl)
	case c.ttl > 0 && c.ttl < time.Second:
		return fmt.Errorf("policy: cookie TTL %v is under a second; use 0 for a session cookie", c.ttl)
	case c.ttl > maxTTL:
		return fmt.Errorf("policy: cookie TTL %v is over 400 days, the most browsers keep a cookie", c.ttl)
	}
	if c.maxLife < 0 || c.maxLife > 0 && c.maxLife < time.Second {
		return fmt.Errorf("policy: cookie max life %v: want 0 (none) or at least a second", c.maxLife)
	}
	if c.ttl > 0 && c.maxLife > 0 && c.maxLife.Truncate(time.Second) < c.ttl.Truncate(time.Second) {
		return fmt.Errorf("policy: cookie max life %v is shorter than its TTL %v: every binding would end before its cookie", c.maxLife, c.ttl)
	}
	if err := validPath(c.path); err != nil {
		return err
	}
	if err := validDomain(c.domain); err != nil {
		return err
	}
	switch c.sameSite {
	case http.SameSiteDefaultMode, http.SameSiteLaxMode, http.SameSiteStrictMode, http.SameSiteNoneMode:
	default:
		return fmt.Errorf("policy: invalid cookie SameSite mode %d", c.sameSite)
	}
	switch c.secure {
	case SecureAuto, SecureAlways:
	case SecureNever:
		switch {
		case c.sameSite == http.SameSiteNoneMode:
			return errors.New("policy: cookie SameSite=None requires Secure, but SecureNever was set")
		case c.partitioned:
			return errors.New("policy: a Partitioned cookie requires Secure, but SecureNever was set")
		case c.cors:
			return errors.New("policy: the CORS twin cookie is always Secure, but SecureNever was set: a site served over plain HTTP cannot keep it")
		}
	default:
		return fmt.Errorf("policy: invalid cookie SecureMode %d", c.secure)
	}
	if c.now == nil {
		return errors.New("policy: nil cookie clock")
	}
	return nil
}

// validName checks that name is an RFC 6265 cookie-name: an RFC 2616 token.
func validName(name string) error { return validToken("cookie name", name) }

// validToken checks that s, a what, is an HTTP token (RFC 9110): one or
// more printable ASCII characters other than spaces and separators. Cookie
// names (RFC 6265) and header names are tokens.
func validToken(what, s string) error {
	if s == "" {
		return fmt.Errorf("policy: empty %s", what)
	}
	for i := 0; i < len(s); i++ {
		if b := s[i]; b <= ' ' || b >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?={}`, b) >= 0 {
			return fmt.Errorf("policy: %s %q: character %q not allowed in a token", what, s, b)
		}
	}
	return nil
}

// validPath checks a Path attribute: '/' first, then printable ASCII
// without ';', which would end the attribute.
func validPath(p string) error {
	if !strings.HasPrefix(p, "/") {
		return fmt.Errorf("policy: cookie path %q does not begin with '/'", p)
	}
	for i := 0; i < len(p); i++ {
		if b := p[i]; b < ' ' || b >= 0x7f || b == ';' {
			return fmt.Errorf("policy: cookie path %q: character %q not allowed", p, b)
		}
	}
	return nil
}

// validDomain checks a Domain attribute: empty (none), or a host name
// whose labels, separated by dots, are 1 to 63 letters, digits, '-' and
// '_', not beginning or ending with '-', the last not all digits, 255
// bytes at most, with one optional leading dot (which browsers ignore); or
// an IP address, which a browser matches only to the host itself.
// Internationalized names must be given in their ASCII (punycode) form.
func validDomain(d string) error {
	if d == "" {
		return nil
	}
	for i := 0; i < len(d); i++ {
		b := d[i]
		if !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '-' || b == '_' || b == '.' || b == ':') {
			return fmt.Errorf("policy: cookie domain %q: character %q not allowed (use A-Z a-z 0-9 - _ .)", d, b)
		}
	}
	if _, err := netip.ParseAddr(d); err == nil {
		return nil
	}
	name := strings.TrimPrefix(d, ".")
	if len(name) > 255 {
		return fmt.Errorf("policy: cookie domain %q is over 255 bytes", d)
	}
	labels := strings.Split(name, ".")
	for _, l := range labels {
		switch {
		case l == "":
			return fmt.Errorf("policy: cookie domain %q has an empty label", d)
		case len(l) > 63:
			return fmt.Errorf("policy: cookie domain %q has a label over 63 bytes", d)
		case l[0] == '-' || l[len(l)-1] == '-':
			return fmt.Errorf("policy: cookie domain %q has a label beginning or ending with '-'", d)
		case strings.IndexByte(l, ':') >= 0:
			return fmt.Errorf("policy: cookie domain %q: character ':' not allowed (use A-Z a-z 0-9 - _ .)", d)
		}
	}
	if last := labels[len(labels)-1]; strings.Trim(last, "0123456789") == "" {
		return fmt.Errorf("policy: cookie domain %q is neither a host name (its last label is all digits) nor an IP address", d)
	}
	return nil
}
