package cookie

import (
	"fmt"
	"net/http"
	"net/textproto"
	"strings"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/internal/cookies"
	"github.com/affinitylb/affinity/policy"
)

// Header is a [policy.Policy] for clients that keep no cookies, such as
// API clients that echo a session header the way MCP clients echo
// Mcp-Session-Id: the balancer issues its binding in a response header of
// the Header's name and reads it back from the request header of that
// name. The value is a [Policy]'s cookie value (see the package
// documentation): opaque, signed, carrying its own expiry and age, checked
// with the same keys, so replicas configured with the same name and keys
// accept each other's values.
//
// A client must send back, on each request, the value of the last
// response that carried the header: Save writes it only when a cookie
// Policy would set its cookie, to bind a new client or to refresh a
// binding (sliding expiry, a value signed with an old key).
//
// A Header is safe for concurrent use; its Lookup, as a Policy's, takes no
// lock and allocates nothing once it has indexed the snapshot.
type Header struct {
	c   *Policy // signs and checks the values; its cookie attributes are unused
	key string  // the header's name, in canonical form
}

var (
	_ policy.Policy   = (*Header)(nil)
	_ policy.Stripper = (*Header)(nil)
)

// NewHeader returns a Header carrying the binding in the header called
// name, signing with keys[0] and accepting values signed with any of keys,
// which are checked as [New] checks them. name must be an HTTP token
// (RFC 9110) of at most 128 bytes, and not a header that HTTP or the
// proxy gives a meaning of its own (Cookie, Set-Cookie, Host,
// Authorization, Forwarded, Via, the framing and hop-by-hop headers). It
// is used in canonical form ([http.CanonicalHeaderKey]), so names that
// differ only in case name the same header. Values are signed for that
// canonical name: a [Policy] whose cookie has the same name and keys
// accepts them as cookies, and a Header accepts its cookie values.
//
// Of the options, those that set the binding's lifetime apply as they do
// to a Policy: [WithTTL] (15 minutes by default; 0 signs no expiry, the
// value then binding until its key is dropped or its maximum life ends),
// [WithSliding], [WithMaxLife] and [WithClock]. Those that shape only a
// cookie are errors: [WithName] (name is the header's), [WithPath],
// [WithDomain], [WithSameSite], [WithHTTPOnly], [WithSecure],
// [WithPartitioned] and [WithCORS].
//
// NewHeader returns an error listing every invalid key, option and the
// name, each with its value.
func NewHeader(name string, keys [][]byte, opts ...Option) (*Header, error) {
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	errs := headerAttrErrors(&o)
	switch err := cookies.ValidToken(name); {
	case err != nil:
		errs = append(errs, fmt.Errorf("cookie: NewHeader(%q): %v", name, err))
	case len(name) > maxHeaderName:
		errs = append(errs, fmt.Errorf("cookie: NewHeader(%q): %d bytes; at most %d", name, len(name), maxHeaderName))
	case reservedHeaders[http.CanonicalHeaderKey(name)]:
		errs = append(errs, fmt.Errorf("cookie: NewHeader(%q): a header HTTP or the proxy gives a meaning of its own", name))
	}
	key := http.CanonicalHeaderKey(name)
	// Checked above with its own message; the default name stands in for
	// an invalid one so that it is not reported twice.
	o.name = defaultOptions().name
	if len(errs) == 0 {
		o.name = key
	}
	c, err := newPolicy(keys, o, errs)
	if err != nil {
		return nil, err
	}
	return &Header{c: c, key: key}, nil
}

// reservedHeaders are the headers, in canonical form, that a Header
// cannot be named after: those that carry cookies, frame the message,
// route it, or are hop-by-hop and so removed by the proxy.
var reservedHeaders = map[string]bool{
	"Cookie": true, "Set-Cookie": true, "Host": true, "Content-Length": true,
	"Transfer-Encoding": true, "Connection": true, "Keep-Alive": true, "Te": true,
	"Trailer": true, "Upgrade": true, "Proxy-Connection": true, "Proxy-Authenticate": true,
	"Proxy-Authorization": true, "Authorization": true, "Forwarded": true, "Via": true,
}

// maxHeaderName is the longest header name NewHeader accepts, the longest
// session name the Gateway API allows.
const maxHeaderName = 128

