package cookie

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"sync"
)

// cmac computes AES-CMAC (NIST SP 800-38B, RFC 4493) under one key. It is
// immutable once made and safe for concurrent use.
type cmac struct {
	block  cipher.Block
	k1, k2 [aes.BlockSize]byte // the subkeys for a whole and a padded last block
	// scratch hands out the blocks a sum works in. A cipher.Block is an
	// interface, so the slices passed to Encrypt escape: on the stack they
	// would be allocated anew by every sum.
	scratch sync.Pool
}

// cmacScratch is the state of one sum: the chaining value and the block
// being fed to the cipher.
type cmacScratch struct{ x, y [aes.BlockSize]byte }

// newCMAC returns the CMAC of an AES key: 16, 24 or 32 bytes.
func newCMAC(key []byte) (*cmac, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	m := &cmac{block: b}
	m.scratch.New = func() any { return new(cmacScratch) }
	var l [aes.BlockSize]byte
	b.Encrypt(l[:], l[:])
	m.k1 = double(l)
	m.k2 = double(m.k1)
	return m, nil
}

// double multiplies b by x in GF(2^128), as SP 800-38B derives subkeys:
// a left shift by one bit, then, if a bit fell off, XOR with 0x87.
func double(b [aes.BlockSize]byte) (d [aes.BlockSize]byte) {
	for i := range len(b) - 1 {
		d[i] = b[i]<<1 | b[i+1]>>7
	}
	d[len(b)-1] = b[len(b)-1]<<1 ^ 0x87&-(b[0]>>7)
	return d
}

// sum returns the 128-bit CMAC of msg, which may be any length. It
// allocates nothing and does not keep msg.
func (m *cmac) sum(msg []byte) (tag [aes.BlockSize]byte) {
	s := m.scratch.Get().(*cmacScratch)
	s.x = [aes.BlockSize]byte{}
	// Every block but the last is chained through the cipher; the last,
	// possibly empty, is whitened with a subkey first.
	for len(msg) > aes.BlockSize {
		xor(&s.y, &s.x, (*[aes.BlockSize]byte)(msg))
		m.block.Encrypt(s.x[:], s.y[:])
		msg = msg[aes.BlockSize:]
	}
	if len(msg) == aes.BlockSize {
		xor(&s.y, &m.k1, (*[aes.BlockSize]byte)(msg))
	} else {
		// A short last block is padded with one 1 bit and then 0 bits.
		var last [aes.BlockSize]byte
		copy(last[:], msg)
		last[len(msg)] = 0x80
		xor(&s.y, &m.k2, &last)
	}
	xor(&s.y, &s.y, &s.x)
	m.block.Encrypt(s.x[:], s.y[:])
	tag = s.x
	m.scratch.Put(s)
	return tag
}

// xor sets dst to a XOR b, a word at a time.
func xor(dst, a, b *[aes.BlockSize]byte) {
	le := binary.LittleEndian
	lo := le.Uint64(a[:8]) ^ le.Uint64(b[:8])
	hi := le.Uint64(a[8:]) ^ le.Uint64(b[8:])
	le.PutUint64(dst[:8], lo)
	le.PutUint64(dst[8:], hi)
}

// equalTags reports, in constant time, whether a and b are the same tag.
func equalTags(a, b *[aes.BlockSize]byte) bool {
	var d [aes.BlockSize]byte
	xor(&d, a, b)
	le := binary.LittleEndian
	return le.Uint64(d[:8])|le.Uint64(d[8:]) == 0
}
