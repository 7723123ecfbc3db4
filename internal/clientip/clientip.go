// Package clientip finds the address of the client a request comes from:
// the socket peer, or, when the peer is a trusted proxy, the address its
// forwarding headers (X-Forwarded-For, else Forwarded) report. It is the
// parser behind policy.ClientIPKey, whose documentation states the rules,
// shared with package sticky. Nothing in it allocates.
package clientip

import (
	"net/http"
	"net/netip"
	"strings"
)

// Bounds on the work done for one request's forwarding headers.
const (
	maxHops   = 32  // hops examined, right to left
	maxHopLen = 256 // longer hops (list elements) are unreadable
)

// Of returns r's client address as policy.ClientIPKey describes it: the
// peer (r.RemoteAddr, IPv4-mapped addresses unmapped, zones dropped)
// unless it is inside trusted, in which case X-Forwarded-For, else
// Forwarded, is walked right to left from the peer, skipping trusted hops;
// the first hop not trusted is the client. A walk that meets an element
// that is not an address, or that runs out of hops or past 32, ends at the
// last trusted hop. Of reports false when r.RemoteAddr is neither an
// address and port nor an address.
func Of(r *http.Request, trusted []netip.Prefix) (netip.Addr, bool) {
	a, _, ok := resolve(r, trusted)
	return a, ok
}

// Forwarded returns the client address that trusted proxies report for r:
// the address [Of] returns, but only when r's peer is trusted and that
// address is not, that is, when the forwarding headers name a client
// beyond the trusted proxies. Otherwise (an untrusted peer, no forwarding
// header, or a walk that ends at a trusted hop) it reports false.
func Forwarded(r *http.Request, trusted []netip.Prefix) (netip.Addr, bool) {
	a, walked, ok := resolve(r, trusted)
	if !ok || !walked || Trusts(trusted, a) {
		return netip.Addr{}, false
	}
	return a, true
}

// Trusts reports whether a is inside one of the trusted prefixes.
func Trusts(trusted []netip.Prefix, a netip.Addr) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// resolve returns r's client address, as Of describes, and whether the
// peer was trusted, its forwarding headers walked.
func resolve(r *http.Request, trusted []netip.Prefix) (client netip.Addr, walked, ok bool) {
	peer, ok := parsePeer(r.RemoteAddr)
	if !ok {
		return netip.Addr{}, false, false
	}
	if !Trusts(trusted, peer) {
		return peer, false, true
	}
	if lines := r.Header["X-Forwarded-For"]; len(lines) > 0 {
		return walk(trusted, peer, lines, parseNode), true, true
	}
	if lines := r.Header["Forwarded"]; len(lines) > 0 {
		return walk(trusted, peer, lines, parseForwardedFor), true, true
	}
	return peer, true, true
}

// walk returns the client address reported by the hops in a forwarding
// header's lines, read right to left, each hop's address parsed by parse
// and reported by the trusted proxy before it, the first being the peer.
func walk(trusted []netip.Prefix, peer netip.Addr, lines []string, parse func(string) (netip.Addr, bool)) netip.Addr {
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
		if !Trusts(trusted, a) {
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

// trimBlanks trims leading and trailing spaces and tabs, as package
// policy's helper of the same name does for its headers.
func trimBlanks(s string) string {
	for s != "" && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for s != "" && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}
