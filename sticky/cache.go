package sticky

import (
	"net/http"
	"strings"
)

// privatize makes a response that sets a binding uncacheable by shared
// caches, as HAProxy's "nocache" does: a cached Set-Cookie would bind
// everyone behind the cache to one backend. It keeps the response's other
// Cache-Control directives, so browsers may still cache it, drops those
// that invite shared caches (public, s-maxage) and adds private, unless
// no-store or private, for the whole response, is already there.
func privatize(h http.Header) {
	lines := h["Cache-Control"]
	if len(lines) == 0 {
		h["Cache-Control"] = []string{"private"}
		return
	}
	var kept []string
	private := false
	for _, line := range lines {
		for d := range strings.SplitSeq(line, ",") {
			d = strings.TrimSpace(d)
			name, _, qualified := strings.Cut(d, "=")
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "":
				continue
			case "public", "s-maxage":
				continue
			case "private", "no-store":
				// private="field, ..." keeps only those fields from
				// shared caches, which may store the rest.
				private = private || !qualified
			}
			kept = append(kept, d)
		}
	}
	if !private {
		kept = append(kept, "private")
	}
	h["Cache-Control"] = []string{strings.Join(kept, ", ")}
}
