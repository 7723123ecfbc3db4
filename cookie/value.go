package cookie

import (
	"encoding/base64"
	"encoding/binary"
	"math"
)

// The layouts of a cookie value, before base64url encoding: version 2,
// a binding to a backend of the default group,
//
//	version (1) | token (8) | issued (4) | expires (4) | tag (16)
//
// and version 3, a binding to a backend of a named group,
//
//	version (1) | token (8) | group (6) | issued (4) | expires (4) | tag (16)
//
// The tag is the AES-CMAC of the fields between the version and the tag;
// see signer.
const (
	valueVersion    = 2 // a binding to the default group
	groupVersion    = 3 // a binding to a named group
	tokenLen        = 8
	groupLen        = 6                           // the group's token: 48 bits
	tagLen          = 16                          // 128-bit tag
	signedLen       = 1 + tokenLen + 4 + 4        // version 2: the version and the fields, before the tag
	payloadLen      = signedLen + tagLen          // 33
	valueLen        = (payloadLen*8 + 5) / 6      // 44 characters, unpadded
	groupSignedLen  = signedLen + groupLen        // version 3: 23
	groupPayloadLen = groupSignedLen + tagLen     // 39
	groupValueLen   = (groupPayloadLen*8 + 5) / 6 // 52 characters, unpadded
	maxValueLen     = groupValueLen
	maxTimestamp    = math.MaxUint32 // issued and expires are uint32
)

// payload is a decoded cookie value of version 2 or 3, in its first 33 or
// 39 bytes. Integers are big-endian; issued and expires are Unix seconds,
// expires being 0 for a session cookie. The tag authenticates the fields
// and the cookie's name (see signer); the version is outside it, and a
// payload of any other version is refused. The accessors read the layout
// the version byte names; on a payload of another version they read
// version 2's.
type payload [groupPayloadLen]byte

// newPayload returns an unsigned payload: of version 2 if group, the
// group's token, is 0 (the default group), else of version 3.
func newPayload(token, group uint64, issued, expires uint32) payload {
	var p payload
	p[0] = valueVersion
	binary.BigEndian.PutUint64(p[1:9], token)
	t := 9
	if group != 0 {
		p[0] = groupVersion
		putUint48(p[9:15], group)
		t = 15
	}
	binary.BigEndian.PutUint32(p[t:t+4], issued)
	binary.BigEndian.PutUint32(p[t+4:t+8], expires)
	return p
}

// decodePayload decodes the cookie value s into p. It reports false unless
// s is exactly valueLen or groupValueLen characters of unpadded base64url;
// p is then left partly written. It does not check that the version byte
// matches the length (see known). It allocates nothing.
//
// valueLen characters carry exactly payloadLen bytes, and groupValueLen
// characters groupPayloadLen bytes, with no spare bits, so every value has
// one encoding. It accepts and decodes what base64.RawURLEncoding would
// (FuzzDecodePayload checks), at a third of the cost: encoding/base64
// cannot decode a string without a copy, and looks for line breaks and
// padding, which cannot appear here.
func decodePayload(p *payload, s string) bool {
	var n int
	switch len(s) {
	case valueLen:
		n = payloadLen / 3
	case groupValueLen:
		n = groupPayloadLen / 3
	default:
		return false
	}
	var bad byte // a character outside the alphabet sets the top two bits
	for i := range n {
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
	return base64.RawURLEncoding.AppendEncode(dst, p.bytes())
}

// known reports whether p, decoded from the value s, is of a version this
// package signs and verifies, and s of that version's length.
func (p *payload) known(s string) bool {
	switch p[0] {
	case valueVersion:
		return len(s) == valueLen
	case groupVersion:
		return len(s) == groupValueLen
	}
	return false
}

// grouped reports whether p is of version 3, whose layout has a group.
func (p *payload) grouped() bool { return p[0] == groupVersion }

// at returns the offset of issued: after the group in version 3.
func (p *payload) at() int {
	if p.grouped() {
		return 15
	}
	return 9
}

func (p *payload) version() byte { return p[0] }
func (p *payload) token() uint64 { return binary.BigEndian.Uint64(p[1:9]) }

// group returns the group's token, 0 (the default group) in version 2.
func (p *payload) group() uint64 {
	if p.grouped() {
		return uint48(p[9:15])
	}
	return 0
}
func (p *payload) issued() int64  { t := p.at(); return int64(binary.BigEndian.Uint32(p[t : t+4])) }
func (p *payload) expires() int64 { t := p.at(); return int64(binary.BigEndian.Uint32(p[t+4 : t+8])) }

// fields returns the bytes the tag authenticates.
func (p *payload) fields() []byte {
	if p.grouped() {
		return p[1:groupSignedLen]
	}
	return p[1:signedLen]
}

// tag returns the tag.
func (p *payload) tag() []byte {
	if p.grouped() {
		return p[groupSignedLen:groupPayloadLen]
	}
	return p[signedLen:payloadLen]
}

// bytes returns the bytes of p's version.
func (p *payload) bytes() []byte {
	if p.grouped() {
		return p[:groupPayloadLen]
	}
	return p[:payloadLen]
}

// putUint48 stores the low 48 bits of v in b, big-endian.
func putUint48(b []byte, v uint64) {
	_ = b[5]
	b[0], b[1], b[2], b[3], b[4], b[5] = byte(v>>40), byte(v>>32), byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
}

// uint48 reads 48 bits, big-endian.
func uint48(b []byte) uint64 {
	_ = b[5]
	return uint64(b[0])<<40 | uint64(b[1])<<32 | uint64(b[2])<<24 | uint64(b[3])<<16 | uint64(b[4])<<8 | uint64(b[5])
}

// timestamp converts Unix seconds to the payload's uint32, clamping times
// before 1970 to 0 and after 2106 to the largest.
func timestamp(unix int64) uint32 {
	return uint32(min(max(unix, 0), maxTimestamp))
}
