package cookie

import (
	"encoding/hex"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fromHex decodes a hex string of a test vector.
func fromHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	require.NoError(t, err)
	return b
}

// TestCMAC checks the subkeys and the four examples of RFC 4493 (the AES-128
// examples of NIST SP 800-38B): an empty message, one whole block, a short
// last block and four whole blocks.
func TestCMAC(t *testing.T) {
	m, err := newCMAC(fromHex(t, "2b7e151628aed2a6abf7158809cf4f3c"))
	require.NoError(t, err)
	assert.Equal(t, fromHex(t, "fbeed618357133667c85e08f7236a8de"), m.k1[:], "K1")
	assert.Equal(t, fromHex(t, "f7ddac306ae266ccf90bc11ee46d513b"), m.k2[:], "K2")

	msg := fromHex(t, "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"+
		"30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710")
	tests := []struct {
		n    int
		want string
	}{
		{0, "bb1d6929e95937287fa37d129b756746"},
		{16, "070a16b46b4d4144f79bdd9dd04a287c"},
		{40, "dfa66747de9ae63030ca32611497c827"},
		{64, "51f0bebf7e3b9d92fc49741779363cfe"},
	}
	for _, tt := range tests {
		// Twice: a sum must leave nothing behind in the scratch it hands
		// back for the next.
		for range 2 {
			tag := m.sum(msg[:tt.n])
			assert.Equal(t, tt.want, hex.EncodeToString(tag[:]), "%d bytes", tt.n)
		}
	}
}

func TestCMACKeySize(t *testing.T) {
	for _, n := range []int{0, 15, 17, 64} {
		_, err := newCMAC(make([]byte, n))
		assert.Error(t, err, "%d-byte key", n)
	}
}

func TestCMACAllocatesNothing(t *testing.T) {
	m, err := newCMAC(make([]byte, 16))
	require.NoError(t, err)
	var msg [17]byte
	allocs := testing.AllocsPerRun(100, func() {
		tag := m.sum(msg[:])
		msg[0] = tag[0]
	})
	assert.Zero(t, allocs)
}
