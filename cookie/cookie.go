package cookie

import (
	"errors"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/internal/cookies"
	"github.com/affinitylb/affinity/policy"
)

// Policy is a [policy.Policy] that binds a client to a backend with a
// cookie of the balancer's own, signed with AES-CMAC. The cookie names the
// backend by an opaque token and carries its own expiry; the balancer
// keeps no state per client, so replicas configured with the same keys and
// name accept each other's cookies. See the package documentation for the
// format.
//
// By default a binding lasts 15 minutes from the client's last request: a
// client's cookie is re-issued once at most half of its lifetime is left
// ([WithTTL], [WithSliding]), so a client active that often stays bound,
// for at most the maximum life if one is set ([WithMaxLife]).
//
// A Policy is safe for concurrent use. It resolves tokens with an index of
// the last snapshot it was handed, built once per snapshot and computing
// tokens only for backends the previous index did not have; apart from
// that, Lookup takes no lock and allocates nothing.
type Policy struct {
	cfg    options
	signer *signer
	twin   string // the CORS twin's name; "" without WithCORS

	mu    sync.Mutex // serializes index rebuilds
	index atomic.Pointer[index]
}

var (
	_ policy.Policy   = (*Policy)(nil)
	_ policy.Stripper = (*Policy)(nil)
)

// New returns a Policy signing with keys[0] and accepting cookies signed
// with any of keys, so keys can be rotated: put the new key first, keep
// the old ones until the cookies they signed have expired. Replicas that
// are updated one at a time add the new key after the old one first (see
// the package documentation). It needs at least one key and every key
// must be at least 16 bytes of secret, random data; 32 is recommended. New derives what it needs from the keys and
// keeps no reference to them.
//
// New checks the keys and every option's value, and returns an error
// listing all that are invalid, each naming the key or the option and its
// value.
func New(keys [][]byte, opts ...Option) (*Policy, error) {
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	return newPolicy(keys, o, nil)
}

// newPolicy returns a Policy configured by o, signing with keys, after
// checking both. errs are the errors the caller found already: with any,
// or any found here, it returns them all, joined.
func newPolicy(keys [][]byte, o options, errs []error) (*Policy, error) {
	errs = append(errs, o.check()...)
	errs = append(errs, checkKeys(keys)...)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	o.ttl = o.ttl.Truncate(time.Second)
	s, err := newSigner(keys, o.name)
	if err != nil {
		return nil, err
	}
	c := &Policy{cfg: o, signer: s}
	if o.cors {
		c.twin = o.name + corsSuffix
	}
	return c, nil
}

// hasNext reports whether cs has a cookie left, moving it past the cookie.
func hasNext(cs *cookies.Iter) bool {
	_, ok := cs.NextRaw()
	return ok
}

// corsSuffix ends the name of the CORS twin of a cookie ([WithCORS]).
const corsSuffix = "-cors"

// cookiesOf returns an iterator over the request header h's binding
// cookies: those of the cookie's name or, if h has none and the cookie has
// a CORS twin, the twin's.
func (c *Policy) cookiesOf(h http.Header) cookies.Iter {
	cs := cookies.Iterate(h, c.cfg.name)
	if c.twin != "" {
		if probe := cs; !hasNext(&probe) {
			return cookies.Iterate(h, c.twin)
		}
	}
	return cs
}

// Name returns the cookie's name.
func (c *Policy) Name() string { return c.cfg.name }

// Strip removes the cookie, and its CORS twin if it has one, from the
// Cookie header h, so that they are not forwarded to the backend. It
// implements [policy.Stripper].
func (c *Policy) Strip(h http.Header) {
	cookies.Strip(h, c.cfg.name)
	if c.twin != "" {
		cookies.Strip(h, c.twin)
	}
}

