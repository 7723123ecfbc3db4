package policy

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/affinitylb/affinity/backend"
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
		if v, _ := cookieValue(h, "affinity"); len(v) > maxCookieValueLen {
			t.Fatalf("value of %d bytes", len(v))
		}
		stripCookie(h, "affinity")
		if _, found := cookieValue(h, "affinity"); found {
			t.Fatalf("%q: cookie still there after stripping: %q", line, h["Cookie"])
		}
	})
}

// FuzzParsePrefixes checks that any -trusted-proxies value either parses
// into valid prefixes or fails with an error, never panics.
func FuzzParsePrefixes(f *testing.F) {
	for _, seed := range []string{"", "10.0.0.0/8", "10.0.0.1", "::1, 2001:db8::/32", "10.0.0.1/8", ",", "a/b/c", "::ffff:1.2.3.4/128"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, list string) {
		ps, err := ParsePrefixes(list)
		if err != nil {
			return
		}
		for _, p := range ps {
			if !p.IsValid() || p != p.Masked() {
				t.Fatalf("%q: prefix %v accepted", list, p)
			}
		}
	})
}

// FuzzAppCookieSave feeds hostile Set-Cookie lines from a backend to an
// AppCookie: it must not panic, must leave the backend's lines as they
// were, and may add at most one line of its own.
func FuzzAppCookieSave(f *testing.F) {
	for _, seed := range []string{
		"PHPSESSID=abc; Max-Age=120", "PHPSESSID=abc", "PHPSESSID=; Max-Age=0",
		"PHPSESSID=abc; Expires=Thu, 01 Jan 1970 00:00:00 GMT", "PHPSESSID=abc; Max-Age=99999999999999999999",
		"PHPSESSID", "=; ;", "PHPSESSID=abc; Max-Age=-1; Expires=garbage",
	} {
		f.Add(seed)
	}
	set, err := backend.NewSet([]backend.Config{{ID: "a", URL: "http://127.0.0.1:1"}})
	if err != nil {
		f.Fatal(err)
	}
	a, err := NewAppCookie("PHPSESSID", [][]byte{[]byte("0123456789abcdef0123456789abcdef")},
		WithClock(func() time.Time { return time.Unix(1_800_000_000, 0) }))
	if err != nil {
		f.Fatal(err)
	}
	b := set.Snapshot().Lookup("a")
	f.Fuzz(func(t *testing.T, line string) {
		resp := &http.Response{Header: http.Header{"Set-Cookie": {line}}}
		req, _ := http.NewRequest(http.MethodGet, "http://lb/", nil)
		a.Save(req, resp, b, Binding{Status: None})
		got := resp.Header["Set-Cookie"]
		if len(got) == 0 || got[0] != line || len(got) > 2 {
			t.Fatalf("%q: Set-Cookie lines became %q", line, got)
		}
	})
}
