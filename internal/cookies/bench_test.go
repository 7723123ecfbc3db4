package cookies

import "testing"

// The benchmarks of this file time the header scans of a cookie policy's
// Lookup and Strip alone.

var sinkByte byte

func BenchmarkCookieValue(b *testing.B) {
	h := map[string][]string{"Cookie": {"session=0123456789; affinity=AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA; theme=dark"}}
	for b.Loop() {
		v, _ := Value(h, "affinity")
		sinkByte = v[0]
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
				Strip(h, "affinity")
			}
		})
	}
}