// Lookup returns the binding carried by r's cookie, resolved against s:
// Valid with the backend's ID, or None when r has no such cookie, or
// Malformed, Forged, Expired (past its expiry or its maximum life) or
// Unknown (authentic, but naming no backend in s). Refresh is set when Save
// should re-issue the cookie: it was signed with a key other than the first,
// or sliding expiry is on and at most half its lifetime is left.
//
// A request may carry several cookies of the name, as a browser sends them
// when they were set with different paths or domains, the most specific
// path first. The first Valid one whose backend serves its clients
// ([backend.Snapshot.KeepsBound]) wins: a client re-bound elsewhere while its
// backend was down, at another path, is not sent back to it. Failing that,
// the first Valid one wins; failing that, an Unknown one (its backend
// left), or else the status of the first, so that observers see why the
// binding was refused. The others are read only when the first is not
// Valid or its backend does not serve.
//
// With [WithCORS], a request that carries no cookie of the name is
// read for the twin's, in the same way; a twin is never read beside a
// cookie of the name, valid or not.
//
// Lookup never panics, whatever the request carries, and allocates nothing
// unless s is a snapshot it has not seen, for which it builds an index.
func (c *Policy) Lookup(r *http.Request, s *backend.Snapshot) policy.Binding {
	var ix *index
	if s != nil {
		// Even for a request without a cookie: Save, binding it, then
		// finds its backend's token here instead of computing an HMAC.
		ix = c.indexFor(s)
	}
	cs := cookies.Iterate(r.Header, c.cfg.name)
	v, ok := cs.Next()
	if !ok && c.twin != "" {
		cs = cookies.Iterate(r.Header, c.twin)
		v, ok = cs.Next()
	}
	if !ok {
		return policy.Binding{Status: policy.None}
	}
	var p payload
	b := c.check(&p, v, ix)
	if b.Status == policy.Valid && serves(s, b.ID) {
		return b // the usual case: the others are not even looked for
	}
	return c.lookupRest(&cs, s, ix, &p, b)
}

// lookupRest is Lookup's general case, for a request whose first cookie
// gave first, refused or naming a backend that does not serve: it returns
// the binding of the first cookie among those cs has left that is valid
// and names a backend that serves; else the first valid one; else an
// Unknown one, authentic but naming a backend gone, if there is one; else
// first. It decodes them into p.
func (c *Policy) lookupRest(cs *cookies.Iter, s *backend.Snapshot, ix *index, p *payload, first policy.Binding) policy.Binding {
	found := first
	for {
		v, ok := cs.Next()
		if !ok {
			return found
		}
		b := c.check(p, v, ix)
		switch {
		case b.Status != policy.Valid:
			if b.Status == policy.Unknown && found.Status != policy.Valid {
				found = b
			}
		case serves(s, b.ID):
			return b
		case found.Status != policy.Valid:
			found = b
		}
	}
}

// serves reports whether the backend with ID id is a member of s that
// serves its clients.
func serves(s *backend.Snapshot, id string) bool {
	b := s.Lookup(id)
	return b != nil && s.KeepsBound(b)
}

// check returns the binding the cookie value v carries, resolved with ix,
// decoding v into p.
//
// An authentic binding (Valid, Unknown or Expired) names the group the
// cookie carries, if ix knows it. A Valid one asks for a refresh, besides
// the reasons Lookup documents, when its backend is now in another group.
func (c *Policy) check(p *payload, v string, ix *index) policy.Binding {
	key, now, st := c.parse(p, v)
	switch st {
	case policy.Valid:
	case policy.Expired:
		return policy.Binding{Status: st, Group: ix.group(key, p)}
	default:
		return policy.Binding{Status: st}
	}
	seed := uint64(p.issued()) // the same in every value a binding is refreshed to
	if ix == nil {
		return policy.Binding{Status: policy.Unknown, Seed: seed}
	}
	group := ix.group(key, p)
	e, ok := ix.resolve(key, p.token())
	if !ok {
		return policy.Binding{Status: policy.Unknown, Group: group, Seed: seed}
	}
	if c.aged(p, now) {
		return policy.Binding{Status: policy.Expired, Group: group}
	}
	return policy.Binding{ID: e.id, Status: policy.Valid, Group: group, Seed: seed,
		Refresh: key != 0 || e.group != group || c.cfg.sliding && c.slides(p, now)}
}

// parse decodes the cookie value v into p and returns the index of the key
// that signed it and the time it was checked against (read only once the
// cookie proved authentic). The status is Valid if the payload is
// authentic and unexpired, its token still to be resolved; otherwise
// Malformed, Forged or Expired.
func (c *Policy) parse(p *payload, v string) (key int, now int64, st policy.Status) {
	if !decodePayload(p, v) || !p.known(v) {
		return 0, 0, policy.Malformed
	}
	key, ok := c.signer.verify(p)
	if !ok {
		return 0, 0, policy.Forged
	}
	now = c.cfg.now().Unix() // only for a cookie worth the clock read
	if exp := p.expires(); exp != 0 && now >= exp {
		return 0, now, policy.Expired
	}
	return key, now, policy.Valid
}

