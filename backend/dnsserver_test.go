package backend_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/net/dns/dnsmessage"
)

// zone is what a dnsServer answers for one name.
type zone struct {
	ips  []string  // A and AAAA records
	srv  []net.SRV // SRV records
	fail bool      // answer SERVFAIL
	drop bool      // answer nothing: the client times out
}

// dnsServer is a DNS responder on a loopback UDP port. It answers from a
// map the test changes with set and del; a name not in it is NXDOMAIN.
type dnsServer struct {
	pc      net.PacketConn
	queries atomic.Int64 // queries received

	mu    sync.Mutex
	zones map[string]zone // by lower-case name, with the final dot
}

// newDNSServer starts a responder that stops when the test ends.
func newDNSServer(t *testing.T) *dnsServer {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	s := &dnsServer{pc: pc, zones: map[string]zone{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.serve()
	}()
	t.Cleanup(func() {
		pc.Close()
		<-done
	})
	return s
}

// resolver returns a resolver that sends every query to s.
func (s *dnsServer) resolver() *net.Resolver {
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "udp", s.pc.LocalAddr().String())
		},
	}
}

// set makes s answer z for name.
func (s *dnsServer) set(name string, z zone) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.zones[fqdn(name)] = z
}

// del makes s answer NXDOMAIN for name.
func (s *dnsServer) del(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.zones, fqdn(name))
}

func fqdn(name string) string {
	return strings.ToLower(strings.TrimSuffix(name, ".") + ".")
}

func (s *dnsServer) serve() {
	buf := make([]byte, 1500)
	for {
		n, addr, err := s.pc.ReadFrom(buf)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			continue
		}
		s.queries.Add(1)
		if resp, ok := s.answer(buf[:n]); ok {
			s.pc.WriteTo(resp, addr)
		}
	}
}

// answer builds the response to query, or reports false to answer nothing.
func (s *dnsServer) answer(query []byte) ([]byte, bool) {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil, false
	}
	q, err := p.Question()
	if err != nil {
		return nil, false
	}
	s.mu.Lock()
	z, found := s.zones[fqdn(q.Name.String())]
	s.mu.Unlock()
	if z.drop {
		return nil, false
	}

	rh := dnsmessage.Header{
		ID:                 h.ID,
		Response:           true,
		Authoritative:      true,
		RecursionDesired:   h.RecursionDesired,
		RecursionAvailable: true,
	}
	switch {
	case !found:
		rh.RCode = dnsmessage.RCodeNameError
	case z.fail:
		rh.RCode = dnsmessage.RCodeServerFailure
	}
	b := dnsmessage.NewBuilder(nil, rh)
	b.EnableCompression()
	mustBuild(b.StartQuestions())
	mustBuild(b.Question(q))
	mustBuild(b.StartAnswers())
	if rh.RCode == dnsmessage.RCodeSuccess {
		res := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 1}
		for _, ip := range z.ips {
			a := netip.MustParseAddr(ip)
			switch {
			case q.Type == dnsmessage.TypeA && a.Is4():
				mustBuild(b.AResource(res, dnsmessage.AResource{A: a.As4()}))
			case q.Type == dnsmessage.TypeAAAA && a.Is6():
				mustBuild(b.AAAAResource(res, dnsmessage.AAAAResource{AAAA: a.As16()}))
			}
		}
		if q.Type == dnsmessage.TypeSRV {
			for _, r := range z.srv {
				mustBuild(b.SRVResource(res, dnsmessage.SRVResource{
					Priority: r.Priority,
					Weight:   r.Weight,
					Port:     r.Port,
					Target:   dnsmessage.MustNewName(r.Target),
				}))
			}
		}
	}
	resp, err := b.Finish()
	mustBuild(err)
	return resp, true
}

// mustBuild panics on an error that only a bug in the responder can cause.
func mustBuild(err error) {
	if err != nil {
		panic(err)
	}
}
