package cookie

import (
	"encoding/base64"
	"encoding/binary"
	"math"
)

// The layout of a cookie value, before base64url encoding:
//
//	version (1) | token (8) | issued (4) | expires (4) | tag (16)
//
// The tag is the AES-CMAC of the 16 bytes of fields; see signer.
const (
	valueVersion = 2 // the only format signed and verified
	tokenLen     = 8
	tagLen       = 16                     // 128-bit tag
	signedLen    = 1 + tokenLen + 4 + 4   // the version and the fields, before the tag
	payloadLen   = signedLen + tagLen     // 33
	valueLen     = (payloadLen*8 + 5) / 6 // 44 characters, unpadded
	maxTimestamp = math.MaxUint32         // issued and expires are uint32
)

// payload is a decoded cookie value. Integers are big-endian; issued and
// expires are Unix seconds, expires being 0 for a session cookie. The tag
// authenticates the fields and the cookie's name (see signer); the version
// is outside it, and a payload of any other version is refused.
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

// decodePayload decodes the cookie value s into p. It reports false unless
// s is exactly valueLen characters of unpadded base64url; p is then left
// partly written. It allocates nothing.
//
// valueLen characters carry exactly payloadLen bytes with no spare bits,
// so every value has one encoding. It accepts and decodes what
// base64.RawURLEncoding would (FuzzDecodePayload checks), at a third of
// the cost: encoding/base64 cannot decode a string without a copy, and
// looks for line breaks and padding, which cannot appear here.
func decodePayload(p *payload, s string) bool {
	if len(s) != valueLen {
		return false
	}
	var bad byte // a character outside the alphabet sets the top two bits
	for i := range payloadLen / 3 {
		q := s[4*i : 4*i+4]
		a, b, c, d := base64URL[q[0]], base64URL[q[1]], base64URL[q[2]], base64URL[q[3]]
		bad |= a | b | c | d
		o := p[3*i : 3*i+3]
		o[0], o[1], o[2] = a<<2|b>>4, b<<4|c>>2, c<<6|d
	}
	return bad&0xc0 == 0
}

// base64URL maps each character of the base64url alphabet to its six
// bits, and every other byte to 0xff.
var base64URL = func() (t [256]byte) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for i := range t {
		t[i] = 0xff
	}
	for i := range len(alphabet) {
		t[alphabet[i]] = byte(i)
	}
	return t
}()

// appendEncoded appends p's base64url encoding to dst.
func (p *payload) appendEncoded(dst []byte) []byte {
	return base64.RawURLEncoding.AppendEncode(dst, p[:])
}

// encoded returns p's base64url encoding, valueLen characters.
func (p *payload) encoded() string {
	var buf [valueLen]byte
	return string(p.appendEncoded(buf[:0]))
}

func (p *payload) version() byte  { return p[0] }
func (p *payload) token() uint64  { return binary.BigEndian.Uint64(p[1:9]) }
func (p *payload) issued() int64  { return int64(binary.BigEndian.Uint32(p[9:13])) }
func (p *payload) expires() int64 { return int64(binary.BigEndian.Uint32(p[13:17])) }
func (p *payload) fields() []byte { return p[1:signedLen] }
func (p *payload) tag() []byte    { return p[signedLen:] }

// timestamp converts Unix seconds to the payload's uint32, clamping times
// before 1970 to 0 and after 2106 to the largest.
func timestamp(unix int64) uint32 {
	return uint32(min(max(unix, 0), maxTimestamp))
}