// headerAttrErrors returns an error for each option o records that shapes
// only a cookie.
func headerAttrErrors(o *options) []error {
	var errs []error
	bad := func(a attrSet, opt string, v any) {
		if o.attrs&a != 0 {
			errs = append(errs, fmt.Errorf("cookie: %s(%v): does not apply to a Header, which sets no cookie", opt, v))
		}
	}
	bad(attrName, "WithName", fmt.Sprintf("%q", o.name))
	bad(attrPath, "WithPath", fmt.Sprintf("%q", o.path))
	bad(attrDomain, "WithDomain", fmt.Sprintf("%q", o.domain))
	bad(attrSameSite, "WithSameSite", int(o.sameSite))
	bad(attrHTTPOnly, "WithHTTPOnly", o.httpOnly)
	bad(attrSecure, "WithSecure", o.secure)
	bad(attrPartitioned, "WithPartitioned", o.partitioned)
	bad(attrCORS, "WithCORS", o.cors)
	return errs
}

// Name returns the header's name, in canonical form.
func (h *Header) Name() string { return h.key }

// Strip removes the header from the request header hd, so that it is not
// forwarded to the backend. It implements [policy.Stripper].
func (h *Header) Strip(hd http.Header) { delete(hd, h.key) }

// value returns the first value of r's header, "" if it has none.
func (h *Header) value(r *http.Request) string {
	if r == nil {
		return ""
	}
	if vs := r.Header[h.key]; len(vs) > 0 {
		return vs[0]
	}
	return ""
}

// Lookup returns the binding carried by r's header, resolved against s,
// with the statuses, Group and Refresh of [Policy.Lookup]: None when r has
// no such header or an empty one, else Valid, Malformed, Forged, Expired
// or Unknown. Only the header's first value is read; a value of a length
// no cookie value has is Malformed, read no further. Lookup never panics,
// whatever the request carries, and allocates nothing unless s is a
// snapshot it has not seen.
func (h *Header) Lookup(r *http.Request, s *backend.Snapshot) policy.Binding {
	var ix *index
	if s != nil {
		ix = h.c.indexFor(s) // Save then finds the token of a new binding
	}
	v := h.value(r)
	if v == "" {
		return policy.Binding{Status: policy.None}
	}
	var p payload
	return h.c.check(&p, v, ix)
}

// Save binds the client to b by setting the header on resp, replacing any
// value the backend gave it, unless the request already carried a value
// for b that needs no refresh (prev is Valid, names b and Refresh is
// false), in which case it does nothing. The new value expires a TTL from
// now, or at the end of the binding's maximum life if that comes first,
// and is signed with the first key; when it refreshes the request's
// binding to b, it keeps the binding's age.
//
// A browser's script reads a cross-origin response's headers only if the
// response names them in Access-Control-Expose-Headers: when resp allows
// cross-origin reads (it carries Access-Control-Allow-Origin), Save adds
// the header's name there, unless it is listed already.
func (h *Header) Save(r *http.Request, resp *http.Response, b *backend.Backend, prev policy.Binding) {
	stays := prev.Status == policy.Valid && prev.ID == b.ID()
	if stays && !prev.Refresh {
		return
	}
	now := h.c.cfg.now().Unix()
	born := now
	if stays {
		var p payload
		if _, ok := h.c.binds(&p, h.value(r), b.ID()); ok {
			born = p.issued()
		}
	}
	p, _ := h.c.value(b.ID(), b.Group(), born, now)
	if resp.Header == nil {
		resp.Header = make(http.Header)
	}
	resp.Header[h.key] = []string{p.encoded()}
	h.expose(resp.Header)
}

// expose adds the header's name to hd's Access-Control-Expose-Headers if
// hd carries Access-Control-Allow-Origin and does not list it already.
func (h *Header) expose(hd http.Header) {
	if len(hd["Access-Control-Allow-Origin"]) == 0 {
		return
	}
	const expose = "Access-Control-Expose-Headers"
	for _, line := range hd[expose] {
		for _, n := range strings.Split(line, ",") {
			if strings.EqualFold(textproto.TrimString(n), h.key) {
				return
			}
		}
	}
	hd[expose] = append(hd[expose], h.key)
}

// Issue returns a header value binding its bearer to the backend with ID
// id: what Save would set now for that backend. Any Header or Policy with
// the same name and a key in common accepts it.
func (h *Header) Issue(id string) string { return h.c.Issue(id) }
