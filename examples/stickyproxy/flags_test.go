package main

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"flag"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
)

const testKey = "0123456789abcdef0123456789abcdef"

func TestParseFlags(t *testing.T) {
	short := sha256.Sum256([]byte("hunter2"))
	tests := []struct {
		name     string
		args     []string
		want     config // warnings compared separately
		warnings []string
	}{{
		name: "defaults with a key",
		args: []string{"-key", testKey},
		want: config{listen: "127.0.0.1:8080", keys: [][]byte{[]byte(testKey)}, cookieTTL: 15 * time.Minute, picker: "leastconn"},
	}, {
		name: "every flag",
		args: []string{
			"-listen", ":9000",
			"-backends", "a=http://10.0.0.1:81, http://10.0.0.2:82",
			"-key", testKey,
			"-cookie-name", "lb",
			"-cookie-ttl", "0",
			"-picker", "roundrobin",
		},
		want: config{
			listen:     ":9000",
			backends:   []backend.Config{{ID: "a", URL: "http://10.0.0.1:81"}, {URL: "http://10.0.0.2:82"}},
			keys:       [][]byte{[]byte(testKey)},
			cookieName: "lb",
			picker:     "roundrobin",
		},
	}, {
		name: "blank backends mean demo servers",
		args: []string{"-key", testKey, "-backends", "  ", "-cookie-ttl", "1h"},
		want: config{listen: "127.0.0.1:8080", keys: [][]byte{[]byte(testKey)}, cookieTTL: time.Hour, picker: "leastconn"},
	}, {
		name:     "short key is hashed, with a warning",
		args:     []string{"-key", "hunter2"},
		want:     config{listen: "127.0.0.1:8080", keys: [][]byte{short[:]}, cookieTTL: 15 * time.Minute, picker: "leastconn"},
		warnings: []string{"weak"},
	}, {
		name: "16-byte key is used as is",
		args: []string{"-key", testKey[:16]},
		want: config{listen: "127.0.0.1:8080", keys: [][]byte{[]byte(testKey[:16])}, cookieTTL: 15 * time.Minute, picker: "leastconn"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseFlags(tt.args, nil)
			require.NoError(t, err)
			require.Len(t, got.warnings, len(tt.warnings))
			for i, w := range tt.warnings {
				assert.Contains(t, got.warnings[i], w)
				assert.NotContains(t, got.warnings[i], "hunter2", "warnings never show the key")
			}
			got.warnings = nil
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestParseFlagsRandomKey(t *testing.T) {
	a, err := parseFlags(nil, nil)
	require.NoError(t, err)
	b, err := parseFlags(nil, nil)
	require.NoError(t, err)

	require.Len(t, a.keys, 1)
	assert.Len(t, a.keys[0], 32)
	assert.NotEqual(t, a.keys, b.keys, "a new random key each time")
	require.Len(t, a.warnings, 1)
	assert.Contains(t, a.warnings[0], "random key")
	assert.Contains(t, a.warnings[0], "replicas will not agree")
}

func TestParseFlagsInvalid(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string // the error names this
	}{
		{"unknown picker", []string{"-picker", "random"}, `"random" for -picker`},
		{"negative ttl", []string{"-cookie-ttl", "-1s"}, `"-1s" for -cookie-ttl`},
		{"unparsable ttl", []string{"-cookie-ttl", "soon"}, `"soon" for flag -cookie-ttl`},
		{"bad backend URL", []string{"-backends", "app1=ftp://h:1"}, `"ftp://h:1"`},
		{"duplicate backend", []string{"-backends", "a=http://h:1,a=http://h:2"}, `duplicate id "a"`},
		{"bad backend name", []string{"-backends", "a b=http://h:1"}, `"a b"`},
		{"no backends", []string{"-backends", ", ,"}, `", ," for -backends`},
		{"listen without port", []string{"-listen", "localhost"}, `"localhost" for -listen`},
		{"empty key", []string{"-key", ""}, `"" for -key`},
		{"empty cookie name", []string{"-cookie-name", ""}, `"" for -cookie-name`},
		{"unknown flag", []string{"-port", "80"}, "-port"},
		{"stray argument", []string{"-key", testKey, "extra"}, `"extra"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var help bytes.Buffer
			_, err := parseFlags(tt.args, &help)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.NotContains(t, err.Error(), "\n", "one line")
			assert.Empty(t, help.String(), "no usage on errors")
		})
	}
}

func TestParseFlagsHelp(t *testing.T) {
	var help bytes.Buffer
	_, err := parseFlags([]string{"-h"}, &help)
	require.True(t, errors.Is(err, flag.ErrHelp), "got %v", err)
	for _, f := range []string{"-listen", "-backends", "-key", "-cookie-name", "-cookie-ttl", "-picker"} {
		assert.Contains(t, help.String(), f)
	}
}

func TestParseBackends(t *testing.T) {
	tests := []struct {
		name string
		list string
		want []backend.Config
		err  string // the error contains this; "" for none
	}{{
		name: "names",
		list: "app1=http://127.0.0.1:9001,app2=https://example.com/base",
		want: []backend.Config{{ID: "app1", URL: "http://127.0.0.1:9001"}, {ID: "app2", URL: "https://example.com/base"}},
	}, {
		name: "no names",
		list: "http://127.0.0.1:9001,http://127.0.0.1:9002",
		want: []backend.Config{{URL: "http://127.0.0.1:9001"}, {URL: "http://127.0.0.1:9002"}},
	}, {
		name: "mixed, with whitespace",
		list: "  app1 = http://127.0.0.1:9001 ,\thttp://127.0.0.1:9002  ",
		want: []backend.Config{{ID: "app1", URL: "http://127.0.0.1:9001"}, {URL: "http://127.0.0.1:9002"}},
	}, {
		name: "empty items are skipped",
		list: ",http://127.0.0.1:9001,, ,http://127.0.0.1:9002,",
		want: []backend.Config{{URL: "http://127.0.0.1:9001"}, {URL: "http://127.0.0.1:9002"}},
	}, {
		name: "'=' inside a URL is not a name",
		list: "http://127.0.0.1:9001/a=b",
		want: []backend.Config{{URL: "http://127.0.0.1:9001/a=b"}},
	}, {
		name: "duplicate names",
		list: "app1=http://127.0.0.1:9001,app1=http://127.0.0.1:9002",
		err:  `duplicate id "app1"`,
	}, {
		name: "duplicate URLs without names",
		list: "http://127.0.0.1:9001,http://127.0.0.1:9001",
		err:  "duplicate id",
	}, {
		name: "bad scheme",
		list: "app1=ftp://127.0.0.1:9001",
		err:  `"ftp://127.0.0.1:9001"`,
	}, {
		name: "no scheme",
		list: "127.0.0.1:9001",
		err:  `"127.0.0.1:9001"`,
	}, {
		name: "bad port",
		list: "http://127.0.0.1:99999",
		err:  `"http://127.0.0.1:99999"`,
	}, {
		name: "bad name",
		list: "app 1=http://127.0.0.1:9001",
		err:  `"app 1"`,
	}, {
		name: "empty name",
		list: "=http://127.0.0.1:9001",
		err:  `"=http://127.0.0.1:9001": empty name`,
	}, {
		name: "nothing",
		list: " , ",
		err:  "no backends",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseBackends(tt.list)
			if tt.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}
