package policy

import (
	"encoding/base64"
	"net/http"
	"slices"
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

// FuzzAppCookieSave feeds hostile Set-Cookie lines from a backend, and
// hostile Cookie lines from the client, to an AppCookie: it must not
// panic, must leave the backend's lines as they were, and may add at most
// one line of its own, whose Path attribute, if any, is a valid one.
func FuzzAppCookieSave(f *testing.F) {
	for _, seed := range []string{
		"PHPSESSID=abc; Max-Age=120", "PHPSESSID=abc", "PHPSESSID=; Max-Age=0",
		"PHPSESSID=abc; Expires=Thu, 01 Jan 1970 00:00:00 GMT", "PHPSESSID=abc; Max-Age=99999999999999999999",
		"PHPSESSID", "=; ;", "PHPSESSID=abc; Max-Age=-1; Expires=garbage",
		"PHPSESSID=abc; Path=/a", "PHPSESSID=abc; Path=/a\x00b", "PHPSESSID=abc; path=", "PHPSESSID=abc; Path=x;Path=/y",
	} {
		f.Add(seed, "")
		f.Add(seed, "PHPSESSID=s1; affinity=garbage")
	}
	f.Add("theme=dark", "PHPSESSID=s1")
	f.Add("", `affinity=AgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA; PHPSESSID=""; PHPSESSID=s2`)
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
	f.Fuzz(func(t *testing.T, line, cookie string) {
		resp := &http.Response{Header: http.Header{"Set-Cookie": {line}}}
		req, _ := http.NewRequest(http.MethodGet, "http://lb/", nil)
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		a.Save(req, resp, b, a.Lookup(req, set.Snapshot()))
		got := resp.Header["Set-Cookie"]
		if len(got) == 0 || got[0] != line || len(got) > 2 {
			t.Fatalf("%q, %q: Set-Cookie lines became %q", line, cookie, got)
		}
		if len(got) == 2 {
			for attr := range strings.SplitSeq(got[1], "; ") {
				if p, ok := strings.CutPrefix(attr, "Path="); ok && validPath(p) != nil {
					t.Fatalf("%q: balancer cookie %q with Path %q", line, got[1], p)
				}
			}
		}
	})
}

// FuzzDecodePayload holds the cookie value decoder to encoding/base64's
// unpadded base64url: the same values accepted, decoded to the same bytes.
func FuzzDecodePayload(f *testing.F) {
	f.Add("AgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Add("_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-")
	f.Add("AgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\r\n")
	f.Add("AgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==")
	f.Add("+/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		var p payload
		ok := decodePayload(&p, s)
		want, err := base64.RawURLEncoding.DecodeString(s)
		wantOK := err == nil && len(want) == payloadLen && len(s) == valueLen
		if ok != wantOK {
			t.Fatalf("%q: decoded %v, encoding/base64 %v (%v, %d bytes)", s, ok, wantOK, err, len(want))
		}
		if ok && string(p[:]) != string(want) {
			t.Fatalf("%q: decoded %x, encoding/base64 %x", s, p, want)
		}
	})
}

// FuzzCookieValue holds cookieValue and the cookies iterator to the plain
// reading of cookieValue's documentation, cookieValuesSpec, on any pair of
// Cookie lines: cookieValue returns the first value the specification
// finds, the iterator every one, in order.
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
		v, found := cookieValue(h, "affinity")
		if len(want) == 0 && (found || v != "") || len(want) > 0 && (!found || v != want[0]) {
			t.Fatalf("%q: cookieValue %q, %v; want the first of %q", h["Cookie"], v, found, want)
		}
		var got []string
		cs := newCookies(h, "affinity")
		for v, ok := cs.next(); ok; v, ok = cs.next() {
			got = append(got, v)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%q: iterated %q, want %q", h["Cookie"], got, want)
		}
	})
}

// cookieValuesSpec returns the values of every cookie called name in h's
// Cookie lines, as cookieValue's documentation reads, written for clarity
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
			if len(v) > maxCookieValueLen {
				v = ""
			} else if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			values = append(values, v)
		}
	}
	return values
}
