package cookies

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestCookieValue(t *testing.T) {
	many := make([]string, 200)
	for i := range many {
		many[i] = fmt.Sprintf("c%d=%d", i, i)
	}
	tests := []struct {
		name      string
		lines     []string
		wantValue string
		wantFound bool
	}{
		{name: "no header"},
		{name: "empty header", lines: []string{""}},
		{name: "only", lines: []string{"affinity=v1"}, wantValue: "v1", wantFound: true},
		{name: "among others", lines: []string{"a=1; affinity=v1; b=2"}, wantValue: "v1", wantFound: true},
		{name: "first of two", lines: []string{"affinity=v1; affinity=v2"}, wantValue: "v1", wantFound: true},
		{name: "second header line", lines: []string{"a=1; b=2", "c=3; affinity=v1"}, wantValue: "v1", wantFound: true},
		{name: "first header line wins", lines: []string{"affinity=v1", "affinity=v2"}, wantValue: "v1", wantFound: true},
		{name: "spaces and tabs", lines: []string{" a=1 ;\t affinity=v1 \t; b=2"}, wantValue: "v1", wantFound: true},
		{name: "blank before equals", lines: []string{"affinity =v1"}, wantValue: "v1", wantFound: true},
		{name: "no spaces", lines: []string{"a=1;affinity=v1;b=2"}, wantValue: "v1", wantFound: true},
		{name: "empty pairs", lines: []string{";;  ; affinity=v1;"}, wantValue: "v1", wantFound: true},
		{name: "quoted", lines: []string{`affinity="v1"`}, wantValue: "v1", wantFound: true},
		{name: "lone quote kept", lines: []string{`affinity="`}, wantValue: `"`, wantFound: true},
		{name: "half quoted kept", lines: []string{`affinity="v1`}, wantValue: `"v1`, wantFound: true},
		{name: "empty value", lines: []string{"affinity="}, wantValue: "", wantFound: true},
		{name: "empty quoted value", lines: []string{`affinity=""`}, wantValue: "", wantFound: true},
		{name: "equals in value", lines: []string{"affinity=a=b"}, wantValue: "a=b", wantFound: true},
		{name: "first, blanks kept after equals", lines: []string{"affinity= v1 \t; b=2"}, wantValue: " v1", wantFound: true},
		{name: "first, quoted, then others", lines: []string{`affinity="v1" ; b=2`}, wantValue: "v1", wantFound: true},
		{name: "first, empty, then others", lines: []string{"affinity=; affinity=v2"}, wantValue: "", wantFound: true},
		{name: "longer name", lines: []string{"affinityX=v1"}},
		{name: "longer name first", lines: []string{"affinityX=v1; affinity=v2"}, wantValue: "v2", wantFound: true},
		{name: "shorter name", lines: []string{"affinit=v1"}},
		{name: "prefixed name", lines: []string{"xaffinity=v1"}},
		{name: "case differs", lines: []string{"Affinity=v1"}},
		{name: "name without equals", lines: []string{"affinity"}},
		{name: "value is the name", lines: []string{"a=affinity"}},
		{
			name:      "after 200 others",
			lines:     []string{strings.Join(many, "; ") + "; affinity=v1"},
			wantValue: "v1", wantFound: true,
		},
		{
			name:      "after 200 others over lines",
			lines:     []string{strings.Join(many[:40], "; "), strings.Join(many[40:], "; "), "affinity=v1"},
			wantValue: "v1", wantFound: true,
		},
		{name: "name inside a value", lines: []string{"a=x;affinity;b=affinity=v0; c= affinity=v1"}},
		{name: "name after a blank inside a value", lines: []string{"a=x affinity=v0"}},
		{name: "overlapping names", lines: []string{"aaffinity=v0; affinityaffinity=v1"}},
		{name: "blanks, then the name", lines: []string{"a=1; \t affinity \t = v1"}, wantValue: " v1", wantFound: true},
		{
			name:      "longest value",
			lines:     []string{"affinity=" + strings.Repeat("v", MaxValueLen)},
			wantValue: strings.Repeat("v", MaxValueLen), wantFound: true,
		},
		{
			name:      "overlong value, first",
			lines:     []string{"affinity=" + strings.Repeat("v", MaxValueLen+1)},
			wantValue: "", wantFound: true,
		},
		{
			name:      "overlong value",
			lines:     []string{"a=1; affinity=" + strings.Repeat("v", MaxValueLen+1) + "; affinity=v2"},
			wantValue: "", wantFound: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for _, l := range tt.lines {
				h.Add("Cookie", l)
			}
			value, found := Value(h, "affinity")
			assert.Equal(t, tt.wantValue, value)
			assert.Equal(t, tt.wantFound, found)
		})
	}
}

