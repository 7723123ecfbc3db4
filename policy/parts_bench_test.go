package policy

import "testing"

// The benchmarks of this file time the parts of Cookie.Lookup alone: the
// header scan, the decoder and the tag.

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
