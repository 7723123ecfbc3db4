package cookie

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/internal/cookies"
)

// FuzzAppSave feeds hostile Set-Cookie lines from a backend, and
// hostile Cookie lines from the client, to an App: it must not
// panic, must leave the backend's lines as they were, and may add at most
// one line of its own, whose Path attribute, if any, is a valid one.
func FuzzAppSave(f *testing.F) {
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
	a, err := NewApp("PHPSESSID", [][]byte{[]byte("0123456789abcdef0123456789abcdef")},
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
				if p, ok := strings.CutPrefix(attr, "Path="); ok && cookies.ValidPath(p) != nil {
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
	f.Add("AwAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		var p payload
		ok := decodePayload(&p, s)
		want, err := base64.RawURLEncoding.DecodeString(s)
		wantOK := err == nil && (len(want) == payloadLen && len(s) == valueLen || len(want) == groupPayloadLen && len(s) == groupValueLen)
		if ok != wantOK {
			t.Fatalf("%q: decoded %v, encoding/base64 %v (%v, %d bytes)", s, ok, wantOK, err, len(want))
		}
		if ok && string(p[:len(want)]) != string(want) {
			t.Fatalf("%q: decoded %x, encoding/base64 %x", s, p, want)
		}
	})
}