// payloadFor returns the payload of the first of r's cookies that is
// authentic and unexpired and, unless id is empty, names the backend with
// ID id and has not outlived the maximum life: the cookie Lookup found
// Valid for id, or, with id empty, the one it found Unknown. It also
// returns the time the cookie was checked against, and false if there is
// no such cookie.
func (c *Policy) payloadFor(r *http.Request, id string) (p payload, now int64, ok bool) {
	if r == nil {
		return p, 0, false
	}
	cs := c.cookiesOf(r.Header)
	for {
		v, more := cs.Next()
		if !more {
			return payload{}, 0, false
		}
		if at, ok := c.binds(&p, v, id); ok {
			return p, at, true
		}
	}
}

// binds decodes the value v into p and reports whether it is authentic
// and unexpired and, unless id is empty, names the backend with ID id and
// has not outlived the maximum life. It also returns the time v was
// checked against.
func (c *Policy) binds(p *payload, v, id string) (now int64, ok bool) {
	key, now, st := c.parse(p, v)
	if st != policy.Valid {
		return now, false
	}
	return now, id == "" || p.token() == c.tokenOf(key, id) && !c.aged(p, now)
}

// slides reports whether sliding expiry, which the caller checked is on,
// wants p re-issued at now: at most half a TTL is left of it, and a new
// cookie would expire later. Times are whole seconds, now rounded down, so
// the test errs towards refreshing and, with a TTL of at least two
// seconds, a client active at least once a second is always refreshed
// before its cookie expires.
func (c *Policy) slides(p *payload, now int64) bool {
	ttl, exp := c.ttlSeconds(), p.expires()
	if ttl == 0 || exp == 0 || 2*(exp-now) > ttl {
		return false
	}
	next, _ := c.lifetime(p.issued(), now)
	return int64(next) > exp // not already capped at the maximum life
}

// aged reports whether p's binding is older than the maximum life.
func (c *Policy) aged(p *payload, now int64) bool {
	life := c.maxLifeSeconds()
	return life > 0 && now-p.issued() >= life
}

// Save binds the client to b by adding a Set-Cookie header to resp, unless
// the request already carried a cookie for b that needs no refresh (prev is
// Valid, names b and Refresh is false), in which case it does nothing. The
// new cookie expires a TTL from now, or at the end of the binding's maximum
// life if that comes first, and is signed with the first key; when it
// refreshes the request's binding to b, it keeps the binding's age.
//
// With [WithCORS], Save adds the twin's line after the cookie's.
// Cookies binding new clients to one backend within the same second are
// identical; Save signs the first and hands the others the same lines.
func (c *Policy) Save(r *http.Request, resp *http.Response, b *backend.Backend, prev policy.Binding) {
	stays := prev.Status == policy.Valid && prev.ID == b.ID()
	if stays && !prev.Refresh {
		return // before reading the clock: most responses end here
	}
	now := c.cfg.now().Unix()
	born := now
	if stays {
		if p, _, ok := c.payloadFor(r, b.ID()); ok {
			born = p.issued()
		}
	}
	text, twin := c.line(b.ID(), b.Group(), born, now, c.secure(r))
	addSetCookie(resp, text)
	if twin != "" {
		addSetCookie(resp, twin)
	}
}

// line returns the Set-Cookie line binding a client to the backend with ID
// id in group, for a binding made at born and issued at now, and the CORS twin's,
// "" if the cookie has none. Lines for a new binding (born is now) are
// kept with the backend's tokens and reused for the rest of the second:
// they depend on nothing else that varies.
func (c *Policy) line(id, group string, born, now int64, secure bool) (text, twin string) {
	var kept *atomic.Pointer[issuedLine]
	if m := c.member(id); m != nil && m.group == group && born == now {
		kept = &m.lines[b2i(secure)]
		if l := kept.Load(); l != nil && l.at == now {
			return l.text, l.twin
		}
	}
	p, maxAge := c.value(id, group, born, now)
	text = c.header(&p, maxAge, secure, c.cfg.path)
	if c.twin != "" {
		twin = c.twinHeader(&p, maxAge, c.cfg.path)
	}
	if kept != nil {
		kept.Store(&issuedLine{at: now, text: text, twin: twin})
	}
	return text, twin
}

