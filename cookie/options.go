package cookie

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/affinitylb/affinity/internal/cookies"
)

// maxTTL is the longest cookie lifetime accepted: browsers cap Max-Age at
// 400 days (RFC 6265bis), so a longer one would not be kept anyway.
const maxTTL = 400 * 24 * time.Hour

// SecureMode says when a [Policy] carries the Secure attribute, which keeps
// browsers from sending it over plain HTTP.
type SecureMode int

const (
	// SecureAuto marks the cookie Secure when the client's request came
	// over TLS (its TLS field is set). Behind a proxy that terminates TLS,
	// name it to the sticky handler (sticky.WithTrustedProxies), which then
	// hands the policy a request that proxy's X-Forwarded-Proto says came
	// over HTTPS as one with its TLS field set; or use SecureAlways.
	SecureAuto SecureMode = iota
	// SecureAlways always marks the cookie Secure.
	SecureAlways
	// SecureNever never marks the cookie Secure. It cannot be combined with
	// SameSite=None, [WithPartitioned] or [WithCORS], which browsers
	// only accept on Secure cookies.
	SecureNever
)

// String returns the mode's name, "SecureAuto" for instance, or
// "SecureMode(n)" for a value that is none of the constants.
func (m SecureMode) String() string {
	switch m {
	case SecureAuto:
		return "SecureAuto"
	case SecureAlways:
		return "SecureAlways"
	case SecureNever:
		return "SecureNever"
	}
	return "SecureMode(" + strconv.Itoa(int(m)) + ")"
}

// Option configures a [Policy], an [App] or a [Header]. An option only
// records its value: [New], [NewApp] and [NewHeader] check every value
// recorded and return an error naming each invalid one, with its option.
type Option func(*options)

// options is what the options record, over the defaults of
// defaultOptions.
type options struct {
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
	cors        bool // WithCORS

	// Whether WithTTL and WithSliding were given: an App refuses
	// them. Whether WithPath was: an App otherwise takes the path of
	// the application's cookie.
	ttlSet, slidingSet, pathSet bool

	// attrs records which options that shape only the cookie itself
	// were given: a Header, which sets no cookie, refuses them.
	attrs attrSet
}

// attrSet is a set of the options that shape only a cookie, one bit each.
type attrSet uint8

const (
	attrName attrSet = 1 << iota
	attrPath
	attrDomain
	attrSameSite
	attrHTTPOnly
	attrSecure
	attrPartitioned
	attrCORS
)

