package cli

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
)

const (
	testKey = "0123456789abcdef0123456789abcdef"
	oldKey  = "fedcba9876543210fedcba9876543210"
)

func TestParseFlags(t *testing.T) {
	short := sha256.Sum256([]byte("hunter2"))
	abc := sha256.Sum256([]byte("abc"))
	tests := []struct {
		name     string
		args     []string
		want     config // warnings compared separately
		warnings []string
	}{{
		name: "defaults with a key",
		args: []string{"-key", testKey},
		want: config{listen: "127.0.0.1:8080", policy: "cookie", keys: [][]byte{[]byte(testKey)}, cookieTTL: 15 * time.Minute, cookieSliding: true, picker: "leastconn", bodyTimeout: 30 * time.Second, writeTimeout: 30 * time.Second},
	}, {
		name: "every flag",
		args: []string{
			"-listen", ":9000",
			"-policy", "cookie",
			"-backends", "a=http://10.0.0.1:81, http://10.0.0.2:82",
			"-key", testKey,
			"-cookie-name", "lb",
			"-cookie-ttl", "0",
			"-cookie-sliding=false",
			"-cookie-max-life", "2h",
			"-strict",
			"-picker", "roundrobin",
		},
		want: config{
			listen:        ":9000",
			policy:        "cookie",
			backends:      []backend.Config{{ID: "a", URL: "http://10.0.0.1:81"}, {URL: "http://10.0.0.2:82"}},
			backendsFlag:  "a=http://10.0.0.1:81, http://10.0.0.2:82",
			keys:          [][]byte{[]byte(testKey)},
			cookieName:    "lb",
			cookieMaxLife: 2 * time.Hour,
			strict:        true,
			picker:        "roundrobin", bodyTimeout: 30 * time.Second, writeTimeout: 30 * time.Second,
		},
	}, {
		name: "blank backends mean demo servers",
		args: []string{"-key", testKey, "-backends", "  ", "-cookie-ttl", "1h"},
		want: config{listen: "127.0.0.1:8080", policy: "cookie", keys: [][]byte{[]byte(testKey)}, cookieTTL: time.Hour, cookieSliding: true, picker: "leastconn", bodyTimeout: 30 * time.Second, writeTimeout: 30 * time.Second},
	}, {
		name:     "short key is hashed, with a warning",
		args:     []string{"-key", "hunter2"},
		want:     config{listen: "127.0.0.1:8080", policy: "cookie", keys: [][]byte{short[:]}, cookieTTL: 15 * time.Minute, cookieSliding: true, picker: "leastconn", bodyTimeout: 30 * time.Second, writeTimeout: 30 * time.Second},
		warnings: []string{"weak"},
	}, {
		name: "16-byte key is used as is",
		args: []string{"-key", testKey[:16]},
		want: config{listen: "127.0.0.1:8080", policy: "cookie", keys: [][]byte{[]byte(testKey[:16])}, cookieTTL: 15 * time.Minute, cookieSliding: true, picker: "leastconn", bodyTimeout: 30 * time.Second, writeTimeout: 30 * time.Second},
	}, {
		name: "key list: the first signs",
		args: []string{"-key", testKey + "," + oldKey},
		want: config{listen: "127.0.0.1:8080", policy: "cookie", keys: [][]byte{[]byte(testKey), []byte(oldKey)}, cookieTTL: 15 * time.Minute, cookieSliding: true, picker: "leastconn", bodyTimeout: 30 * time.Second, writeTimeout: 30 * time.Second},
	}, {
		name:     "key list with short secrets, each hashed with a warning",
		args:     []string{"-key", testKey + ",hunter2,abc"},
		want:     config{listen: "127.0.0.1:8080", policy: "cookie", keys: [][]byte{[]byte(testKey), short[:], abc[:]}, cookieTTL: 15 * time.Minute, cookieSliding: true, picker: "leastconn", bodyTimeout: 30 * time.Second, writeTimeout: 30 * time.Second},
		warnings: []string{"secret 2 of 3 is shorter than 16 bytes", "secret 3 of 3 is shorter than 16 bytes"},
	}, {
		name: "key list secrets are verbatim, spaces included",
		args: []string{"-key", testKey + ", " + oldKey},
		want: config{listen: "127.0.0.1:8080", policy: "cookie", keys: [][]byte{[]byte(testKey), []byte(" " + oldKey)}, cookieTTL: 15 * time.Minute, cookieSliding: true, picker: "leastconn", bodyTimeout: 30 * time.Second, writeTimeout: 30 * time.Second},
	}, {
		name: "cookie: max life as long as the TTL",
		args: []string{"-key", testKey, "-cookie-ttl", "10m", "-cookie-max-life", "10m"},
		want: config{listen: "127.0.0.1:8080", policy: "cookie", keys: [][]byte{[]byte(testKey)}, cookieTTL: 10 * time.Minute, cookieSliding: true, cookieMaxLife: 10 * time.Minute, picker: "leastconn", bodyTimeout: 30 * time.Second, writeTimeout: 30 * time.Second},
	}, {
		name: "cookie: max life longer than the default TTL",
		args: []string{"-key", testKey, "-cookie-max-life", "8h"},
		want: config{listen: "127.0.0.1:8080", policy: "cookie", keys: [][]byte{[]byte(testKey)}, cookieTTL: 15 * time.Minute, cookieSliding: true, cookieMaxLife: 8 * time.Hour, picker: "leastconn", bodyTimeout: 30 * time.Second, writeTimeout: 30 * time.Second},
	}, {
		name: "cookie: a session cookie takes any max life of a second or more",
		args: []string{"-key", testKey, "-cookie-ttl", "0", "-cookie-max-life", "1s"},
		want: config{listen: "127.0.0.1:8080", policy: "cookie", keys: [][]byte{[]byte(testKey)}, cookieSliding: true, cookieMaxLife: time.Second, picker: "leastconn", bodyTimeout: 30 * time.Second, writeTimeout: 30 * time.Second},
	}, {
		name: "cookie: explicit defaults",
		args: []string{"-key", testKey, "-cookie-sliding", "-cookie-max-life", "0", "-strict=false"},
		want: config{listen: "127.0.0.1:8080", policy: "cookie", keys: [][]byte{[]byte(testKey)}, cookieTTL: 15 * time.Minute, cookieSliding: true, picker: "leastconn", bodyTimeout: 30 * time.Second, writeTimeout: 30 * time.Second},
	}, {
		name: "cookie: fixed expiry",
		args: []string{"-key", testKey, "-cookie-sliding=false"},
		want: config{listen: "127.0.0.1:8080", policy: "cookie", keys: [][]byte{[]byte(testKey)}, cookieTTL: 15 * time.Minute, picker: "leastconn", bodyTimeout: 30 * time.Second, writeTimeout: 30 * time.Second},
	}, {
		name: "appcookie: strict, with a max life of its own, shorter than the default TTL",
		args: []string{"-policy", "appcookie", "-app-cookie", "JSESSIONID", "-key", testKey, "-strict", "-cookie-max-life", "1s"},
		want: config{listen: "127.0.0.1:8080", policy: "appcookie", appCookie: "JSESSIONID", keys: [][]byte{[]byte(testKey)}, cookieTTL: 15 * time.Minute, cookieSliding: true,
			cookieMaxLife: time.Second, strict: true, picker: "leastconn", bodyTimeout: 30 * time.Second, writeTimeout: 30 * time.Second},
	}, {
		name: "header with bounded loads",
		args: []string{"-policy", "header", "-header", "X-Api-Key", "-load-factor", "1.25"},
		want: config{listen: "127.0.0.1:8080", policy: "header", header: "X-Api-Key", cookieTTL: 15 * time.Minute, cookieSliding: true, loadFactor: 1.25, picker: "leastconn", bodyTimeout: 30 * time.Second, writeTimeout: 30 * time.Second},
	}, {
		name: "query with the largest load factor",
		args: []string{"-policy", "query", "-query", "k", "-load-factor", "1048576"},
		want: config{listen: "127.0.0.1:8080", policy: "query", query: "k", cookieTTL: 15 * time.Minute, cookieSliding: true, loadFactor: 1 << 20, picker: "leastconn", bodyTimeout: 30 * time.Second, writeTimeout: 30 * time.Second},
	}, {
		name: "ip with a load factor of 0: keys never spill",
		args: []string{"-policy", "ip", "-load-factor", "0"},
		want: config{listen: "127.0.0.1:8080", policy: "ip", cookieTTL: 15 * time.Minute, cookieSliding: true, picker: "leastconn", bodyTimeout: 30 * time.Second, writeTimeout: 30 * time.Second},
	}, {
		name: "appcookie",
		args: []string{"-policy", "appcookie", "-app-cookie", "JSESSIONID", "-cookie-name", "lb", "-key", testKey + "," + oldKey},
		want: config{listen: "127.0.0.1:8080", policy: "appcookie", appCookie: "JSESSIONID", cookieName: "lb", keys: [][]byte{[]byte(testKey), []byte(oldKey)}, cookieTTL: 15 * time.Minute, cookieSliding: true, picker: "leastconn", bodyTimeout: 30 * time.Second, writeTimeout: 30 * time.Second},
	}, {
		name: "header",
		args: []string{"-policy", "header", "-header", "X-Api-Key", "-picker", "roundrobin"},
		want: config{listen: "127.0.0.1:8080", policy: "header", header: "X-Api-Key", cookieTTL: 15 * time.Minute, cookieSliding: true, picker: "roundrobin", bodyTimeout: 30 * time.Second, writeTimeout: 30 * time.Second},
	}, {
		name: "query",
		args: []string{"-policy", "query", "-query", "tenant id"},
		want: config{listen: "127.0.0.1:8080", policy: "query", query: "tenant id", cookieTTL: 15 * time.Minute, cookieSliding: true, picker: "leastconn", bodyTimeout: 30 * time.Second, writeTimeout: 30 * time.Second},
	}, {
		name: "cleartext HTTP/2",
		args: []string{"-key", testKey, "-h2c"},
		want: config{listen: "127.0.0.1:8080", policy: "cookie", keys: [][]byte{[]byte(testKey)}, cookieTTL: 15 * time.Minute, cookieSliding: true, picker: "leastconn", bodyTimeout: 30 * time.Second, writeTimeout: 30 * time.Second, h2c: true},
	}, {
		name: "ip, trusting nobody",
		args: []string{"-policy", "ip"},
		want: config{listen: "127.0.0.1:8080", policy: "ip", cookieTTL: 15 * time.Minute, cookieSliding: true, picker: "leastconn", bodyTimeout: 30 * time.Second, writeTimeout: 30 * time.Second},
	}, {
		name: "ip, empty trusted proxies",
		args: []string{"-policy", "ip", "-trusted-proxies", " , "},
		want: config{listen: "127.0.0.1:8080", policy: "ip", cookieTTL: 15 * time.Minute, cookieSliding: true, picker: "leastconn", bodyTimeout: 30 * time.Second, writeTimeout: 30 * time.Second},
	}, {
		name: "header with trusted proxies: they apply to every policy",
		args: []string{"-policy", "header", "-header", "X", "-trusted-proxies", "10.0.0.0/8"},
		want: config{
			listen: "127.0.0.1:8080", policy: "header", header: "X",
			trusted:   []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
			cookieTTL: 15 * time.Minute, cookieSliding: true,
			picker: "leastconn", bodyTimeout: 30 * time.Second, writeTimeout: 30 * time.Second,
		},
	}, {
		name: "ip with trusted proxies",
		args: []string{"-policy", "ip", "-trusted-proxies", "10.0.0.0/8, 192.0.2.7,2001:db8::/32"},
		want: config{
			listen:    "127.0.0.1:8080",
			policy:    "ip",
			trusted:   []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32"), netip.MustParsePrefix("2001:db8::/32")},
			cookieTTL: 15 * time.Minute, cookieSliding: true,
			picker: "leastconn", bodyTimeout: 30 * time.Second, writeTimeout: 30 * time.Second,
		},
	}, {
		name: "-key is ignored by key policies, unchecked and without warnings",
		args: []string{"-policy", "header", "-header", "X-Api-Key", "-key", "hunter2,,"},
		want: config{listen: "127.0.0.1:8080", policy: "header", header: "X-Api-Key", cookieTTL: 15 * time.Minute, cookieSliding: true, picker: "leastconn", bodyTimeout: 30 * time.Second, writeTimeout: 30 * time.Second},
	}, {
		name: "admin API and health checks",
		args: []string{"-key", testKey, "-admin", "127.0.0.1:9090", "-health-path", "/whoami", "-health-interval", "50ms"},
		want: config{listen: "127.0.0.1:8080", policy: "cookie", keys: [][]byte{[]byte(testKey)}, cookieTTL: 15 * time.Minute, cookieSliding: true, picker: "leastconn", bodyTimeout: 30 * time.Second, writeTimeout: 30 * time.Second,
			admin: "127.0.0.1:9090", healthPath: "/whoami", healthInterval: 50 * time.Millisecond},
	}, {
		name: "health checks every 5s by default; a query is allowed",
		args: []string{"-policy", "ip", "-health-path", "/health?full=1"},
		want: config{listen: "127.0.0.1:8080", policy: "ip", cookieTTL: 15 * time.Minute, cookieSliding: true, picker: "leastconn", bodyTimeout: 30 * time.Second, writeTimeout: 30 * time.Second, healthPath: "/health?full=1", healthInterval: 5 * time.Second},
	}, {
		name: "empty -health-path and -admin: off",
		args: []string{"-policy", "ip", "-health-path", "", "-admin", ""},
		want: config{listen: "127.0.0.1:8080", policy: "ip", cookieTTL: 15 * time.Minute, cookieSliding: true, picker: "leastconn", bodyTimeout: 30 * time.Second, writeTimeout: 30 * time.Second},
	}, {
		name: "admin on IPv6 loopback and localhost: no warning",
		args: []string{"-policy", "ip", "-admin", "[::1]:0", "-listen", "localhost:0"},
		want: config{listen: "localhost:0", policy: "ip", cookieTTL: 15 * time.Minute, cookieSliding: true, picker: "leastconn", bodyTimeout: 30 * time.Second, writeTimeout: 30 * time.Second, admin: "[::1]:0"},
	}, {
		name: "-eject-status, codes and classes",
		args: []string{"-policy", "ip", "-eject-status", "502,503,4xx"},
		want: config{listen: "127.0.0.1:8080", policy: "ip", cookieTTL: 15 * time.Minute, cookieSliding: true, picker: "leastconn", bodyTimeout: 30 * time.Second, writeTimeout: 30 * time.Second, ejectStatus: statusList{{502, 502}, {503, 503}, {400, 499}}},
	}, {
		name: "empty -eject-status: off",
		args: []string{"-policy", "ip", "-eject-status", ""},
		want: config{listen: "127.0.0.1:8080", policy: "ip", cookieTTL: 15 * time.Minute, cookieSliding: true, picker: "leastconn", bodyTimeout: 30 * time.Second, writeTimeout: 30 * time.Second},
	}, {
		name: "-body-timeout and -write-timeout",
		args: []string{"-policy", "ip", "-body-timeout", "5s", "-write-timeout", "1m"},
		want: config{listen: "127.0.0.1:8080", policy: "ip", cookieTTL: 15 * time.Minute, cookieSliding: true, picker: "leastconn", bodyTimeout: 5 * time.Second, writeTimeout: time.Minute},
	}, {
		name: "-body-timeout and -write-timeout 0: off",
		args: []string{"-policy", "ip", "-body-timeout", "0", "-write-timeout", "0s"},
		want: config{listen: "127.0.0.1:8080", policy: "ip", cookieTTL: 15 * time.Minute, cookieSliding: true, picker: "leastconn"},
	}, {
		name:     "admin on every interface, with a warning",
		args:     []string{"-policy", "ip", "-admin", ":9090"},
		want:     config{listen: "127.0.0.1:8080", policy: "ip", cookieTTL: 15 * time.Minute, cookieSliding: true, picker: "leastconn", bodyTimeout: 30 * time.Second, writeTimeout: 30 * time.Second, admin: ":9090"},
		warnings: []string{"-admin :9090 is not a loopback address: the admin API has no authentication"},
	}, {
		name:     "admin on a host name, with a warning",
		args:     []string{"-policy", "ip", "-admin", "lb.example:9090"},
		want:     config{listen: "127.0.0.1:8080", policy: "ip", cookieTTL: 15 * time.Minute, cookieSliding: true, picker: "leastconn", bodyTimeout: 30 * time.Second, writeTimeout: 30 * time.Second, admin: "lb.example:9090"},
		warnings: []string{"not a loopback address"},
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
			got.keySource = "" // see TestParseFlagsKeySources
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

func TestParseFlagsRandomKeyByPolicy(t *testing.T) {
	tests := []struct {
		args   []string
		random bool // a random key, with a warning; else no key and no warning
	}{
		{[]string{"-policy", "cookie"}, true},
		{[]string{"-policy", "appcookie", "-app-cookie", "PHPSESSID"}, true},
		{[]string{"-policy", "header", "-header", "X-Api-Key"}, false},
		{[]string{"-policy", "query", "-query", "key"}, false},
		{[]string{"-policy", "ip"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.args[1], func(t *testing.T) {
			got, err := parseFlags(tt.args, nil)
			require.NoError(t, err)
			if !tt.random {
				assert.Nil(t, got.keys)
				assert.Empty(t, got.warnings)
				return
			}
			require.Len(t, got.keys, 1)
			assert.Len(t, got.keys[0], 32)
			require.Len(t, got.warnings, 1)
			assert.Contains(t, got.warnings[0], "random key")
		})
	}
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
		{"bad group in -backends", []string{"-backends", "bl ue:x=http://h:1"}, `invalid value "bl ue:x=http://h:1" for -backends: `},
		{"group weight out of range", []string{"-group-weights", "blue=1001"}, `invalid value "blue=1001" for -group-weights: weight "1001" of group "blue": want 0 to 1000`},
		{"listen without port", []string{"-listen", "localhost"}, `"localhost" for -listen`},
		{"empty key", []string{"-key", ""}, `"" for -key`},
		{"empty cookie name", []string{"-cookie-name", ""}, `"" for -cookie-name`},
		{"unknown flag", []string{"-port", "80"}, "-port"},
		{"stray argument", []string{"-key", testKey, "extra"}, `"extra"`},

		{"unknown policy", []string{"-policy", "sticky"}, `"sticky" for -policy`},
		{"empty policy", []string{"-policy", ""}, `"" for -policy`},
		{"appcookie without -app-cookie", []string{"-policy", "appcookie"}, "-policy appcookie needs -app-cookie"},
		{"empty -app-cookie", []string{"-policy", "appcookie", "-app-cookie", ""}, `"" for -app-cookie`},
		{"-app-cookie named like the affinity cookie", []string{"-policy", "appcookie", "-app-cookie", "affinity"}, `"affinity" for -app-cookie`},
		{"-app-cookie named like -cookie-name", []string{"-policy", "appcookie", "-app-cookie", "lb", "-cookie-name", "lb"}, `"lb" for -app-cookie`},
		{"-cookie-ttl with appcookie", []string{"-policy", "appcookie", "-app-cookie", "s", "-cookie-ttl", "15m"}, "-cookie-ttl does not apply to -policy appcookie"},
		{"header without -header", []string{"-policy", "header"}, "-policy header needs -header"},
		{"empty -header", []string{"-policy", "header", "-header", ""}, `"" for -header`},
		{"query without -query", []string{"-policy", "query"}, "-policy query needs -query"},
		{"empty -query", []string{"-policy", "query", "-query", ""}, `"" for -query`},
		{"unparsable trusted proxy", []string{"-policy", "ip", "-trusted-proxies", "10.0.0.0/8,banana"}, `prefix "banana"`},
		{"trusted proxy with host bits", []string{"-policy", "ip", "-trusted-proxies", "10.0.0.1/8"}, "prefix 10.0.0.1/8"},
		{"-header with cookie", []string{"-header", "X-Api-Key"}, "-header needs -policy header"},
		{"-query with header", []string{"-policy", "header", "-header", "X", "-query", "key"}, "-query needs -policy query"},
		{"-app-cookie with cookie", []string{"-app-cookie", "s"}, "-app-cookie needs -policy appcookie"},
		{"-cookie-name with ip", []string{"-policy", "ip", "-cookie-name", "lb"}, "-cookie-name needs -policy cookie or appcookie"},
		{"-cookie-ttl with query", []string{"-policy", "query", "-query", "k", "-cookie-ttl", "1h"}, "-cookie-ttl needs -policy cookie"},
		{"-cookie-sliding with appcookie", []string{"-policy", "appcookie", "-app-cookie", "s", "-cookie-sliding=false"}, "-cookie-sliding does not apply to -policy appcookie"},
		{"-tls-cert without -tls-key", []string{"-tls-cert", "cert.pem"}, "-tls-cert needs -tls-key"},
		{"-tls-key without -tls-cert", []string{"-tls-key", "key.pem"}, "-tls-key needs -tls-cert"},
		{"-h2c with -tls-cert", []string{"-tls-cert", "cert.pem", "-tls-key", "key.pem", "-h2c"}, "-h2c does not apply with -tls-cert"},
		{"empty -tls-cert", []string{"-tls-cert", "", "-tls-key", "key.pem"}, `"" for -tls-cert`},
		{"unparsable -h2c", []string{"-h2c=maybe"}, `"maybe" for -h2c`},
		{"-cookie-sliding with appcookie, even its default", []string{"-policy", "appcookie", "-app-cookie", "s", "-cookie-sliding"}, "-cookie-sliding does not apply to -policy appcookie"},
		{"-cookie-sliding with header", []string{"-policy", "header", "-header", "X", "-cookie-sliding=false"}, "-cookie-sliding needs -policy cookie"},
		{"unparsable -cookie-sliding", []string{"-cookie-sliding=maybe"}, `"maybe" for -cookie-sliding`},
		{"-cookie-max-life with ip", []string{"-policy", "ip", "-cookie-max-life", "1h"}, "-cookie-max-life needs -policy cookie or appcookie"},
		{"negative -cookie-max-life", []string{"-cookie-max-life", "-1s"}, `"-1s" for -cookie-max-life: negative`},
		{"negative -cookie-max-life with appcookie", []string{"-policy", "appcookie", "-app-cookie", "s", "-cookie-max-life", "-1h"}, `"-1h0m0s" for -cookie-max-life: negative`},
		{"-cookie-max-life under a second", []string{"-cookie-ttl", "0", "-cookie-max-life", "500ms"}, `"500ms" for -cookie-max-life: under a second`},
		{"-cookie-max-life under a second with appcookie", []string{"-policy", "appcookie", "-app-cookie", "s", "-cookie-max-life", "1ns"}, `"1ns" for -cookie-max-life: under a second`},
		{"-cookie-max-life shorter than -cookie-ttl", []string{"-cookie-ttl", "1h", "-cookie-max-life", "30m"}, `"30m0s" for -cookie-max-life: shorter than -cookie-ttl "1h0m0s"`},
		{"-cookie-max-life shorter than the default -cookie-ttl", []string{"-cookie-max-life", "1m"}, `"1m0s" for -cookie-max-life: shorter than -cookie-ttl "15m0s"`},
		{"unparsable -cookie-max-life", []string{"-cookie-max-life", "forever"}, `"forever" for flag -cookie-max-life`},
		{"-strict with query", []string{"-policy", "query", "-query", "k", "-strict"}, "-strict needs -policy cookie or appcookie"},
		{"-strict=false with ip", []string{"-policy", "ip", "-strict=false"}, "-strict needs -policy cookie or appcookie"},
		{"unparsable -strict", []string{"-strict=yes"}, `"yes" for -strict`},
		{"-load-factor with cookie", []string{"-load-factor", "1.25"}, "-load-factor needs -policy header, query or ip"},
		{"-load-factor 0 with appcookie", []string{"-policy", "appcookie", "-app-cookie", "s", "-load-factor", "0"}, "-load-factor needs -policy header, query or ip"},
		{"-load-factor 1", []string{"-policy", "ip", "-load-factor", "1"}, `"1" for -load-factor: want over 1, or 0`},
		{"-load-factor under 1", []string{"-policy", "header", "-header", "X", "-load-factor", "0.5"}, `"0.5" for -load-factor: want over 1`},
		{"-load-factor barely over 0", []string{"-policy", "ip", "-load-factor", "1e-9"}, `"1e-09" for -load-factor: want over 1`},
		{"negative -load-factor", []string{"-policy", "ip", "-load-factor", "-1.25"}, `"-1.25" for -load-factor: want over 1`},
		{"NaN -load-factor", []string{"-policy", "ip", "-load-factor", "NaN"}, `"NaN" for -load-factor: want over 1`},
		{"infinite -load-factor", []string{"-policy", "ip", "-load-factor", "inf"}, `"+Inf" for -load-factor`},
		{"-load-factor of minus infinity", []string{"-policy", "ip", "-load-factor", "-Inf"}, `"-Inf" for -load-factor: want over 1`},
		{"-load-factor over the library's maximum", []string{"-policy", "query", "-query", "k", "-load-factor", "1048577"}, `"1.048577e+06" for -load-factor`},
		{"unparsable -load-factor", []string{"-policy", "ip", "-load-factor", "lots"}, `"lots" for flag -load-factor`},
		{"key list with an empty secret", []string{"-key", testKey + ",," + oldKey}, "invalid value for -key: secret 2 of 3: empty"},
		{"key list with a trailing comma", []string{"-key", testKey + ","}, "secret 2 of 2: empty"},
		{"key list with a leading comma", []string{"-key", "," + testKey}, "secret 1 of 2: empty"},

		{"-admin without port", []string{"-admin", "localhost"}, `"localhost" for -admin`},
		{"-admin a port only", []string{"-admin", "9090"}, `"9090" for -admin`},
		{"-health-interval without -health-path", []string{"-health-interval", "1s"}, "-health-interval needs -health-path"},
		{"-health-interval with an empty -health-path", []string{"-health-path", "", "-health-interval", "1s"}, "-health-interval needs -health-path"},
		{"zero -health-interval", []string{"-health-path", "/h", "-health-interval", "0"}, `"0s" for -health-interval: must be positive`},
		{"negative -health-interval", []string{"-health-path", "/h", "-health-interval", "-1s"}, `"-1s" for -health-interval: must be positive`},
		{"-health-interval below the library's minimum", []string{"-health-path", "/h", "-health-interval", "5ms"}, `"5ms" for -health-interval`},
		{"unparsable -health-interval", []string{"-health-path", "/h", "-health-interval", "soon"}, `"soon" for flag -health-interval`},
		{"negative -body-timeout", []string{"-body-timeout", "-1s"}, `invalid value "-1s" for -body-timeout: negative`},
		{"negative -write-timeout", []string{"-write-timeout", "-30s"}, `invalid value "-30s" for -write-timeout: negative`},
		{"unparsable -body-timeout", []string{"-body-timeout", "soon"}, `"soon" for flag -body-timeout`},
		{"-health-path without a slash", []string{"-health-path", "whoami"}, `"whoami" for -health-path`},
		{"-health-path naming a host", []string{"-health-path", "//evil.example/x"}, `"//evil.example/x" for -health-path`},
		{"-health-path with a fragment", []string{"-health-path", "/h#x"}, `"/h#x" for -health-path`},

		{"-eject-status with a word", []string{"-eject-status", "5xx,oops"}, `"5xx,oops" for -eject-status: "oops" is neither`},
		{"-eject-status under 100", []string{"-eject-status", "099"}, `"099" is neither a status code (100 to 599)`},
		{"-eject-status over 599", []string{"-eject-status", "600"}, `"600" is neither`},
		{"-eject-status class 6xx", []string{"-eject-status", "6xx"}, `"6xx" is neither`},
		{"-eject-status class 0xx", []string{"-eject-status", "0xx"}, `"0xx" is neither`},
		{"-eject-status two digits", []string{"-eject-status", "50"}, `"50" is neither`},
		{"-eject-status four digits", []string{"-eject-status", "5000"}, `"5000" is neither`},
		{"-eject-status with a sign", []string{"-eject-status", "+50"}, `"+50" is neither`},
		{"-eject-status half a class", []string{"-eject-status", "50x"}, `"50x" is neither`},
		{"-eject-status a range", []string{"-eject-status", "500-599"}, `"500-599" is neither`},
		{"-eject-status spaces inside", []string{"-eject-status", "50 0"}, `"50 0" is neither`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var help bytes.Buffer
			_, err := parseFlags(tt.args, &help)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.NotContains(t, err.Error(), "\n", "one line")
			assert.NotContains(t, err.Error(), testKey, "errors never show a key")
			assert.Empty(t, help.String(), "no usage on errors")
		})
	}
}

func TestParseFlagsHelp(t *testing.T) {
	var help bytes.Buffer
	_, err := parseFlags([]string{"-h"}, &help)
	require.True(t, errors.Is(err, flag.ErrHelp), "got %v", err)
	for _, f := range []string{"-listen", "-backends", "-policy", "-key", "-cookie-name", "-cookie-ttl", "-app-cookie", "-header", "-query", "-trusted-proxies", "-picker", "-admin", "-health-path", "-health-interval",
		"-cookie-sliding", "-cookie-max-life", "-strict", "-load-factor", "-eject-status", "-admin-token-file", "-body-timeout", "-write-timeout", "-tls-cert", "-tls-key", "-h2c", "-group-weights", "GROUP:NAME=URL"} {
		assert.Contains(t, help.String(), f)
	}
}

func TestParseStatusList(t *testing.T) {
	tests := []struct {
		name   string
		list   string
		counts []int // codes the list holds
		not    []int // codes it does not
	}{
		{"empty: none", "", nil, []int{100, 200, 404, 500, 502, 599}},
		{"blank: none", " , ", nil, []int{500}},
		{"one code", "502", []int{502}, []int{500, 501, 503}},
		{"codes, with spaces", " 502 ,503,504 ", []int{502, 503, 504}, []int{500, 505}},
		{"a class", "5xx", []int{500, 502, 599}, []int{499, 600, 200}},
		{"a class, upper case", "5XX", []int{500, 599}, []int{499}},
		{"every class", "1xx,2xX,3Xx,4xx,5xx", []int{100, 200, 302, 404, 599}, []int{99, 600}},
		{"bounds", "100,599", []int{100, 599}, []int{101, 598}},
		{"a code and a class overlapping", "503,5xx,503", []int{500, 503}, []int{429}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := parseStatusList(tt.list)
			require.NoError(t, err)
			for _, c := range tt.counts {
				assert.True(t, l.contains(c), "%d", c)
			}
			for _, c := range tt.not {
				assert.False(t, l.contains(c), "%d", c)
			}
			if tt.counts == nil {
				assert.Empty(t, l, "an empty list turns status-based ejection off")
			}
		})
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
		name: "groups",
		list: "blue:b1=http://127.0.0.1:9001, green : g1 = http://127.0.0.1:9002,app3=http://127.0.0.1:9003",
		want: []backend.Config{
			{Group: "blue", ID: "b1", URL: "http://127.0.0.1:9001"},
			{Group: "green", ID: "g1", URL: "http://127.0.0.1:9002"},
			{ID: "app3", URL: "http://127.0.0.1:9003"},
		},
	}, {
		name: "an empty group is the default group",
		list: ":app1=http://127.0.0.1:9001",
		want: []backend.Config{{ID: "app1", URL: "http://127.0.0.1:9001"}},
	}, {
		name: "a colon after a '/' is the URL's",
		list: "http://127.0.0.1:9001/x:y=z",
		want: []backend.Config{{URL: "http://127.0.0.1:9001/x:y=z"}},
	}, {
		name: "a group without a name",
		list: "blue:=http://127.0.0.1:9001",
		err:  `"blue:=http://127.0.0.1:9001": empty name`,
	}, {
		name: "a bad group name",
		list: "blue green:b1=http://127.0.0.1:9001",
		err:  `"blue green"`,
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

func TestParseFlagsAdminToken(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), mode))
		return p
	}
	missing := filepath.Join(dir, "missing")
	tests := []struct {
		name    string
		args    []string
		token   string // "" for an error
		err     string // the error contains this
		warning string // the one warning contains this; "": none
	}{
		{name: "a token", args: []string{"-admin", "127.0.0.1:0", "-admin-token-file", file("plain", "s3cret-token", 0o600)}, token: "s3cret-token"},
		{name: "a trailing newline is trimmed", args: []string{"-admin", "127.0.0.1:0", "-admin-token-file", file("lf", "s3cret\n", 0o600)}, token: "s3cret"},
		{name: "a trailing CRLF is trimmed", args: []string{"-admin", "127.0.0.1:0", "-admin-token-file", file("crlf", "s3cret\r\n", 0o600)}, token: "s3cret"},
		{name: "a file others may read: a warning", args: []string{"-admin", "127.0.0.1:0", "-admin-token-file", file("open", "s3cret\n", 0o644)}, token: "s3cret", warning: "may be read by other users"},
		{name: "not on loopback: a warning that the token goes in clear", args: []string{"-admin", ":0", "-admin-token-file", file("remote", "s3cret", 0o600)}, token: "s3cret", warning: "in clear text"},

		{name: "without -admin", args: []string{"-admin-token-file", file("alone", "s3cret", 0o600)}, err: "-admin-token-file needs -admin"},
		{name: "with an empty -admin", args: []string{"-admin", "", "-admin-token-file", file("alone2", "s3cret", 0o600)}, err: "-admin-token-file needs -admin"},
		{name: "an empty value", args: []string{"-admin", "127.0.0.1:0", "-admin-token-file", ""}, err: `invalid value "" for -admin-token-file: empty`},
		{name: "a missing file", args: []string{"-admin", "127.0.0.1:0", "-admin-token-file", missing}, err: `invalid value "` + missing + `" for -admin-token-file: open`},
		{name: "a directory", args: []string{"-admin", "127.0.0.1:0", "-admin-token-file", dir}, err: `for -admin-token-file: read`},
		{name: "an empty file", args: []string{"-admin", "127.0.0.1:0", "-admin-token-file", file("empty", "", 0o600)}, err: "for -admin-token-file: the file holds no token"},
		{name: "a newline only", args: []string{"-admin", "127.0.0.1:0", "-admin-token-file", file("newline", "\n", 0o600)}, err: "the file holds no token"},
		{name: "two newlines", args: []string{"-admin", "127.0.0.1:0", "-admin-token-file", file("newlines", "s3cret\n\n", 0o600)}, err: "more than one line"},
		{name: "two lines", args: []string{"-admin", "127.0.0.1:0", "-admin-token-file", file("lines", "s3cret\nmore\n", 0o600)}, err: "more than one line"},
		{name: "a space", args: []string{"-admin", "127.0.0.1:0", "-admin-token-file", file("space", "s3cret token", 0o600)}, err: "a space"},
		{name: "non-ASCII", args: []string{"-admin", "127.0.0.1:0", "-admin-token-file", file("utf8", "s3crét", 0o600)}, err: "non-ASCII"},
		{name: "too long", args: []string{"-admin", "127.0.0.1:0", "-admin-token-file", file("long", strings.Repeat("a", maxTokenLen+1), 0o600)}, err: "over 4096 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseFlags(append([]string{"-policy", "ip"}, tt.args...), nil)
			if tt.token == "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.err)
				assert.NotContains(t, err.Error(), "\n", "one line")
				assert.NotContains(t, err.Error(), "s3cret", "errors never show the token")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, []byte(tt.token), cfg.adminToken)
			if tt.warning == "" {
				assert.Empty(t, cfg.warnings)
				return
			}
			require.Len(t, cfg.warnings, 1)
			assert.Contains(t, cfg.warnings[0], tt.warning)
			assert.NotContains(t, cfg.warnings[0], "s3cret", "warnings never show the token")
		})
	}
	cfg, err := parseFlags([]string{"-policy", "ip", "-admin", "127.0.0.1:0"}, nil)
	require.NoError(t, err)
	assert.Nil(t, cfg.adminToken, "no -admin-token-file: no token")
}
