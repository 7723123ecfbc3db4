package cookie

import "testing"

// The benchmarks of this file time the parts of the cookie's work alone:
// Lookup's decoder and tag. Those of its header scan and of Strip are in
// internal/cookies.

var sinkPayload payload

func BenchmarkDecodePayload(b *testing.B) {
	s := "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	for b.Loop() {
		decodePayload(&sinkPayload, s)
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
