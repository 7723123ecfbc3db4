package cookie

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"sync"
)

// minKeyLen is the length of the shortest signing key accepted: 128 bits.
const minKeyLen = 16

// Labels of the subkeys derived from each signing key. Distinct labels keep
// the key's uses independent: a token is never a valid tag, and knowing one
// subkey tells nothing about another.
const (
	// cmacLabel, followed by a zero byte and the cookie's name, derives
	// the AES-128 key that tags cookie values.
	cmacLabel  = "affinity cookie cmac v2"
	tokenLabel = "affinity backend token v1"
)

// signer signs and verifies cookie payloads with a ring of keys: the first
// signs, all verify. The cookie's name is part of every tag key, so a
// value cannot be replayed under another cookie name. It is immutable and
// safe for concurrent use.
type signer struct {
	keys []*signingKey
}

// checkKeys returns an error for every reason keys cannot sign cookies:
// there are none, or one is shorter than minKeyLen.
func checkKeys(keys [][]byte) []error {
	if len(keys) == 0 {
		return []error{errors.New("cookie: no signing keys; need at least one")}
	}
	var errs []error
	for i, k := range keys {
		if len(k) < minKeyLen {
			errs = append(errs, fmt.Errorf("cookie: keys[%d] is %d bytes; need at least %d", i, len(k), minKeyLen))
		}
	}
	return errs
}

// newSigner derives the subkeys of every key, which checkKeys accepts. It
// keeps neither the keys nor references to them.
func newSigner(keys [][]byte, name string) (s *signer, err error) {
	if errs := checkKeys(keys); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	s = &signer{keys: make([]*signingKey, len(keys))}
	for i, k := range keys {
		if s.keys[i], err = newSigningKey(k, name); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// sign sets p's tag, computed with the first key.
func (s *signer) sign(p *payload) {
	tag := s.keys[0].cmac.sum(p.fields())
	copy(p.tag(), tag[:])
}

// verify reports whether p's tag was made by one of the keys, and by which.
// It tries the keys in order and compares tags in constant time. A payload
// of a version other than valueVersion and groupVersion verifies with no
// key.
func (s *signer) verify(p *payload) (key int, ok bool) {
	if v := p.version(); v != valueVersion && v != groupVersion {
		return 0, false
	}
	for i, k := range s.keys {
		tag := k.cmac.sum(p.fields())
		if equalTags(&tag, (*[tagLen]byte)(p.tag())) {
			return i, true
		}
	}
	return 0, false
}

// token returns the token naming backend id under key k.
func (s *signer) token(k int, id string) uint64 { return s.keys[k].token(id) }

// groupToken returns the token naming group under key k; 0 for the
// default group, "".
func (s *signer) groupToken(k int, group string) uint64 {
	if group == "" {
		return 0
	}
	return s.keys[k].groupToken(group)
}

// signingKey is one configured key, reduced to the subkeys derived from
// it: HMAC-SHA-256(key, label), one per label, truncated to 128 bits for
// AES.
type signingKey struct {
	cmac   *cmac    // tags payloads
	tokens hmacPool // turns backend IDs into tokens
}

// newSigningKey derives the subkeys of key for the cookie called name.
func newSigningKey(key []byte, name string) (*signingKey, error) {
	m, err := newCMAC(derive(key, cmacLabel+"\x00"+name)[:16])
	if err != nil {
		return nil, err
	}
	k := &signingKey{cmac: m}
	k.tokens.init(derive(key, tokenLabel))
	return k, nil
}

func derive(key []byte, label string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(label))
	return h.Sum(nil)
}

// token returns the first 64 bits of HMAC(tokenKey, id), big-endian.
func (k *signingKey) token(id string) uint64 {
	st := k.tokens.get()
	st.in = append(st.in[:0], id...)
	t := binary.BigEndian.Uint64(st.sum())
	k.tokens.put(st)
	return t
}

// groupToken returns the first 48 bits of HMAC(tokenKey, 0x00 | group),
// big-endian: no backend ID starts with a zero byte, so a group's token is
// never a backend's. The one group in 2^48 whose token would be 0, which
// marks the default group, gets 1.
func (k *signingKey) groupToken(group string) uint64 {
	st := k.tokens.get()
	st.in = append(append(st.in[:0], 0), group...)
	t := binary.BigEndian.Uint64(st.sum()) >> 16
	k.tokens.put(st)
	return max(t, 1)
}

// hmacPool hands out HMAC-SHA-256 states for one key, so that computing a
// MAC allocates nothing: hmac.New allocates, and so does any buffer passed
// to a hash.Hash's Write, an interface method its argument escapes through.
type hmacPool struct{ pool sync.Pool }

// hmacState is an HMAC with the buffers its callers need. Callers put the
// message in in and call sum; both buffers live on the heap already, in the
// pool, so nothing the caller owns escapes.
type hmacState struct {
	h   hash.Hash
	in  []byte
	out [sha256.Size]byte
}

func (p *hmacPool) init(key []byte) {
	p.pool.New = func() any { return &hmacState{h: hmac.New(sha256.New, key)} }
}

func (p *hmacPool) get() *hmacState   { return p.pool.Get().(*hmacState) }
func (p *hmacPool) put(st *hmacState) { p.pool.Put(st) }

// sum returns the HMAC of st.in. The result aliases st.out: copy it before
// putting st back.
func (st *hmacState) sum() []byte {
	st.h.Reset()
	st.h.Write(st.in)
	return st.h.Sum(st.out[:0])
}
