package policy

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"

	"github.com/cespare/xxhash/v2"
)

// Bounds on the work ClientIPKey does for one request's forwarding headers.
const (
	maxHops   = 32  // hops examined, right to left
	maxHopLen = 256 // longer hops (list elements) are unreadable
)

// ClientIPKey returns a Key read from the client's IP address. Its Key is
// the xxHash of the address's 16-byte form (IPv4 addresses as
// IPv4-mapped IPv6), so an address has one Key however it was written.
//
// The client is the socket peer (the request's RemoteAddr, IPv4-mapped
// addresses unmapped) unless the peer is inside one of the trusted
// prefixes: a proxy of yours. Only then are forwarding headers believed:
// X-Forwarded-For if the request has it, else Forwarded (RFC 7239, its for=
// parameters). The list of hops is walked right to left from the peer,
// skipping trusted proxies; the first address not trusted is the client's.
// If the walk meets an element that is not an IP address (garbage,
// "unknown", an obfuscated "_name", no for=) it stops, and the last
// trusted proxy is taken for the client, being the last hop whose report
// can be believed; so it is when every hop is trusted, or after 32 hops.
// Hops may carry ports, bracketed or not; addresses with zones are refused.
//
// With no trusted prefixes, the default, forwarding headers are ignored:
// anyone can send them. Trust only proxies that append to X-Forwarded-For
// (or Forwarded) rather than pass it through. A request whose RemoteAddr is
// not an IP address and port, or an IP address, has no key.
//
// ClientIPKey returns an error, naming the prefix, if a prefix is invalid,
// has bits set beyond its length, or is IPv4-mapped IPv6 (which would
// never match: addresses are unmapped; write it as IPv4). It keeps a copy
// of trusted. [ParsePrefixes] reads a list of prefixes from text.
func ClientIPKey(trusted []netip.Prefix) (*Key, error) {
	for i, p := range trusted {
		if err := checkPrefix(p); err != nil {
			return nil, fmt.Errorf("policy: trusted[%d]: %w", i, err)
		}
	}
	return &Key{source: fromClientIP, trusted: append([]netip.Prefix(nil), trusted...)}, nil
}