// defaultOptions returns the options a Policy has when given none.
func defaultOptions() options {
	return options{
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
func WithName(name string) Option {
	return func(o *options) { o.name = name; o.attrs |= attrName }
}

// WithTTL sets how long a cookie binds its client, 15 minutes by default,
// counted from the client's last request: expiry slides (see
// [WithSliding]). Expiry is enforced twice: by the browser (Max-Age and
// Expires) and by [Policy.Lookup], from the expiry signed into the value.
// The TTL is truncated to whole seconds; it must be at least one second and
// at most 400 days; a TTL of one second never slides. Zero makes a session
// cookie: no Max-Age or Expires, no expiry in the value, bound until the
// browser ends the session, which sliding does not change.
//
// WithTTL does not apply to an [App], whose cookie lives as long as
// the application's: [NewApp] refuses it.
func WithTTL(d time.Duration) Option {
	return func(o *options) { o.ttl, o.ttlSet = d, true }
}

// WithPath sets the cookie's Path attribute, "/" by default. It must begin
// with '/' and hold printable ASCII other than ';'. An [App] without
// it takes the Path of the application's cookie; given, it is used
// whatever the application's says.
func WithPath(p string) Option {
	return func(o *options) { o.path, o.pathSet = p, true; o.attrs |= attrPath }
}

// WithDomain sets the cookie's Domain attribute, letting the cookie reach
// subdomains of d. By default there is none: the cookie goes back only to
// the host that set it. d must be a host name (letters, digits, '-', '_'
// and '.'); empty means none.
func WithDomain(d string) Option {
	return func(o *options) { o.domain = d; o.attrs |= attrDomain }
}

// WithSameSite sets the cookie's SameSite attribute, [http.SameSiteLaxMode]
// by default. [http.SameSiteDefaultMode] omits it. [http.SameSiteNoneMode]
// makes the cookie Secure whatever [WithSecure] says, as browsers require.
func WithSameSite(s http.SameSite) Option {
	return func(o *options) { o.sameSite = s; o.attrs |= attrSameSite }
}

// WithHTTPOnly sets whether the cookie is HttpOnly, hidden from scripts in
// the page. It is by default.
func WithHTTPOnly(on bool) Option {
	return func(o *options) { o.httpOnly = on; o.attrs |= attrHTTPOnly }
}

// WithSecure sets when the cookie is Secure, [SecureAuto] by default.
func WithSecure(m SecureMode) Option {
	return func(o *options) { o.secure = m; o.attrs |= attrSecure }
}

// WithPartitioned sets whether the cookie is Partitioned (CHIPS): a
// browser that supports it keeps the cookie in a jar of its own for each
// top-level site the proxy's pages are embedded in, and sends it only
// there. It is off by default. A Partitioned cookie is Secure whatever
// [WithSecure] says, since browsers ignore Partitioned on other cookies;
// [SecureNever] with it is an error. Deletions carry the attribute too, so
// that they reach the partitioned cookie.
func WithPartitioned(on bool) Option {
	return func(o *options) { o.partitioned = on; o.attrs |= attrPartitioned }
}

// WithCORS sets whether the cookie has a CORS twin, as AWS ALB's
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
// removed from requests as the cookie is ([Policy.Strip]). What crosses
// sites is the binding only: a cross-site request reaches the backend a
// same-site one would, and the application's own cookies decide what it
// may do there. Being Secure,
// it is dropped by browsers over plain HTTP: the twin works over HTTPS
// only, and [SecureNever] with it is an error. It is off by default.
func WithCORS(on bool) Option {
	return func(o *options) { o.cors = on; o.attrs |= attrCORS }
}

// WithSliding sets whether expiry slides, as it does by default: the
// lifetime counts from the client's last request. A client bound by a
// cookie at most half of whose lifetime is left gets a new one, expiring a
// full TTL from now, on its next response (Lookup sets
// [policy.Binding.Refresh]), so a client active at least once per half TTL stays bound, up
// to the maximum life if [WithMaxLife] sets one; the refreshed cookie
// keeps the binding's age. Times are whole seconds: with a TTL of 2
// seconds, a client active at least once a second is refreshed in time; a
// TTL of 1 second cannot slide. WithSliding(false) makes the lifetime
// absolute: a binding ends a TTL after it was made, however active the
// client.
//
// WithSliding does not apply to an [App]: [NewApp] refuses it.
func WithSliding(on bool) Option {
	return func(o *options) { o.sliding, o.slidingSet = on, true }
}

// WithMaxLife bounds how long a binding lasts, however often it is
// refreshed (HAProxy's maxlife): a cookie whose binding was made d ago or
// more is treated as expired, active client or not, and the client is
// placed afresh by the picker, which may choose the same backend.
// Long-lived sessions then give backends added by a scale-out their share.
// Refreshing a cookie (sliding expiry, re-signing with a new key) keeps the
// binding's age, and a [Policy]'s refreshed cookie expires no later than
// the end of its max life, so the browser drops it then too. d is truncated
// to whole seconds; it must be at least a second and, with a TTL, no
// shorter than the TTL. 0, the default, sets no bound.
func WithMaxLife(d time.Duration) Option {
	return func(o *options) { o.maxLife = d }
}

// WithClock sets the clock cookies are issued and checked with, [time.Now]
// by default. It is meant for tests and simulations; it must be safe for
// concurrent use.
func WithClock(now func() time.Time) Option {
	return func(o *options) { o.now = now }
}

// check returns an error for every invalid value o records, each naming
// the option and the value, in the order of the options' declarations.
func (o *options) check() []error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("cookie: "+format, args...))
	}
	if err := cookies.ValidToken(o.name); err != nil {
		bad("WithName(%q): %v", o.name, err)
	}
	switch {
	case o.ttl < 0:
		bad("WithTTL(%v): negative; use 0 for a session cookie", o.ttl)
	case o.ttl > 0 && o.ttl < time.Second:
		bad("WithTTL(%v): under a second; use 0 for a session cookie", o.ttl)
	case o.ttl > maxTTL:
		bad("WithTTL(%v): over 400 days, the most browsers keep a cookie", o.ttl)
	}
	switch {
	case o.maxLife < 0 || o.maxLife > 0 && o.maxLife < time.Second:
		bad("WithMaxLife(%v): want 0 (none) or at least a second", o.maxLife)
	case o.ttl > 0 && o.maxLife > 0 && o.maxLife.Truncate(time.Second) < o.ttl.Truncate(time.Second):
		bad("WithMaxLife(%v): shorter than the TTL %v: every binding would end before its cookie", o.maxLife, o.ttl)
	}
	if err := cookies.ValidPath(o.path); err != nil {
		bad("WithPath(%q): %v", o.path, err)
	}
	if err := validDomain(o.domain); err != nil {
		bad("WithDomain(%q): %v", o.domain, err)
	}
	switch o.sameSite {
	case http.SameSiteDefaultMode, http.SameSiteLaxMode, http.SameSiteStrictMode, http.SameSiteNoneMode:
	default:
		bad("WithSameSite(%d): not a SameSite mode", o.sameSite)
	}
	switch o.secure {
	case SecureAuto, SecureAlways:
	case SecureNever:
		if o.sameSite == http.SameSiteNoneMode {
			bad("WithSecure(SecureNever) with WithSameSite(http.SameSiteNoneMode): SameSite=None requires Secure")
		}
		if o.partitioned {
			bad("WithSecure(SecureNever) with WithPartitioned(true): a Partitioned cookie requires Secure")
		}
		if o.cors {
			bad("WithSecure(SecureNever) with WithCORS(true): the CORS twin cookie is always Secure: a site served over plain HTTP cannot keep it")
		}
	default:
		bad("WithSecure(%v): not a SecureMode", o.secure)
	}
	if o.now == nil {
		bad("WithClock(nil): a clock is needed")
	}
	return errs
}

