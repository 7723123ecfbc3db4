// Package cookies reads and edits the Cookie header of a request without
// parsing it into [http.Cookie] values: the scans of the cookie policies
// (package cookie) and of policy.CookieKey, which allocate nothing and run
// in time linear in the header's length, however many cookies it holds.
package cookies

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// MaxValueLen bounds the cookie values the scans report: longer ones are
// reported found but empty, which no policy accepts.
const MaxValueLen = 256

// Value returns the value of the first cookie called name in h's Cookie
// lines, and whether there was one. Unlike [http.Request.Cookie] it
// allocates nothing: it neither parses nor copies the other cookies.
//
// Pairs are separated by ';' and trimmed of spaces and tabs; names compare
// exactly; one pair of double quotes around the value is removed. A pair
// without '=' is a cookie with an empty name (RFC 6265bis) and never
// matches. Every pair of every line is looked at, however many there are:
// the header's size is bounded by the server's limit, and the work is
// linear in it. A value longer than [MaxValueLen] bytes is reported found
// but empty, which no policy accepts.
func Value(h http.Header, name string) (value string, found bool) {
	cs := Iterate(h, name)
	return cs.Next()
}

// Iter iterates over the values of the cookies called name in Cookie
// lines, in the order the client sent them: browsers send the cookie with
// the longest Path first. It reads pairs as [Value] does, allocates
// nothing, and its work over all calls to Next and NextRaw is linear in
// the lines' length. A copy of an Iter goes on from where the original
// stood, on its own. The zero Iter has no cookies.
type Iter struct {
	line  string   // the line being read
	pos   int      // where the scan of line resumes
	lines []string // the lines after it
	name  string
}

// Iterate returns an iterator over the cookies called name in h. name
// must be a token ([ValidToken]): the scans rely on it holding no blanks,
// '=' or ';'.
func Iterate(h http.Header, name string) Iter {
	lines := h["Cookie"]
	if len(lines) == 0 {
		return Iter{name: name}
	}
	return Iter{line: lines[0], lines: lines[1:], name: name}
}

// Next returns the value of the next cookie called name, unquoted as
// [Value] returns it, and false once there are no more.
func (c *Iter) Next() (value string, ok bool) {
	// The usual case first, without the general scan: the cookie opens
	// the first line, as it does when a client sends only the balancer's
	// cookie, or when a browser lists it before the application's, set
	// after it.
	if c.pos == 0 && len(c.line) > len(c.name) && c.line[len(c.name)] == '=' && c.line[:len(c.name)] == c.name {
		v := c.line[len(c.name)+1:]
		if i := strings.IndexByte(v, ';'); i >= 0 {
			v = v[:i]
		}
		c.pos = len(c.name) + 1 + len(v)
		return unquote(trimTrailingBlanks(v)), true
	}
	v, ok := c.NextRaw()
	return unquote(v), ok
}

// NextRaw returns the value of the next cookie called name, trimmed of
// trailing blanks but not unquoted nor bounded in length, and false once
// there are no more.
//
// A short line, as most are, is read pair by pair: c.pos is where a pair
// starts, or the ';' before it. A longer one is searched for the name
// (nextMatch), which skips the other cookies several times faster.
func (c *Iter) NextRaw() (string, bool) {
	name := c.name
	for {
		line := c.line
		if c.pos >= len(line) {
			if len(c.lines) == 0 {
				c.line, c.pos = "", 0
				return "", false
			}
			c.line, c.lines, c.pos = c.lines[0], c.lines[1:], 0
			continue
		}
		if len(line) > shortLine {
			if v, ok := c.nextMatch(); ok {
				return v, true
			}
			continue
		}
		pair := line[c.pos:]
		if i := strings.IndexByte(pair, ';'); i >= 0 {
			pair = pair[:i]
			c.pos += i + 1
		} else {
			c.pos = len(line)
		}
		// The pair's name is what precedes its first '=', trimmed. name,
		// a token, has neither '=' nor blanks: it matches if the pair
		// starts with it, after any blanks, and then, after any blanks,
		// has '='.
		v, ok := strings.CutPrefix(trimLeadingBlanks(pair), name)
		if !ok {
			continue
		}
		if v = trimLeadingBlanks(v); v != "" && v[0] == '=' {
			return trimTrailingBlanks(v[1:]), true
		}
	}
}

// shortLine is the length up to which a Cookie line is read pair by pair,
// the cheaper way for the few cookies most lines hold.
const shortLine = 256

