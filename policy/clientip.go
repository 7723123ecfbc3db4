package policy

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"

	"github.com/affinitylb/affinity/internal/clientip"
)

// ClientIPKey returns a Key read from the client's IP address. Its
// KeyHash is the [HashKey] of the address's 16-byte form (IPv4 addresses
// as IPv4-mapped IPv6), so an address has one KeyHash however it was
// written.
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
	a, ok := clientip.Of(r, k.trusted)
	if !ok {
		return 0, false
	}
	b := a.As16()
	return hashKeyBytes(b[:]), true
}