// validDomain checks a Domain attribute: empty (none), or a host name
// whose labels, separated by dots, are 1 to 63 letters, digits, '-' and
// '_', not beginning or ending with '-', the last not all digits, 255
// bytes at most, with one optional leading dot (which browsers ignore); or
// an IP address, which a browser matches only to the host itself.
// Internationalized names must be given in their ASCII (punycode) form.
// The error says what is wrong, not with what: callers name d.
func validDomain(d string) error {
	if d == "" {
		return nil
	}
	for i := 0; i < len(d); i++ {
		b := d[i]
		if !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '-' || b == '_' || b == '.' || b == ':') {
			return fmt.Errorf("character %q not allowed (use A-Z a-z 0-9 - _ .)", b)
		}
	}
	if _, err := netip.ParseAddr(d); err == nil {
		return nil
	}
	name := strings.TrimPrefix(d, ".")
	if len(name) > 255 {
		return errors.New("over 255 bytes")
	}
	labels := strings.Split(name, ".")
	for _, l := range labels {
		switch {
		case l == "":
			return errors.New("has an empty label")
		case len(l) > 63:
			return errors.New("has a label over 63 bytes")
		case l[0] == '-' || l[len(l)-1] == '-':
			return errors.New("has a label beginning or ending with '-'")
		case strings.IndexByte(l, ':') >= 0:
			return errors.New("character ':' not allowed (use A-Z a-z 0-9 - _ .)")
		}
	}
	if last := labels[len(labels)-1]; strings.Trim(last, "0123456789") == "" {
		return errors.New("neither a host name (its last label is all digits) nor an IP address")
	}
	return nil
}
