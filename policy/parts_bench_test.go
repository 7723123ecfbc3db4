package policy

import "testing"

// The benchmarks of this file time the parts of the cookie's work alone:
// Lookup's header scan, decoder and tag, and Strip.

var sinkPayload payload

func BenchmarkDecodePayload(b *testing.B) {
	s := "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	for b.Loop() {
		decodePayload(&sinkPayload, s)
	}
}

func BenchmarkCookieValue(b *testing.B) {
	h := map[string][]string{"Cookie": {"session=0123456789; affinity=AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA; theme=dark"}}
	for b.Loop() {
		v, _ := cookieValue(h, "affinity")
		sinkPayload[0] = v[0]
	}
}

func BenchmarkCMACSum(b *testing.B) {
	m, _ := newCMAC(make([]byte, 16))
	var msg [16]byte
	for b.Loop() {
		t := m.sum(msg[:])
		msg[0] = t[0]
	}
}

// BenchmarkStripCookie times the removal of the cookie from the forwarded
// request's header: alone on its line, as a client of the balancer alone
// sends it, and among the application's cookies.
func BenchmarkStripCookie(b *testing.B) {
	for _, bc := range []struct{ name, line string }{
		{"alone", "affinity=AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
		{"among others", "session=0123456789; affinity=AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA; theme=dark"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			line := []string{bc.line}
			h := map[string][]string{}
			for b.Loop() {
				h["Cookie"] = line
				stripCookie(h, "affinity")
			}
		})
	}
}