// ParsePrefixes parses a comma-separated list of CIDR prefixes, such as
// "10.0.0.0/8, 2001:db8::/32, 192.0.2.7", for [ClientIPKey]. A bare address
// is a prefix of its own: /32 for IPv4, /128 for IPv6. Spaces around
// entries and empty entries are ignored; an empty list gives none. The
// error names the first bad entry: unparsable, with a zone, with bits set
// beyond its length (10.0.0.1/8: write 10.0.0.0/8, or 10.0.0.1/32), or
// IPv4-mapped.
func ParsePrefixes(list string) ([]netip.Prefix, error) {
	var ps []netip.Prefix
	for entry := range strings.SplitSeq(list, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		var p netip.Prefix
		if strings.Contains(entry, "/") {
			var err error
			if p, err = netip.ParsePrefix(entry); err != nil {
				return nil, fmt.Errorf("policy: prefix %q is not an IP prefix in CIDR notation: %w", entry, err)
			}
		} else {
			a, err := netip.ParseAddr(entry)
			if err != nil {
				return nil, fmt.Errorf("policy: prefix %q is not an IP address: %w", entry, err)
			}
			if a.Zone() != "" {
				return nil, fmt.Errorf("policy: prefix %q has a zone", entry)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if err := checkPrefix(p); err != nil {
			return nil, fmt.Errorf("policy: %w", err)
		}
		ps = append(ps, p)
	}
	return ps, nil
}

// checkPrefix reports what makes p unfit to name trusted proxies.
func checkPrefix(p netip.Prefix) error {
	switch {
	case !p.IsValid():
		return errors.New("invalid prefix (a zero netip.Prefix?)")
	case p.Addr().Is4In6():
		return fmt.Errorf("prefix %s is IPv4-mapped IPv6, which never matches: write it as IPv4", p)
	case p != p.Masked():
		return fmt.Errorf("prefix %s has bits set beyond its length: write %s, or %s/%d for one address", p, p.Masked(), p.Addr(), p.Addr().BitLen())
	}
	return nil
}

func (k *Key) clientIP(r *http.Request) (uint64, bool) {
	a, ok := k.client(r)
	if !ok {
		return 0, false
	}
	b := a.As16()
	return xxhash.Sum64(b[:]), true
}

// client returns r's client address, as ClientIPKey describes.
func (k *Key) client(r *http.Request) (netip.Addr, bool) {
	peer, ok := parsePeer(r.RemoteAddr)
	if !ok {
		return netip.Addr{}, false
	}
	if !k.trusts(peer) {
		return peer, true
	}
	if lines := r.Header["X-Forwarded-For"]; len(lines) > 0 {
		return k.walk(peer, lines, parseNode), true
	}
	if lines := r.Header["Forwarded"]; len(lines) > 0 {
		return k.walk(peer, lines, parseForwardedFor), true
	}
	return peer, true
}

// trusts reports whether a is one of the trusted proxies.
func (k *Key) trusts(a netip.Addr) bool {
	for _, p := range k.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// walk returns the client address reported by the hops in a forwarding
// header's lines, read right to left, each hop's address parsed by parse
// and reported by the trusted proxy before it, the first being the peer.
func (k *Key) walk(peer netip.Addr, lines []string, parse func(string) (netip.Addr, bool)) netip.Addr {
	client := peer
	hops := hopReader{lines: lines}
	for range maxHops {
		hop, ok := hops.next()
		if !ok {
			break
		}
		a, ok := parse(hop)
		if !ok {
			break
		}
		client = a
		if !k.trusts(a) {
			break
		}
	}
	return client
}

// hopReader yields the comma-separated elements of a header's lines right
// to left, trimmed of spaces and tabs. It reads no more of the lines than
// the elements it yields, and no more than maxHopLen+1 bytes of each: a
// longer element is yielded as "", which parses as nothing.
type hopReader struct {
	lines []string // the lines not yet started
	line  string   // what is left of the current line
	in    bool     // whether line is being read
}

// next returns the next element, or false when there are none left.
func (h *hopReader) next() (string, bool) {
	if !h.in {
		if len(h.lines) == 0 {
			return "", false
		}
		h.line, h.lines, h.in = h.lines[len(h.lines)-1], h.lines[:len(h.lines)-1], true
	}
	start := max(len(h.line)-maxHopLen-1, 0)
	i := strings.LastIndexByte(h.line[start:], ',')
	if i < 0 {
		if start > 0 {
			return "", true // too long; the walk stops here
		}
		h.in = false
		return trimBlanks(h.line), true
	}
	hop := h.line[start+i+1:]
	h.line = h.line[:start+i]
	return trimBlanks(hop), true
}

// parsePeer parses a RemoteAddr: an address and port, or an address alone.
func parsePeer(s string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().WithZone(""), true
	}
	return netip.Addr{}, false
}

// parseNode parses the address of a hop: an IP address with or without a
// port, "192.0.2.1", "192.0.2.1:80", "2001:db8::1", "[2001:db8::1]" or
// "[2001:db8::1]:80". Ports may be obfuscated, as RFC 7239 allows
// ("_a1"), and are ignored. Addresses with zones are refused; IPv4-mapped
// ones are unmapped.
func parseNode(s string) (netip.Addr, bool) {
	if strings.IndexByte(s, '%') >= 0 {
		return netip.Addr{}, false
	}
	host := s
	if rest, ok := strings.CutPrefix(s, "["); ok {
		var port string
		if host, port, ok = strings.Cut(rest, "]"); !ok || port != "" && !isPort(port) {
			return netip.Addr{}, false
		}
	} else if i := strings.IndexByte(s, ':'); i >= 0 && strings.IndexByte(s[i+1:], ':') < 0 {
		// One colon: IPv4 and a port. IPv6 addresses have two or more.
		if host = s[:i]; !isPort(s[i:]) {
			return netip.Addr{}, false
		}
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// isPort reports whether s is ':' and a port: digits, or an obfuscated
// port (RFC 7239: '_' and letters, digits, '.', '_', '-').
func isPort(s string) bool {
	if len(s) < 2 || s[0] != ':' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// parseForwardedFor parses the node of the first for= parameter of a
// Forwarded element (RFC 7239), such as `for=192.0.2.60;proto=http` or
// `for="[2001:db8::1]:4711"`. Parameter names are case-insensitive; the
// value may be quoted. "unknown", obfuscated identifiers and elements
// without for= parse as nothing.
func parseForwardedFor(elem string) (netip.Addr, bool) {
	for elem != "" {
		var pair string
		pair, elem, _ = strings.Cut(elem, ";")
		name, value, _ := strings.Cut(trimBlanks(pair), "=")
		if !strings.EqualFold(name, "for") {
			continue
		}
		if len(value) >= 2 && value[0] == '"' && value[len(value)-1] == '"' {
			value = value[1 : len(value)-1]
		}
		return parseNode(value)
	}
	return netip.Addr{}, false
}
