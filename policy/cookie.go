package policy

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/affinitylb/affinity/backend"
)

// Cookie is a [Policy] that binds a client to a backend with a cookie of the
// balancer's own, signed with HMAC-SHA-256. The cookie names the backend by
// an opaque token and carries its own expiry; the balancer keeps no state
// per client, so replicas configured with the same keys and name accept
// each other's cookies. See the package documentation for the format.
//
// A Cookie is safe for concurrent use. It resolves tokens with an index of
// the last snapshot it was handed, built once per snapshot and computing
// tokens only for backends the previous index did not have; apart from
// that, Lookup takes no lock and allocates nothing.
type Cookie struct {
	cfg    cookieConfig
	signer *signer

	mu    sync.Mutex // serializes index rebuilds
	index atomic.Pointer[index]
}

var _ Policy = (*Cookie)(nil)

// NewCookie returns a Cookie signing with keys[0] and accepting cookies
// signed with any of keys, so keys can be rotated: put the new key first,
// keep the old ones until the cookies they signed have expired. It needs at
// least one key and every key must be at least 16 bytes of secret, random
// data; 32 is recommended. NewCookie derives what it needs from the keys
// and keeps no reference to them.
//
// It returns an error, naming the value at fault, for bad keys or an option
// out of range.
func NewCookie(keys [][]byte, opts ...CookieOption) (*Cookie, error) {
	cfg := defaultCookieConfig()
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg.ttl = cfg.ttl.Truncate(time.Second)
	s, err := newSigner(keys, cfg.name)
	if err != nil {
		return nil, err
	}
	return &Cookie{cfg: cfg, signer: s}, nil
}

// Name returns the cookie's name.
func (c *Cookie) Name() string { return c.cfg.name }

// Lookup returns the binding carried by r's cookie, resolved against s:
// Valid with the backend's ID, or None when r has no such cookie, or
// Malformed, Forged, Expired or Unknown (authentic, but naming no backend
// in s). Refresh is set when Save should re-issue the cookie: it was signed
// with a key other than the first, or sliding expiry is on and more than
// half its lifetime has passed.
//
// Lookup never panics, whatever the request carries, and allocates nothing
// unless s is a snapshot it has not seen, for which it builds an index.
func (c *Cookie) Lookup(r *http.Request, s *backend.Snapshot) Binding {
	v, ok := cookieValue(r.Header, c.cfg.name)
	if !ok {
		return Binding{Status: None}
	}
	p, ok := decodePayload(v)
	if !ok || p.version() != valueVersion {
		return Binding{Status: Malformed}
	}
	key, ok := c.signer.verify(&p)
	if !ok {
		return Binding{Status: Forged}
	}
	now := c.cfg.now().Unix()
	if exp := p.expires(); exp != 0 && now >= exp {
		return Binding{Status: Expired}
	}
	if s == nil {
		return Binding{Status: Unknown}
	}
	id, ok := c.indexFor(s).resolve(key, p.token())
	if !ok {
		return Binding{Status: Unknown}
	}
	return Binding{ID: id, Status: Valid, Refresh: key != 0 || c.slides(&p, now)}
}

// slides reports whether sliding expiry wants p re-issued at now: more than
// half its lifetime has passed.
func (c *Cookie) slides(p *payload, now int64) bool {
	return c.cfg.sliding && p.expires() != 0 && now-p.issued() > p.lifetime()/2
}

// Save binds the client to b by adding a Set-Cookie header to resp, unless
// the request already carried a cookie for b that needs no refresh (prev is
// Valid, names b and Refresh is false), in which case it does nothing. The
// new cookie is issued now, signed with the first key.
func (c *Cookie) Save(r *http.Request, resp *http.Response, b *backend.Backend, prev Binding) {
	if prev.Status == Valid && prev.ID == b.ID() && !prev.Refresh {
		return
	}
	if resp.Header == nil {
		resp.Header = make(http.Header)
	}
	resp.Header.Add("Set-Cookie", c.setCookie(b.ID(), c.secure(r)))
}

// Issue returns a cookie value binding its bearer to the backend with ID
// id: what Save would set now for that backend. It serves tests, and
// programs that hand out bindings themselves; any Cookie with the same name
// and a key in common accepts it.
func (c *Cookie) Issue(id string) string {
	p := c.issue(id)
	var buf [valueLen]byte
	return string(p.appendEncoded(buf[:0]))
}

// issue returns a signed payload for id, issued now.
func (c *Cookie) issue(id string) payload {
	now := c.cfg.now().Unix()
	var exp uint32
	if c.cfg.ttl > 0 {
		// Never 0, which would make it a session cookie, even with a
		// clock set before 1970.
		exp = max(timestamp(now+int64(c.cfg.ttl/time.Second)), 1)
	}
	p := newPayload(c.token(id), timestamp(now), exp)
	c.signer.sign(&p)
	return p
}

// token returns id's token under the first key, from the index when it
// has it: tokens depend on the key and the ID only.
func (c *Cookie) token(id string) uint64 {
	if ix := c.index.Load(); ix != nil {
		if toks, ok := ix.tokens[id]; ok {
			return toks[0]
		}
	}
	return c.signer.token(0, id)
}

// secure reports whether a cookie set in answer to r is Secure.
func (c *Cookie) secure(r *http.Request) bool {
	switch {
	case c.cfg.sameSite == http.SameSiteNoneMode, c.cfg.secure == SecureAlways:
		return true
	case c.cfg.secure == SecureNever:
		return false
	}
	return r != nil && r.TLS != nil
}

// setCookie returns the Set-Cookie header binding a client to id, with the
// attributes in the order [http.Cookie.String] writes them.
func (c *Cookie) setCookie(id string, secure bool) string {
	p := c.issue(id)
	buf := make([]byte, 0, 256)
	buf = append(buf, c.cfg.name...)
	buf = append(buf, '=')
	buf = p.appendEncoded(buf)
	buf = append(buf, "; Path="...)
	buf = append(buf, c.cfg.path...)
	if c.cfg.domain != "" {
		buf = append(buf, "; Domain="...)
		buf = append(buf, c.cfg.domain...)
	}
	if exp := p.expires(); exp != 0 {
		buf = append(buf, "; Expires="...)
		buf = time.Unix(exp, 0).UTC().AppendFormat(buf, http.TimeFormat)
		buf = append(buf, "; Max-Age="...)
		buf = strconv.AppendInt(buf, int64(c.cfg.ttl/time.Second), 10)
	}
	if c.cfg.httpOnly {
		buf = append(buf, "; HttpOnly"...)
	}
	if secure {
		buf = append(buf, "; Secure"...)
	}
	switch c.cfg.sameSite {
	case http.SameSiteLaxMode:
		buf = append(buf, "; SameSite=Lax"...)
	case http.SameSiteStrictMode:
		buf = append(buf, "; SameSite=Strict"...)
	case http.SameSiteNoneMode:
		buf = append(buf, "; SameSite=None"...)
	}
	return string(buf)
}