// b2i returns 1 for true and 0 for false.
func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Issue returns a cookie value binding its bearer to the backend with ID
// id in the default group: what Save would set now for that backend if
// it were in the default group. A value naming a backend now in a named
// group binds to it too, and its next response refreshes it with the
// group. It serves tests, and programs that hand out bindings themselves;
// any Policy or App with the same name and a key in common accepts it.
func (c *Policy) Issue(id string) string {
	now := c.cfg.now().Unix()
	p, _ := c.value(id, "", now, now)
	return p.encoded()
}

// value returns the signed payload binding a client to the backend with ID
// id in group, for a binding made at born and issued at now, expiring as
// lifetime says, and the Max-Age lifetime gives it.
func (c *Policy) value(id, group string, born, now int64) (p payload, maxAge int64) {
	exp, maxAge := c.lifetime(born, now)
	return c.issue(id, group, born, exp), maxAge
}

// ttlSeconds returns the configured lifetime in seconds, 0 for a session
// cookie.
func (c *Policy) ttlSeconds() int64 { return int64(c.cfg.ttl / time.Second) }

// maxLifeSeconds returns the configured maximum life in seconds, 0 for
// none.
func (c *Policy) maxLifeSeconds() int64 { return int64(c.cfg.maxLife / time.Second) }

// lifetime returns, in the payload's form, the expiry of a cookie issued
// at now for a binding made at born, and its Max-Age: a TTL, cut short so
// as not to outlast the binding's maximum life; 0 and 0 for a session
// cookie.
func (c *Policy) lifetime(born, now int64) (exp uint32, maxAge int64) {
	ttl := c.ttlSeconds()
	if ttl == 0 {
		return 0, 0
	}
	if life := c.maxLifeSeconds(); life > 0 {
		ttl = min(ttl, max(born+life-now, 1))
	}
	return expiry(now, ttl), ttl
}

// expiry returns, in the payload's form, the expiry of a cookie issued at
// now for ttl seconds: 0, a session cookie, when ttl is 0, and otherwise
// never 0, even with a clock set before 1970.
func expiry(now, ttl int64) uint32 {
	if ttl == 0 {
		return 0
	}
	return max(timestamp(now+ttl), 1)
}

// issue returns a payload naming id and group, for a binding made at born
// and expiring at exp, signed with the first key: of version 2 for the
// default group, of version 3 for a named one.
func (c *Policy) issue(id, group string, born int64, exp uint32) payload {
	p := newPayload(c.token(id), c.groupToken(group), timestamp(born), exp)
	c.signer.sign(&p)
	return p
}

// token returns id's token under the first key, from the index when it
// has it: tokens depend on the key and the ID only.
func (c *Policy) token(id string) uint64 { return c.tokenOf(0, id) }

// tokenOf returns id's token under key k, from the index when it has it.
func (c *Policy) tokenOf(k int, id string) uint64 {
	if m := c.member(id); m != nil {
		return m.tokens[k]
	}
	return c.signer.token(k, id)
}

// groupToken returns group's token under the first key, from the index
// when it has it; 0 for the default group.
func (c *Policy) groupToken(group string) uint64 {
	if group == "" {
		return 0
	}
	if ix := c.index.Load(); ix != nil {
		if ts, ok := ix.groups[group]; ok {
			return ts[0]
		}
	}
	return c.signer.groupToken(0, group)
}

// member returns what the last index built knows of the backend with ID
// id, or nil.
func (c *Policy) member(id string) *member {
	if ix := c.index.Load(); ix != nil {
		return ix.members[id]
	}
	return nil
}

// secure reports whether a cookie set in answer to r is Secure.
func (c *Policy) secure(r *http.Request) bool {
	switch {
	case c.cfg.sameSite == http.SameSiteNoneMode, c.cfg.partitioned, c.cfg.secure == SecureAlways:
		return true
	case c.cfg.secure == SecureNever:
		return false
	}
	return r != nil && r.TLS != nil
}

