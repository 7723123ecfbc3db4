package cookies

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

// FuzzCookieHeader feeds hostile Cookie headers to the scanner and to the
// stripper: neither may panic, the scanner never returns a value longer
// than its bound, and after stripping the cookie is gone and the others
// are still there.
func FuzzCookieHeader(f *testing.F) {
	for _, seed := range []string{
		"", "affinity=x", `affinity="x"`, "a=1; affinity=2; b=3", ";;;", "affinity", "=affinity",
		"affinity=" + strings.Repeat("A", 300), "affinityX=1; affinity =2", "a=1;\taffinity=2",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, line string) {
		h := http.Header{"Cookie": {line}}
		if v, _ := Value(h, "affinity"); len(v) > MaxValueLen {
			t.Fatalf("value of %d bytes", len(v))
		}
		Strip(h, "affinity")
		if _, found := Value(h, "affinity"); found {
			t.Fatalf("%q: cookie still there after stripping: %q", line, h["Cookie"])
		}
	})
}

// FuzzCookieValue holds Value and the Iter iterator to the plain reading
// of Value's documentation, cookieValuesSpec, on any pair of Cookie lines:
// Value returns the first value the specification finds, the iterator
// every one, in order.
func FuzzCookieValue(f *testing.F) {
	for _, seed := range []string{
		"affinity=x", " affinity \t= \"x\" ", "a=1; affinity=2", "affinityX=1;affinity=2", "affinity;affinity=3",
		"=affinity; affinity", "affinity==", strings.Repeat("a=1;", 70) + "affinity=2",
		"affinity= \"x\" \t;y", "affinity=;affinity=2", "a=affinity=1; affinity=2", "aaffinity=1;  affinity =2",
		// Over shortLine, searched rather than read pair by pair.
		strings.Repeat("x=affinity;", 30) + " affinity \t=v ;affinity", strings.Repeat("affinity", 40) + "=1; affinity=2",
	} {
		f.Add(seed, "b=2; affinity=y")
	}
	f.Fuzz(func(t *testing.T, line1, line2 string) {
		h := http.Header{"Cookie": {line1, line2}}
		want := cookieValuesSpec(h, "affinity")
		v, found := Value(h, "affinity")
		if len(want) == 0 && (found || v != "") || len(want) > 0 && (!found || v != want[0]) {
			t.Fatalf("%q: Value %q, %v; want the first of %q", h["Cookie"], v, found, want)
		}
		var got []string
		cs := Iterate(h, "affinity")
		for v, ok := cs.Next(); ok; v, ok = cs.Next() {
			got = append(got, v)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%q: iterated %q, want %q", h["Cookie"], got, want)
		}
	})
}

// cookieValuesSpec returns the values of every cookie called name in h's
// Cookie lines, as Value's documentation reads, written for clarity
// rather than speed: split into pairs, trim, cut at the first '='.
func cookieValuesSpec(h http.Header, name string) []string {
	var values []string
	for _, line := range h["Cookie"] {
		for pair := range strings.SplitSeq(line, ";") {
			pair = strings.Trim(pair, " \t")
			if pair == "" {
				continue
			}
			k, v, ok := strings.Cut(pair, "=")
			if !ok || strings.Trim(k, " \t") != name {
				continue
			}
			if len(v) > MaxValueLen {
				v = ""
			} else if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			values = append(values, v)
		}
	}
	return values
}