// nextMatch searches the current line from c.pos for the next cookie
// called name, and returns its value as NextRaw does, or false at the end
// of the line.
//
// It finds the name with strings.Index rather than splitting every pair:
// an occurrence is a cookie called name if only blanks stand between it
// and the ';' before it (or the start of the line), and only blanks
// between it and the '=' after it. A name, a token, holds neither blanks
// nor '=' nor ';', so this is exactly the pairs' reading.
func (c *Iter) nextMatch() (string, bool) {
	line, name := c.line, c.name
	for c.pos < len(line) {
		i := strings.Index(line[c.pos:], name)
		if i < 0 {
			break
		}
		start := c.pos + i
		c.pos = start + 1 // unless it matches, look further from here
		if !pairStart(line, start) {
			continue
		}
		j := start + len(name)
		for j < len(line) && (line[j] == ' ' || line[j] == '\t') {
			j++
		}
		if j == len(line) || line[j] != '=' {
			continue
		}
		v := line[j+1:]
		if k := strings.IndexByte(v, ';'); k >= 0 {
			v = v[:k]
		}
		c.pos = j + 1 + len(v)
		return trimTrailingBlanks(v), true
	}
	c.pos = len(line)
	return "", false
}

// pairStart reports whether i is where a pair of line starts, once
// trimmed: only blanks stand between i and the ';' before it, or the
// start of the line.
func pairStart(line string, i int) bool {
	for i > 0 && (line[i-1] == ' ' || line[i-1] == '\t') {
		i--
	}
	return i == 0 || line[i-1] == ';'
}

// unquote returns the cookie value v without one pair of double quotes
// around it, or empty if v is longer than MaxValueLen.
func unquote(v string) string {
	if len(v) > MaxValueLen {
		return ""
	}
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	}
	return v
}

// trimBlanks trims leading and trailing spaces and tabs.
func trimBlanks(s string) string { return trimTrailingBlanks(trimLeadingBlanks(s)) }

// trimLeadingBlanks trims leading spaces and tabs.
func trimLeadingBlanks(s string) string {
	for s != "" && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	return s
}

// trimTrailingBlanks trims trailing spaces and tabs.
func trimTrailingBlanks(s string) string {
	for s != "" && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// Strip removes every cookie called name from h's Cookie lines, as [Value]
// reads them, leaving the other cookies as they were and dropping lines
// left empty. It allocates only when there is something to remove.
func Strip(h http.Header, name string) {
	lines := h["Cookie"]
	if len(lines) == 1 && strings.IndexByte(lines[0], ';') < 0 {
		// One cookie, the usual case on a request that carries only the
		// balancer's: removed with the line, or left as it is.
		if k, _, ok := strings.Cut(lines[0], "="); ok && trimBlanks(k) == name {
			delete(h, "Cookie")
		}
		return
	}
	stripFromLines(h, lines, name)
}

// stripFromLines is Strip's general case, apart so that the usual one
// runs through less code.
func stripFromLines(h http.Header, lines []string, name string) {
	kept := lines[:0:0]
	changed := false
	for _, line := range lines {
		if !strings.Contains(line, name) {
			kept = append(kept, line)
			continue
		}
		var b strings.Builder
		for rest := line; rest != ""; {
			var pair string
			pair, rest, _ = strings.Cut(rest, ";")
			// Match names as Value does, so that whatever it finds
			// is stripped.
			if k, _, ok := strings.Cut(pair, "="); ok && trimBlanks(k) == name {
				changed = true
				continue
			}
			if trimBlanks(pair) == "" {
				continue
			}
			if b.Len() > 0 {
				b.WriteString("; ")
			}
			b.WriteString(trimBlanks(pair))
		}
		if b.Len() > 0 {
			kept = append(kept, b.String())
		}
	}
	if !changed {
		return
	}
	if len(kept) == 0 {
		delete(h, "Cookie")
		return
	}
	h["Cookie"] = kept
}

// ValidToken reports why s is not an HTTP token (RFC 9110), as cookie
// names (RFC 6265) and header names must be: one or more printable ASCII
// characters other than spaces and separators. It returns nil for a token.
// The error names the fault, not s: callers say what s was.
func ValidToken(s string) error {
	if s == "" {
		return errors.New("must not be empty")
	}
	for i := 0; i < len(s); i++ {
		if b := s[i]; b <= ' ' || b >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?={}`, b) >= 0 {
			return fmt.Errorf("character %q not allowed in a token", b)
		}
	}
	return nil
}

// ValidPath checks a cookie's Path attribute: '/' first, then printable ASCII
// without ';', which would end the attribute. The error says what is
// wrong, not with what: callers name p.
func ValidPath(p string) error {
	if !strings.HasPrefix(p, "/") {
		return errors.New("does not begin with '/'")
	}
	for i := 0; i < len(p); i++ {
		if b := p[i]; b < ' ' || b >= 0x7f || b == ';' {
			return fmt.Errorf("character %q not allowed", b)
		}
	}
	return nil
}