// bind adds to resp the Set-Cookie lines (see set) binding a client to b
// for ttl seconds from now, or for the browser session if ttl is 0, on
// path. The binding was made at born, or now if born is 0; with a maximum
// life, a ttl that would outlast it is cut short.
func (c *Policy) bind(resp *http.Response, b *backend.Backend, born, ttl int64, secure bool, path string) {
	now := c.cfg.now().Unix()
	if born == 0 {
		born = now
	}
	if life := c.maxLifeSeconds(); life > 0 && ttl > 0 {
		ttl = min(ttl, max(born+life-now, 1))
	}
	p := c.issue(b.ID(), b.Group(), born, expiry(now, ttl))
	c.set(resp, &p, ttl, secure, path)
}

// set adds to resp the Set-Cookie line for the cookie with value p, as
// header writes it, and, if the cookie has a CORS twin, the twin's.
func (c *Policy) set(resp *http.Response, p *payload, maxAge int64, secure bool, path string) {
	addSetCookie(resp, c.header(p, maxAge, secure, path))
	if c.twin != "" {
		addSetCookie(resp, c.twinHeader(p, maxAge, path))
	}
}

// header returns a Set-Cookie header for the cookie with value p, with the
// attributes in the order [http.Cookie.String] writes them. maxAge is read
// as [http.Cookie.MaxAge] is: over 0, the cookie lasts that many seconds
// and expires at p's expiry; 0, it is a session cookie; under 0, it is
// deleted, and p, which may be nil, is not written. The cookie's Path is
// path, or none if path is empty: the browser then scopes the cookie to
// the default path of the request's URL (RFC 6265, section 5.1.4).
func (c *Policy) header(p *payload, maxAge int64, secure bool, path string) string {
	return c.headerFor(c.cfg.name, p, maxAge, secure, c.cfg.sameSite, path)
}

// twinHeader returns the CORS twin's Set-Cookie header for the cookie with
// value p, as header does but under the twin's name, Secure and
// SameSite=None.
func (c *Policy) twinHeader(p *payload, maxAge int64, path string) string {
	return c.headerFor(c.twin, p, maxAge, true, http.SameSiteNoneMode, path)
}

// headerFor returns header's Set-Cookie header under the cookie name name
// and with the SameSite attribute sameSite.
func (c *Policy) headerFor(name string, p *payload, maxAge int64, secure bool, sameSite http.SameSite, path string) string {
	buf := make([]byte, 0, 256)
	buf = append(buf, name...)
	buf = append(buf, '=')
	if maxAge >= 0 {
		buf = p.appendEncoded(buf)
	}
	if path != "" {
		buf = append(buf, "; Path="...)
		buf = append(buf, path...)
	}
	if c.cfg.domain != "" {
		buf = append(buf, "; Domain="...)
		buf = append(buf, c.cfg.domain...)
	}
	switch {
	case maxAge > 0:
		buf = append(buf, "; Expires="...)
		buf = time.Unix(p.expires(), 0).UTC().AppendFormat(buf, http.TimeFormat)
		buf = append(buf, "; Max-Age="...)
		buf = strconv.AppendInt(buf, maxAge, 10)
	case maxAge < 0:
		buf = append(buf, "; Max-Age=0"...)
	}
	if c.cfg.httpOnly {
		buf = append(buf, "; HttpOnly"...)
	}
	if secure {
		buf = append(buf, "; Secure"...)
	}
	switch sameSite {
	case http.SameSiteLaxMode:
		buf = append(buf, "; SameSite=Lax"...)
	case http.SameSiteStrictMode:
		buf = append(buf, "; SameSite=Strict"...)
	case http.SameSiteNoneMode:
		buf = append(buf, "; SameSite=None"...)
	}
	if c.cfg.partitioned {
		buf = append(buf, "; Partitioned"...)
	}
	return string(buf)
}

// addSetCookie adds a Set-Cookie line to resp's header, creating it if
// need be. The key is written in its canonical form, as Header.Add would,
// without the cost of canonicalizing it.
func addSetCookie(resp *http.Response, line string) {
	if resp.Header == nil {
		resp.Header = make(http.Header)
	}
	resp.Header["Set-Cookie"] = append(resp.Header["Set-Cookie"], line)
}
