package policy

import (
	"net/http"
	"strings"
)

// Bounds on the work cookieValue does for one request.
const (
	maxCookiePairs    = 64  // cookies examined, over all Cookie lines
	maxCookieValueLen = 256 // longer values are reported empty
)

// cookieValue returns the value of the first cookie called name in h's
// Cookie lines, and whether there was one. Unlike [http.Request.Cookie] it
// allocates nothing: it neither parses nor copies the other cookies.
//
// Pairs are separated by ';' and trimmed of spaces and tabs; names compare
// exactly; one pair of double quotes around the value is removed. A pair
// without '=' is a cookie with an empty name (RFC 6265bis) and never
// matches. The scan gives up after maxCookiePairs pairs, reporting none
// found, and a value longer than maxCookieValueLen bytes is reported found
// but empty, which no policy accepts.
func cookieValue(h http.Header, name string) (value string, found bool) {
	lines := h["Cookie"]
	if len(lines) == 0 {
		return "", false
	}
	// The usual case first, without the general scan: the cookie opens
	// the first line, as it does when a client sends only the balancer's
	// cookie, or when a browser lists it before the application's, set
	// after it.
	if v, ok := strings.CutPrefix(lines[0], name); ok && v != "" && v[0] == '=' {
		v = v[1:]
		if i := strings.IndexByte(v, ';'); i >= 0 {
			v = v[:i]
		}
		return unquote(trimTrailingBlanks(v)), true
	}
	pairs := 0
	for _, line := range lines {
		for line != "" {
			pair := line
			if i := strings.IndexByte(line, ';'); i >= 0 {
				pair, line = line[:i], line[i+1:]
			} else {
				line = ""
			}
			pair = trimBlanks(pair)
			if pair == "" {
				continue
			}
			if pairs++; pairs > maxCookiePairs {
				return "", false
			}
			// The pair's name is what precedes its first '=', trimmed.
			// name, a token, has neither '=' nor blanks: it matches if
			// the pair starts with it and then, after any blanks, has
			// '='.
			v, ok := strings.CutPrefix(pair, name)
			if !ok {
				continue
			}
			v = trimLeadingBlanks(v)
			if v == "" || v[0] != '=' {
				continue
			}
			return unquote(v[1:]), true
		}
	}
	return "", false
}

// unquote returns the cookie value v without one pair of double quotes
// around it, or empty if v is longer than maxCookieValueLen.
func unquote(v string) string {
	if len(v) > maxCookieValueLen {
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

// stripCookie removes every cookie called name from h's Cookie lines,
// leaving the other cookies as they were and dropping lines left empty. It
// allocates only when there is something to remove.
func stripCookie(h http.Header, name string) {
	lines := h["Cookie"]
	if len(lines) == 1 && strings.IndexByte(lines[0], ';') < 0 {
		// One cookie, the usual case on a request that carries only the
		// balancer's: removed with the line, or left as it is.
		if k, _, ok := strings.Cut(lines[0], "="); ok && trimBlanks(k) == name {
			delete(h, "Cookie")
		}
		return
	}
	stripCookieFromLines(h, lines, name)
}

// stripCookieFromLines is stripCookie's general case, apart so that the
// usual one runs through less code.
func stripCookieFromLines(h http.Header, lines []string, name string) {
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
			// Match names as cookieValue does, so that whatever it finds
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