func TestCookiesIterator(t *testing.T) {
	for _, tc := range []struct {
		name  string
		lines []string
		want  []string
	}{
		{"no header", nil, nil},
		{"one", []string{"affinity=v1"}, []string{"v1"}},
		{"two on a line", []string{"affinity=v1; a=1; affinity=v2"}, []string{"v1", "v2"}},
		{"over lines", []string{"affinity=v1", "a=1", "b=2; affinity=\"v2\" ", "affinity="}, []string{"v1", "v2", ""}},
		{"overlong in between", []string{"affinity=v1; affinity=" + strings.Repeat("v", MaxValueLen+1) + "; affinity=v3"}, []string{"v1", "", "v3"}},
		{"others only", []string{"affinityX=1; xaffinity=2; a=affinity=3", "affinity"}, nil},
		{"after 1000 others", []string{strings.Repeat("session=0123456789; ", 1000) + "affinity=v1;affinity=v2"}, []string{"v1", "v2"}},
		{"long and short lines", []string{strings.Repeat("x=affinity; ", 30) + "affinity =v1; yaffinity=0", "affinity= v2", "a=1; affinity=v3"}, []string{"v1", " v2", "v3"}},
		{"long line, names in values", []string{strings.Repeat("a=affinity=x;b= affinity=y; ", 20) + "\taffinity\t=\tv1\t"}, []string{"\tv1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.lines != nil {
				h["Cookie"] = tc.lines
			}
			var got []string
			cs := Iterate(h, "affinity")
			for v, ok := cs.Next(); ok; v, ok = cs.Next() {
				got = append(got, v)
			}
			assert.Equal(t, tc.want, got)
			_, done := cs.Next()
			assert.False(t, done, "an iterator at its end stays there")
		})
	}
}

func TestCookieValueAllocs(t *testing.T) {
	h := http.Header{"Cookie": {"a=1; b=2", `c=3; affinity="v1"; d=4`}}
	allocs := testing.AllocsPerRun(100, func() {
		if v, _ := Value(h, "affinity"); v != "v1" {
			t.Fatalf("value %q", v)
		}
	})
	assert.Zero(t, allocs)

	h = http.Header{"Cookie": {strings.Repeat("a=1; ", 200) + "affinity=v1; affinity=v2"}}
	allocs = testing.AllocsPerRun(100, func() {
		cs := Iterate(h, "affinity")
		n := 0
		for _, ok := cs.Next(); ok; _, ok = cs.Next() {
			n++
		}
		if n != 2 {
			t.Fatalf("%d values", n)
		}
	})
	assert.Zero(t, allocs, "iterating")
}

func TestStripCookie(t *testing.T) {
	for _, tc := range []struct {
		name  string
		lines []string
		want  []string
	}{
		{"absent", []string{"a=1; b=2"}, []string{"a=1; b=2"}},
		{"alone", []string{"affinity=xyz"}, nil},
		{"alone, with blanks", []string{" affinity\t= xyz "}, nil},
		{"alone, quoted", []string{`affinity="xyz"`}, nil},
		{"another, alone", []string{"PHPSESSID=abc"}, []string{"PHPSESSID=abc"}},
		{"another, alone, longer name", []string{"affinityX=1"}, []string{"affinityX=1"}},
		{"alone, no value", []string{"affinity"}, []string{"affinity"}},
		{"alone, empty line", []string{""}, []string{""}},
		{"first", []string{"affinity=xyz; PHPSESSID=abc"}, []string{"PHPSESSID=abc"}},
		{"middle", []string{"a=1; affinity=xyz;  b=2"}, []string{"a=1; b=2"}},
		{"twice, over two lines", []string{"affinity=1", "x=2; affinity=3"}, []string{"x=2"}},
		{"prefix of another name", []string{"affinityX=1; xaffinity=2"}, []string{"affinityX=1; xaffinity=2"}},
		{"as a value only", []string{"a=affinity"}, []string{"a=affinity"}},
		{"no line", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.lines != nil {
				h["Cookie"] = slices.Clone(tc.lines)
			}
			Strip(h, "affinity")
			assert.Equal(t, tc.want, h["Cookie"])
		})
	}
}

func TestValidToken(t *testing.T) {
	for _, tc := range []struct {
		name    string
		s       string
		wantErr string // "": a token
	}{
		{"token", "affinity", ""},
		{"all token characters", "!#$%&'*+-.^_`|~09AZaz", ""},
		{"empty", "", "must not be empty"},
		{"space", "a b", `character ' ' not allowed in a token`},
		{"tab", "a\tb", `character '\t' not allowed in a token`},
		{"equals", "a=b", `character '=' not allowed in a token`},
		{"semicolon", "a;b", `character ';' not allowed in a token`},
		{"colon", "a:", `character ':' not allowed in a token`},
		{"quote", `a"`, `character '"' not allowed in a token`},
		{"control", "a\x00", `character '\x00' not allowed in a token`},
		{"DEL", "a\x7f", `character '\x7f' not allowed in a token`},
		{"non-ASCII", "café", `character 'Ã' not allowed in a token`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidToken(tc.s)
			if tc.wantErr == "" {
				assert.NoError(t, err)
				return
			}
			assert.EqualError(t, err, tc.wantErr)
		})
	}
}
