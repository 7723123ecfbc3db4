package gateway

import (
	"errors"
	"fmt"
	"time"

	"github.com/affinitylb/affinity/cookie"
	"github.com/affinitylb/affinity/internal/cookies"
	"github.com/affinitylb/affinity/policy"
)

// PersistenceType says how a session's binding travels, as the Gateway
// API's SessionPersistenceType does.
type PersistenceType string

const (
	// Cookie binds with a cookie the balancer sets, for browsers and other
	// clients that keep cookies. It is the default.
	Cookie PersistenceType = "Cookie"
	// Header binds with a response header the client sends back on its
	// requests, for clients that keep no cookies.
	Header PersistenceType = "Header"
)

// LifetimeType says how long a browser keeps the cookie, as the Gateway
// API's CookieLifetimeType does.
type LifetimeType string

const (
	// Session makes a session cookie, without Expires or Max-Age, which
	// the browser drops when its session ends. It is the default.
	Session LifetimeType = "Session"
	// Permanent makes a cookie with a Max-Age, kept across browser
	// sessions until it expires.
	Permanent LifetimeType = "Permanent"
)

// CookieConfig holds what applies to the Cookie type only, as the Gateway
// API's CookieConfig does.
type CookieConfig struct {
	// LifetimeType is the cookie's lifetime; empty means Session.
	LifetimeType LifetimeType
}

// DefaultSessionName is the cookie's or the header's name when
// SessionPersistence.SessionName is empty.
const DefaultSessionName = "affinity"

// maxSessionName is the longest SessionName the Gateway API allows.
const maxSessionName = 128

// maxAge is the longest Max-Age a browser keeps (RFC 6265bis).
const maxAge = 400 * 24 * time.Hour

// SessionPersistence is the Gateway API's session persistence
// configuration (GEP-1619), with the route rule's path. The zero value is
// valid: a session cookie named DefaultSessionName on path "/".
type SessionPersistence struct {
	// SessionName is the cookie's or the header's name, an HTTP token of
	// at most 128 bytes; empty means DefaultSessionName. Route rules with
	// different names keep independent sessions.
	SessionName string
	// AbsoluteTimeout, if not 0, is how long a binding lasts from when it
	// was made, however active the client. It is required for a Permanent
	// cookie, whose Max-Age it is.
	AbsoluteTimeout time.Duration
	// IdleTimeout, if not 0, is how long a binding lasts after the
	// client's last request that refreshed it: the binding is refreshed
	// once at most half of it is left. It cannot exceed AbsoluteTimeout,
	// and a Session cookie does not support it.
	IdleTimeout time.Duration
	// Type is how the binding travels; empty means Cookie.
	Type PersistenceType
	// CookieConfig configures the Cookie type; nil means a Session
	// cookie. It must be nil for the Header type.
	CookieConfig *CookieConfig
	// Path is the cookie's Path: the path the route rule matches, which
	// GEP-1619 scopes the cookie to; empty means "/". It is not a field of
	// the Gateway API's type, and must be empty for the Header type.
	Path string
}

// NewPolicy returns the policy that implements sp, signing with keys[0]
// and accepting values signed with any of keys (see [cookie.New]): a
// *[cookie.Policy] for the Cookie type, a *[cookie.Header] for the Header
// type. Both implement [policy.Stripper]. See the package documentation
// for how the fields map onto the policy.
//
// NewPolicy checks every field and the keys, and returns an error listing
// all that are invalid, each naming the field and its value.
func NewPolicy(sp SessionPersistence, keys [][]byte) (policy.Policy, error) {
	opts, errs := sp.options()
	name := sp.SessionName
	if name == "" {
		name = DefaultSessionName
	}
	if len(errs) > 0 {
		// Report the keys' errors too, once, without the options'.
		if _, err := cookie.New(keys); err != nil {
			errs = append(errs, err)
		}
		return nil, errors.Join(errs...)
	}
	if sp.Type == Header {
		return cookie.NewHeader(name, keys, opts...)
	}
	return cookie.New(keys, append(opts, cookie.WithName(name))...)
}

// options returns the cookie options that implement sp, but for the name,
// and an error for each invalid field.
func (sp *SessionPersistence) options() ([]cookie.Option, []error) {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("gateway: "+format, args...))
	}
	if sp.SessionName != "" {
		if err := cookies.ValidToken(sp.SessionName); err != nil {
			bad("SessionName(%q): %v", sp.SessionName, err)
		} else if len(sp.SessionName) > maxSessionName {
			bad("SessionName(%q): %d bytes; at most %d", sp.SessionName, len(sp.SessionName), maxSessionName)
		}
	}
	abs, idle := sp.AbsoluteTimeout, sp.IdleTimeout
	checkTimeout := func(field string, d time.Duration) {
		switch {
		case d < 0:
			bad("%s(%v): negative; use 0 for none", field, d)
		case d > 0 && d < time.Second:
			bad("%s(%v): under a second; use 0 for none", field, d)
		case d%time.Second != 0:
			bad("%s(%v): not a whole number of seconds", field, d)
		}
	}
	checkTimeout("AbsoluteTimeout", abs)
	checkTimeout("IdleTimeout", idle)
	if idle > maxAge {
		bad("IdleTimeout(%v): over 400 days, the most a browser keeps a cookie", idle)
	}
	if abs > 0 && idle > abs {
		bad("IdleTimeout(%v): longer than AbsoluteTimeout(%v)", idle, abs)
	}

	lifetime := Session
	switch sp.Type {
	case "", Cookie:
		if sp.CookieConfig != nil && sp.CookieConfig.LifetimeType != "" {
			lifetime = sp.CookieConfig.LifetimeType
		}
		if sp.Path != "" {
			if err := cookies.ValidPath(sp.Path); err != nil {
				bad("Path(%q): %v", sp.Path, err)
			}
		}
	case Header:
		if sp.CookieConfig != nil {
			bad("CookieConfig(%+v): applies to Type Cookie only, not Header", *sp.CookieConfig)
		}
		if sp.Path != "" {
			bad("Path(%q): applies to Type Cookie only, not Header", sp.Path)
		}
	default:
		bad("Type(%q): want Cookie or Header", sp.Type)
	}

	var opts []cookie.Option
	if sp.Path != "" && sp.Type != Header {
		opts = append(opts, cookie.WithPath(sp.Path))
	}
	if abs > 0 {
		opts = append(opts, cookie.WithMaxLife(abs))
	}
	switch {
	case sp.Type == Header:
		// The value's signed expiry slides with activity, if there is one.
		opts = append(opts, cookie.WithTTL(idle))
	case lifetime == Session:
		if idle > 0 {
			bad("IdleTimeout(%v) with LifetimeType Session: a session cookie carries no expiry to slide; use Permanent", idle)
		}
		opts = append(opts, cookie.WithTTL(0))
	case lifetime == Permanent:
		switch {
		case abs == 0:
			bad("LifetimeType Permanent without AbsoluteTimeout: a Permanent cookie's Max-Age is the AbsoluteTimeout")
		case idle > 0:
			opts = append(opts, cookie.WithTTL(idle))
		case abs > maxAge:
			bad("AbsoluteTimeout(%v): over 400 days, the most a browser keeps a Permanent cookie", abs)
		default:
			opts = append(opts, cookie.WithTTL(abs), cookie.WithSliding(false))
		}
	default:
		bad("CookieConfig.LifetimeType(%q): want Session or Permanent", lifetime)
	}
	return opts, errs
}
