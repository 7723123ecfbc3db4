package sticky

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// via is a handler's entry in the Via header of the requests it forwards
// (RFC 9110, section 7.6.3): its pseudonym, and the field values it adds,
// one per protocol version a request may arrive with, built once so that a
// request without a Via header costs no allocation.
type via struct {
	name                   string
	http10, http11, h2, h3 []string
}

// newVia returns the entries of the handler named name.
func newVia(name string) via {
	return via{
		name:   name,
		http10: []string{"1.0 " + name},
		http11: []string{"1.1 " + name},
		h2:     []string{"2 " + name},
		h3:     []string{"3 " + name},
	}
}

// randomPseudonym returns a name no other handler has: "affinity-" and 64
// random bits in hex.
func randomPseudonym() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand's contract)
	return "affinity-" + hex.EncodeToString(b[:])
}

// validPseudonym reports whether name can be a Via pseudonym: an RFC 9110
// token of at most 255 bytes.
func validPseudonym(name string) bool {
	if name == "" || len(name) > 255 {
		return false
	}
	for i := 0; i < len(name); i++ {
		if !isTchar(name[i]) {
			return false
		}
	}
	return true
}

// isTchar reports whether c may appear in an RFC 9110 token.
func isTchar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// entry returns the Via field value that says this handler received a
// request of protocol version major.minor: "1.1 name", "2 name".
// The slice may be shared between requests; it must not be modified.
func (v *via) entry(major, minor int) []string {
	switch {
	case major == 1 && minor == 0:
		return v.http10
	case major == 2:
		return v.h2
	case major == 3:
		return v.h3
	case major == 1 && minor == 1, major == 0: // 0: a request built by hand
		return v.http11
	}
	return []string{strconv.Itoa(major) + "." + strconv.Itoa(minor) + " " + v.name}
}

// add appends this handler's entry to the Via header of out, a request
// forwarded from one of protocol version major.minor, joining it to those
// already there with a comma, on one line. Without a Via header, or with
// only empty ones, it allocates nothing.
func (v *via) add(out http.Header, major, minor int) {
	e := v.entry(major, minor)
	var b strings.Builder
	for _, line := range out["Via"] {
		if line == "" {
			continue
		}
		if b.Len() == 0 {
			b.Grow(len(line) + 2 + len(e[0]))
		}
		b.WriteString(line)
		b.WriteString(", ")
	}
	if b.Len() == 0 {
		out["Via"] = e
		return
	}
	b.WriteString(e[0])
	out["Via"] = []string{b.String()}
}

// seen reports whether the Via header h carries this handler's entry: an
// entry whose received-by is its pseudonym. Every comma separates entries,
// even one inside a comment, so that no garbage before an entry can hide
// it; an entry that is not a protocol, blanks and a name is not ours. It
// allocates nothing.
func (v *via) seen(h http.Header) bool {
	for _, line := range h["Via"] {
		for len(line) > 0 {
			var e string
			if i := strings.IndexByte(line, ','); i >= 0 {
				e, line = line[:i], line[i+1:]
			} else {
				e, line = line, ""
			}
			if receivedBy(e) == v.name {
				return true
			}
		}
	}
	return false
}

// receivedBy returns the received-by of one Via entry,
// "received-protocol RWS received-by [RWS comment]", with blanks (spaces
// and tabs) around it; "" if it has none.
func receivedBy(e string) string {
	e = strings.TrimLeft(e, " \t")
	i := strings.IndexAny(e, " \t")
	if i <= 0 {
		return "" // no protocol, or no received-by
	}
	e = strings.TrimLeft(e[i:], " \t")
	if j := strings.IndexAny(e, " \t"); j >= 0 {
		e = e[:j]
	}
	return e
}

// errVia is what New reports for an invalid WithVia name.
func errVia(name string) error {
	return fmt.Errorf("sticky: WithVia(%q): want a token (letters, digits and !#$%%&'*+-.^_`|~) of 1 to 255 bytes", name)
}
