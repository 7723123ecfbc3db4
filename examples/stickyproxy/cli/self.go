package cli

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// self is the addresses the proxy listens on, as bound, to refuse a
// backend that is the proxy itself: every request sent there would come
// back, until the connections or file descriptors run out.
type self struct {
	listeners []selfListener
	// local reports whether an address is one of this machine's; the
	// loopback and unspecified addresses always are.
	local func(netip.Addr) bool
}

// selfListener is one of the proxy's listeners.
type selfListener struct {
	flag string         // the flag that chose it: "-listen" or "-admin"
	addr netip.AddrPort // as bound; an unspecified address listens on every local one
}

// newSelf returns the self of the proxy's listeners: proxy, chosen by
// -listen, and admin, by -admin, or nil. Listeners that are not TCP are
// left out.
func newSelf(proxy, admin net.Listener) self {
	s := self{local: interfaceAddr}
	for _, l := range []struct {
		flag string
		ln   net.Listener
	}{{"-listen", proxy}, {"-admin", admin}} {
		if l.ln == nil {
			continue
		}
		if t, ok := l.ln.Addr().(*net.TCPAddr); ok {
			s.listeners = append(s.listeners, selfListener{l.flag, t.AddrPort()})
		}
	}
	return s
}

// check returns an error if the backend URL raw reaches one of the
// proxy's listeners: its port is theirs (the scheme's default if it has
// none), and its host is a listener's address, or any of this machine's
// when the listener is on every address. The names localhost and
// *.localhost, and the unspecified addresses, stand for both loopback
// addresses. Other names are not resolved: check cannot tell them apart
// from another machine's. A raw that is not a URL with a host and a port
// is the backend set's to refuse, not check's: it returns nil.
func (s self) check(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return nil
	}
	port := u.Port()
	switch {
	case port != "":
	case strings.EqualFold(u.Scheme, "http") || strings.EqualFold(u.Scheme, "h2c"):
		port = "80"
	case strings.EqualFold(u.Scheme, "https"):
		port = "443"
	default:
		return nil
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return nil
	}
	for _, ip := range hostAddrs(u.Hostname()) {
		for _, l := range s.listeners {
			if l.addr.Port() == uint16(p) && s.reaches(ip, l.addr.Addr()) {
				return fmt.Errorf("backend %q is this proxy: it listens on %v (%s), and would send its requests to itself", raw, l.addr, l.flag)
			}
		}
	}
	return nil
}

// reaches reports whether a connection to ip reaches a listener bound to
// ln.
func (s self) reaches(ip, ln netip.Addr) bool {
	ln = ln.Unmap()
	if ip == ln {
		return true
	}
	return ln.IsUnspecified() && (ip.IsLoopback() || s.local != nil && s.local(ip))
}

// loopbacks are the addresses that localhost, and the unspecified
// addresses, stand for.
var loopbacks = []netip.Addr{netip.IPv6Loopback(), netip.AddrFrom4([4]byte{127, 0, 0, 1})}

// hostAddrs returns the addresses a URL's host stands for without
// resolving a name: an IP address (less its zone), the loopback addresses
// for localhost, *.localhost and the unspecified addresses, and nothing
// for another name.
func hostAddrs(host string) []netip.Addr {
	if ip, err := netip.ParseAddr(host); err == nil {
		ip = ip.WithZone("").Unmap()
		if ip.IsUnspecified() {
			return loopbacks
		}
		return []netip.Addr{ip}
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return loopbacks
	}
	return nil
}

// interfaceAddr reports whether ip is the address of one of this
// machine's network interfaces.
func interfaceAddr(ip netip.Addr) bool {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if x, ok := netip.AddrFromSlice(n.IP); ok && x.Unmap() == ip {
				return true
			}
		}
	}
	return false
}
