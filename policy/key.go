package policy

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"

	"github.com/cespare/xxhash/v2"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/internal/cookies"
)

// maxKeyLen bounds a header or query parameter used as a key: longer ones
// are treated as absent.
const maxKeyLen = 1024

// Key is a [Policy] for clients that keep no cookies, such as API clients
// and programs: it binds requests that carry the same affinity key (a
// header, a query parameter, a cookie of the application's, the client's
// address) to the same backend, by way of a hashing picker.
//
// Lookup returns Binding{Status: Keyed, KeyHash: h} when the request
// carries the key, h being its [HashKey]: the same key gives the same
// KeyHash in every process, so replicas agree. Without the key it returns
// Binding{Status: None}. A Key keeps no state and writes nothing:
// Save does nothing.
//
// Make one with [HeaderKey], [QueryKey], [CookieKey] or [ClientIPKey]. A
// Key is immutable and safe for concurrent use; its Lookup never panics,
// whatever the request carries, and allocates nothing. The zero Key finds
// no key in any request.
type Key struct {
	source  keySource
	name    string         // header (canonical form), query parameter or cookie name
	trusted []netip.Prefix // ClientIPKey: the proxies whose forwarding headers are believed
}

var _ Policy = (*Key)(nil)

// keySource says where a Key finds its key.
type keySource uint8

const (
	fromNothing keySource = iota
	fromHeader
	fromQuery
	fromCookie
	fromClientIP
)

// HeaderKey returns a Key read from the first value of the request header
// name, trimmed of spaces and tabs. An empty value, or one longer than 1 KiB,
// counts as absent. name must be an HTTP token; it is matched in its
// canonical form ([http.CanonicalHeaderKey]), as net/http stores headers.
func HeaderKey(name string) (*Key, error) {
	if err := validToken("header name", name); err != nil {
		return nil, err
	}
	return &Key{source: fromHeader, name: http.CanonicalHeaderKey(name)}, nil
}

// QueryKey returns a Key read from the query parameter name: the value of
// its first occurrence in the URL's query, whose parameters are separated
// by '&', with "+" and %XX escapes decoded in names and values as
// [net/url.ParseQuery] does. An empty value, one that does not decode, or
// one longer than 1 KiB as sent, counts as absent. name must not be empty.
func QueryKey(name string) (*Key, error) {
	if name == "" {
		return nil, errors.New("policy: empty query parameter name")
	}
	return &Key{source: fromQuery, name: name}, nil
}

// CookieKey returns a Key read from the value of the request's first
// cookie called name, such as the application's session cookie. An empty
// value, or one longer than 256 bytes, counts as absent. name must be a
// valid cookie name (an HTTP token).
func CookieKey(name string) (*Key, error) {
	if err := validToken("cookie name", name); err != nil {
		return nil, err
	}
	return &Key{source: fromCookie, name: name}, nil
}

// Lookup returns Binding{Status: Keyed, KeyHash: HashKey(key)} if r
// carries k's key, else Binding{Status: None}. It ignores s.
func (k *Key) Lookup(r *http.Request, _ *backend.Snapshot) Binding {
	var (
		h  uint64
		ok bool
	)
	switch k.source {
	case fromHeader:
		h, ok = k.header(r)
	case fromQuery:
		h, ok = k.query(r)
	case fromCookie:
		h, ok = k.cookie(r)
	case fromClientIP:
		h, ok = k.clientIP(r)
	}
	if !ok {
		return Binding{Status: None}
	}
	return Binding{Status: Keyed, KeyHash: h}
}

// HashKey returns the hash of the affinity key key, as the built-in key
// policies set it in [Binding.KeyHash]: its 64-bit xxHash (XXH64, seed
// 0). It is the same in every process and on every platform, so replicas
// agree. A policy of the user's that sets KeyHash with HashKey places
// requests as the built-in ones do: the same key, whether a [HeaderKey]
// or that policy found it, reaches the same backend.
func HashKey(key string) uint64 { return xxhash.Sum64String(key) }

// hashKeyBytes returns [HashKey] of the key held in key, without
// copying it.
func hashKeyBytes(key []byte) uint64 { return xxhash.Sum64(key) }

// Save does nothing: a Key is read from every request afresh.
func (k *Key) Save(*http.Request, *http.Response, *backend.Backend, Binding) {}

func (k *Key) header(r *http.Request) (uint64, bool) {
	vs := r.Header[k.name]
	if len(vs) == 0 {
		return 0, false
	}
	v := trimBlanks(vs[0])
	if v == "" || len(v) > maxKeyLen {
		return 0, false
	}
	return HashKey(v), true
}

func (k *Key) cookie(r *http.Request) (uint64, bool) {
	v, _ := cookies.Value(r.Header, k.name)
	if v == "" {
		return 0, false
	}
	return HashKey(v), true
}

// query scans the raw query itself: url.ParseQuery would build a map of
// every parameter.
func (k *Key) query(r *http.Request) (uint64, bool) {
	if r.URL == nil {
		return 0, false
	}
	q := r.URL.RawQuery
	for q != "" {
		var pair string
		pair, q, _ = strings.Cut(q, "&")
		name, value, _ := strings.Cut(pair, "=")
		if !unescapesTo(name, k.name) {
			continue
		}
		if value == "" || len(value) > maxKeyLen {
			return 0, false
		}
		if strings.IndexByte(value, '%') < 0 && strings.IndexByte(value, '+') < 0 {
			return HashKey(value), true
		}
		var buf [maxKeyLen]byte // the decoded value is never longer
		v, ok := unescape(buf[:0], value)
		if !ok || len(v) == 0 {
			return 0, false
		}
		return hashKeyBytes(v), true
	}
	return 0, false
}

// unescapesTo reports whether the query component s decodes to want,
// without decoding it into memory. An invalid escape matches nothing.
func unescapesTo(s, want string) bool {
	n := 0
	for i := 0; i < len(s); n++ {
		c, next, ok := unescapeByte(s, i)
		if !ok || n >= len(want) || want[n] != c {
			return false
		}
		i = next
	}
	return n == len(want)
}

// unescape appends the decoded query component s to dst, and reports
// whether s decoded: it holds no invalid %XX escape.
func unescape(dst []byte, s string) ([]byte, bool) {
	for i := 0; i < len(s); {
		c, next, ok := unescapeByte(s, i)
		if !ok {
			return dst, false
		}
		dst = append(dst, c)
		i = next
	}
	return dst, true
}

// unescapeByte decodes the byte of the query component s at i: "+" is a
// space and %XX the byte XX. It returns the byte, the index of the next, and
// false for an invalid escape.
func unescapeByte(s string, i int) (c byte, next int, ok bool) {
	switch s[i] {
	case '+':
		return ' ', i + 1, true
	case '%':
		if i+2 >= len(s) {
			return 0, 0, false
		}
		hi, ok1 := unhex(s[i+1])
		lo, ok2 := unhex(s[i+2])
		return hi<<4 | lo, i + 3, ok1 && ok2
	}
	return s[i], i + 1, true
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// validToken checks that s, a what, is an HTTP token (RFC 9110), as header
// and cookie names are, and otherwise says why, naming s.
func validToken(what, s string) error {
	switch err := cookies.ValidToken(s); {
	case err == nil:
		return nil
	case s == "":
		return fmt.Errorf("policy: empty %s", what)
	default:
		return fmt.Errorf("policy: %s %q: %w", what, s, err)
	}
}

// trimBlanks trims leading and trailing spaces and tabs.
func trimBlanks(s string) string {
	for s != "" && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for s != "" && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}
