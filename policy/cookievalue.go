package policy

import (
	"encoding/base64"
	"encoding/binary"
	"math"
)

// The layout of a cookie value, before base64url encoding:
//
//	version (1) | token (8) | issued (4) | expires (4) | tag (16)
//
// Format 2 tags the 16 bytes of fields with AES-CMAC, format 1 the first
// signedLen bytes with HMAC-SHA-256; see signer.
const (
	valueVersion  = 2 // the format signed
	legacyVersion = 1 // a format still verified
	tokenLen      = 8
	tagLen        = 16                     // 128-bit tag
	signedLen     = 1 + tokenLen + 4 + 4   // the bytes the tag covers
	payloadLen    = signedLen + tagLen     // 33
	valueLen      = (payloadLen*8 + 5) / 6 // 44 characters, unpadded
	maxTimestamp  = math.MaxUint32         // issued and expires are uint32
)

// payload is a decoded cookie value. Integers are big-endian; issued and
// expires are Unix seconds, expires being 0 for a session cookie. The tag
// authenticates the fields, the version and the cookie's name (see
// signer).
type payload [payloadLen]byte

// newPayload returns an unsigned payload.
func newPayload(token uint64, issued, expires uint32) payload {
	var p payload
	p[0] = valueVersion
	binary.BigEndian.PutUint64(p[1:9], token)
	binary.BigEndian.PutUint32(p[9:13], issued)
	binary.BigEndian.PutUint32(p[13:17], expires)
	return p
}

// decodePayload decodes a cookie value. It reports false unless s is
// exactly valueLen characters of unpadded base64url. It allocates nothing.
func decodePayload(s string) (p payload, ok bool) {
	if len(s) != valueLen {
		return p, false
	}
	// Decode wants a []byte; copying into an array keeps it on the stack,
	// where []byte(s) of this length would allocate.
	var src [valueLen]byte
	copy(src[:], s)
	// valueLen characters carry exactly payloadLen bytes with no spare
	// bits, so every value has one encoding. The decoder skips '\r' and
	// '\n'; a value containing them decodes short and is refused.
	n, err := base64.RawURLEncoding.Decode(p[:], src[:])
	return p, err == nil && n == payloadLen
}

// appendEncoded appends p's base64url encoding to dst.
func (p *payload) appendEncoded(dst []byte) []byte {
	return base64.RawURLEncoding.AppendEncode(dst, p[:])
}

func (p *payload) version() byte  { return p[0] }
func (p *payload) token() uint64  { return binary.BigEndian.Uint64(p[1:9]) }
func (p *payload) issued() int64  { return int64(binary.BigEndian.Uint32(p[9:13])) }
func (p *payload) expires() int64 { return int64(binary.BigEndian.Uint32(p[13:17])) }
func (p *payload) signed() []byte { return p[:signedLen] }
func (p *payload) fields() []byte { return p[1:signedLen] }
func (p *payload) tag() []byte    { return p[signedLen:] }

// timestamp converts Unix seconds to the payload's uint32, clamping times
// before 1970 to 0 and after 2106 to the largest.
func timestamp(unix int64) uint32 {
	return uint32(min(max(unix, 0), maxTimestamp))
}
