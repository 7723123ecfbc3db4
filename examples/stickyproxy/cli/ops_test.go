package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// ptr returns a pointer to s.
func ptr(s string) *string { return &s }

// The flags -weights to -version: parsing, refusals, and their effects
// through run.

func TestParseFlagsOps(t *testing.T) {
	two, zero := 2, 0
	tests := []struct {
		name  string
		args  []string
		check func(t *testing.T, c config)
	}{
		{"defaults: all unset, the library's", nil, func(t *testing.T, c config) {
			assert.Equal(t, ops{keySource: "random"}, c.ops)
		}},
		{"weights by name", []string{"-backends", "a=http://h:1,b=http://h:2,http://h:3", "-weights", " a=3, ,b=65536 "}, func(t *testing.T, c config) {
			assert.Equal(t, map[string]int{"a": 3, "b": 65536}, c.weights)
		}},
		{"weights of the demo servers", []string{"-weights", "app2=5"}, func(t *testing.T, c config) {
			assert.Equal(t, map[string]int{"app2": 5}, c.weights)
		}},
		{"slow start", []string{"-slow-start", "30s"}, func(t *testing.T, c config) {
			assert.Equal(t, 30*time.Second, c.slowStart)
		}},
		{"stall timeout", []string{"-stall-timeout", "1m"}, func(t *testing.T, c config) {
			require.NotNil(t, c.stallTimeout)
			assert.Equal(t, time.Minute, *c.stallTimeout)
		}},
		{"stall detection off", []string{"-stall-timeout", "0"}, func(t *testing.T, c config) {
			require.NotNil(t, c.stallTimeout)
			assert.Zero(t, *c.stallTimeout)
		}},
		{"stall timeout not given", nil, func(t *testing.T, c config) {
			assert.Nil(t, c.stallTimeout)
		}},
		{"health settings", []string{"-health-path", "/h", "-health-interval", "1s", "-health-timeout", "1s", "-health-rise", "1", "-health-fall", "5", "-health-status", "200-204"}, func(t *testing.T, c config) {
			assert.Equal(t, time.Second, c.healthTimeout)
			assert.Equal(t, [4]int{1, 5, 200, 204}, [4]int{c.healthRise, c.healthFall, c.healthMinStatus, c.healthMaxStatus})
		}},
		{"health status, one code", []string{"-health-path", "/h", "-health-status", "204"}, func(t *testing.T, c config) {
			assert.Equal(t, [2]int{204, 204}, [2]int{c.healthMinStatus, c.healthMaxStatus})
		}},
		{"health defaults stay unset", []string{"-health-path", "/h"}, func(t *testing.T, c config) {
			assert.Zero(t, c.healthTimeout+time.Duration(c.healthRise+c.healthFall+c.healthMinStatus+c.healthMaxStatus))
		}},
		{"retries", []string{"-retries", "2"}, func(t *testing.T, c config) { assert.Equal(t, &two, c.retries) }},
		{"no retries, strict", []string{"-retries", "0", "-strict"}, func(t *testing.T, c config) { assert.Equal(t, &zero, c.retries) }},
		{"log level debug", []string{"-log-level", "debug"}, func(t *testing.T, c config) { assert.Equal(t, slog.LevelDebug, c.logLevel) }},
		{"log level WARN", []string{"-log-level", "WARN"}, func(t *testing.T, c config) { assert.Equal(t, slog.LevelWarn, c.logLevel) }},
		{"log level error", []string{"-log-level", "error"}, func(t *testing.T, c config) { assert.Equal(t, slog.LevelError, c.logLevel) }},
		{"access log", []string{"-access-log"}, func(t *testing.T, c config) { assert.True(t, c.accessLog) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(keyEnv, "")
			os.Unsetenv(keyEnv)
			c, err := parseFlags(tt.args, nil)
			require.NoError(t, err)
			tt.check(t, c)
		})
	}
}

func TestParseFlagsOpsInvalid(t *testing.T) {
	backends := []string{"-backends", "a=http://h:1,http://h:2"}
	hp := []string{"-health-path", "/h"}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"-weights unknown name", append(backends, "-weights", "b=2"), `invalid value "b=2" for -weights: no backend named "b"`},
		{"-weights a bare URL has no name", append(backends, "-weights", "http://h:2=2"), `for -weights: no backend named "http://h:2"`},
		{"-weights unknown demo name", []string{"-weights", "app4=2"}, `"app4=2" for -weights: no backend named "app4"`},
		{"-weights zero", append(backends, "-weights", "a=0"), `"a=0" for -weights: weight "0" of "a": want 1 to 65536`},
		{"-weights over the maximum", append(backends, "-weights", "a=65537"), `weight "65537" of "a": want 1 to 65536`},
		{"-weights not a number", append(backends, "-weights", "a=heavy"), `weight "heavy" of "a"`},
		{"-weights no weight", append(backends, "-weights", "a"), `"a" is not NAME=WEIGHT`},
		{"-weights twice", append(backends, "-weights", "a=1,a=2"), `"a" is given twice`},
		{"-weights empty", append(backends, "-weights", " , "), `" , " for -weights: no weights`},
		{"negative -slow-start", []string{"-slow-start", "-1s"}, `invalid value "-1s" for -slow-start: negative`},
		{"negative -stall-timeout", []string{"-stall-timeout", "-1s"}, `invalid value "-1s" for -stall-timeout: negative`},
		{"unparsable -slow-start", []string{"-slow-start", "soon"}, `"soon" for flag -slow-start`},
		{"-health-timeout alone", []string{"-health-timeout", "1s"}, "-health-timeout needs -health-path"},
		{"-health-rise alone", []string{"-health-rise", "1"}, "-health-rise needs -health-path"},
		{"-health-fall alone", []string{"-health-fall", "1"}, "-health-fall needs -health-path"},
		{"-health-status alone", []string{"-health-status", "200"}, "-health-status needs -health-path"},
		{"negative -health-timeout", append(hp, "-health-timeout", "-1s"), `invalid value "-1s" for -health-timeout: negative`},
		{"-health-timeout over -health-interval", append(hp, "-health-interval", "1s", "-health-timeout", "2s"), `invalid value "2s" for -health-timeout: backend: HealthCheck.Timeout 2s: more than Interval 1s`},
		{"zero -health-rise", append(hp, "-health-rise", "0"), `invalid value "0" for -health-rise: want at least 1`},
		{"negative -health-fall", append(hp, "-health-fall", "-3"), `invalid value "-3" for -health-fall: want at least 1`},
		{"unparsable -health-fall", append(hp, "-health-fall", "many"), `"many" for flag -health-fall`},
		{"-health-status reversed", append(hp, "-health-status", "399-200"), `invalid value "399-200" for -health-status: 399 is over 200`},
		{"-health-status out of range", append(hp, "-health-status", "200-600"), `"200-600" for -health-status: "600" is not a status code`},
		{"-health-status a class", append(hp, "-health-status", "2xx"), `"2xx" for -health-status: "2xx" is not a status code`},
		{"-health-status empty", append(hp, "-health-status", ""), `"" for -health-status`},
		{"negative -retries", []string{"-retries", "-1"}, `invalid value "-1" for -retries: negative`},
		{"-retries with -strict", []string{"-retries", "1", "-strict"}, `invalid value "1" for -retries: -strict`},
		{"unparsable -retries", []string{"-retries", "x"}, `"x" for flag -retries`},
		{"unknown -log-level", []string{"-log-level", "trace"}, `invalid value "trace" for -log-level: want debug, info, warn or error`},
		{"empty -log-level", []string{"-log-level", ""}, `invalid value "" for -log-level`},
		{"unparsable -access-log", []string{"-access-log=sometimes"}, `"sometimes" for -access-log`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			status := run(ctx, tt.args, &stdout, &stderr, func(listening) { t.Error("proxy started") })
			assert.Equal(t, 2, status)
			assert.Contains(t, stderr.String(), "stickyproxy: ")
			assert.Contains(t, stderr.String(), tt.want)
			assert.Equal(t, 1, strings.Count(stderr.String(), "\n"), "one line: %q", stderr.String())
		})
	}
}

// writeFile writes content to a new file of mode 0600 and returns its
// path.
func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keys")
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	return path
}

func TestParseFlagsKeySources(t *testing.T) {
	fromKey, err := parseFlags([]string{"-key", testKey + "," + oldKey + ",tiny7"}, nil)
	require.NoError(t, err)
	want := fromKey.keys

	tests := []struct {
		name     string
		env      *string // nil: unset
		args     []string
		source   string
		warnings []string
	}{
		{"-key-file, one secret a line", nil, []string{"-key-file", writeFile(t, testKey+"\n"+oldKey+"\ntiny7\n")}, "-key-file", []string{"line 3 is shorter than 16 bytes"}},
		{"-key-file, CRLF and blank lines", nil, []string{"-key-file", writeFile(t, "\r\n"+testKey+"\r\n  \n"+oldKey+"\r\n\ntiny7")}, "-key-file", []string{"line 6 is shorter"}},
		{"environment", ptr(testKey + "," + oldKey + ",tiny7"), nil, keyEnv, []string{keyEnv + ": secret 3 of 3 is shorter"}},
		{"-key over the environment, with a warning", ptr("ignored-secret-in-env"), []string{"-key", testKey + "," + oldKey + ",tiny7"}, "-key", []string{"secret 3 of 3", keyEnv + " is set but -key is given"}},
		{"-key-file over the environment", ptr(""), []string{"-key-file", writeFile(t, testKey+"\n"+oldKey+"\ntiny7")}, "-key-file", []string{"line 3", keyEnv + " is set but -key-file is given"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(keyEnv, "")
			if tt.env == nil {
				os.Unsetenv(keyEnv)
			} else {
				t.Setenv(keyEnv, *tt.env)
			}
			c, err := parseFlags(tt.args, nil)
			require.NoError(t, err)
			assert.Equal(t, want, c.keys, "the same keys as -key gives")
			assert.Equal(t, tt.source, c.keySource)
			require.Len(t, c.warnings, len(tt.warnings), "%q", c.warnings)
			for i, w := range tt.warnings {
				assert.Contains(t, c.warnings[i], w)
				assert.NotContains(t, c.warnings[i], "tiny7", "warnings never show a secret")
			}
		})
	}

	t.Run("a file others may read, with a warning", func(t *testing.T) {
		path := writeFile(t, testKey)
		require.NoError(t, os.Chmod(path, 0o644))
		c, err := parseFlags([]string{"-key-file", path}, nil)
		require.NoError(t, err)
		require.Len(t, c.warnings, 1)
		assert.Contains(t, c.warnings[0], "may be read by other users")
	})
	t.Run("key policies ignore all three", func(t *testing.T) {
		t.Setenv(keyEnv, "")
		c, err := parseFlags([]string{"-policy", "ip", "-key-file", "/nonexistent"}, nil)
		require.NoError(t, err)
		assert.Nil(t, c.keys)
		assert.Empty(t, c.warnings)
	})
}

func TestParseFlagsKeySourcesInvalid(t *testing.T) {
	tests := []struct {
		name string
		env  *string
		args []string
		want string
	}{
		{"-key and -key-file", nil, []string{"-key", testKey, "-key-file", writeFile(t, oldKey)}, "-key and -key-file both give the signing secrets: give one"},
		{"-key-file missing", nil, []string{"-key-file", "/nonexistent/keys"}, `invalid value "/nonexistent/keys" for -key-file: open`},
		{"-key-file empty name", nil, []string{"-key-file", ""}, `invalid value "" for -key-file: empty`},
		{"-key-file blank", nil, []string{"-key-file", writeFile(t, "\n \r\n\n")}, `for -key-file: the file holds no secret`},
		{"-key-file too big", nil, []string{"-key-file", writeFile(t, strings.Repeat(testKey+"\n", 3000))}, `for -key-file: over 65536 bytes`},
		{"empty environment", ptr(""), nil, `invalid value "" for ` + keyEnv + `: empty`},
		{"environment with an empty secret", ptr(testKey + ",," + oldKey), nil, "invalid value for " + keyEnv + ": secret 2 of 3: empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(keyEnv, "")
			if tt.env == nil {
				os.Unsetenv(keyEnv)
			} else {
				t.Setenv(keyEnv, *tt.env)
			}
			var stdout, stderr bytes.Buffer
			status := run(t.Context(), tt.args, &stdout, &stderr, func(listening) { t.Error("proxy started") })
			assert.Equal(t, 2, status)
			assert.Contains(t, stderr.String(), tt.want)
			assert.Equal(t, 1, strings.Count(stderr.String(), "\n"), "one line: %q", stderr.String())
			assert.NotContains(t, stderr.String(), testKey, "errors never show a key")
			assert.NotContains(t, stderr.String(), oldKey, "errors never show a key")
		})
	}
}

func TestFormatVersion(t *testing.T) {
	tests := []struct {
		name string
		bi   debug.BuildInfo
		want string
	}{
		{"a release", debug.BuildInfo{Main: debug.Module{Version: "v1.2.0"}}, "v1.2.0"},
		{"a test binary", debug.BuildInfo{}, "(devel)"},
		{"a checkout", debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: "c3784a8f"}, {Key: "vcs.time", Value: "2026-12-01T10:00:00Z"}, {Key: "vcs.modified", Value: "true"},
		}}, "(devel) revision c3784a8f 2026-12-01T10:00:00Z modified"},
		{"a clean checkout", debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "c3784a8f"}, {Key: "vcs.modified", Value: "false"},
		}}, "(devel) revision c3784a8f"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, formatVersion(&tt.bi))
		})
	}
}

func TestRunVersion(t *testing.T) {
	var stdout, stderr bytes.Buffer
	status := run(t.Context(), []string{"-version", "-picker", "ignored"}, &stdout, &stderr, func(listening) { t.Error("proxy started") })
	assert.Equal(t, 0, status)
	assert.Equal(t, "stickyproxy "+version()+"\n", stdout.String())
	assert.Regexp(t, `^stickyproxy (v\S+|\(devel\))`, stdout.String())
	assert.Empty(t, stderr.String())

	var help bytes.Buffer
	_, err := parseFlags([]string{"-h"}, &help)
	require.Error(t, err)
	for _, f := range []string{"-weights list", "-slow-start duration", "-stall-timeout duration", "-health-timeout duration", "-health-rise N", "-health-fall N",
		"-health-status range", "-retries N", "-key-file file", keyEnv, "-log-level level", "-access-log", "-version"} {
		assert.Contains(t, help.String(), f)
	}
}

func TestNewLoggers(t *testing.T) {
	tests := []struct {
		level   slog.Level
		logged  []string
		skipped []string
	}{
		{slog.LevelDebug, []string{"level=DEBUG", "level=INFO", "level=WARN"}, nil},
		{slog.LevelInfo, []string{"level=INFO", "level=WARN"}, []string{"level=DEBUG"}},
		{slog.LevelWarn, []string{"level=WARN", "level=ERROR"}, []string{"level=DEBUG", "level=INFO msg=info"}},
		{slog.LevelError, []string{"level=ERROR"}, []string{"level=WARN", "level=INFO msg=info"}},
	}
	for _, tt := range tests {
		t.Run(tt.level.String(), func(t *testing.T) {
			var buf bytes.Buffer
			logger, access := newLoggers(&buf, tt.level)
			logger = logger.With("k", "v")
			logger.Debug("debug")
			logger.Info("info")
			logger.Warn("warn")
			logger.Error("error")
			access.Info("request")
			for _, s := range tt.logged {
				assert.Contains(t, buf.String(), s)
			}
			for _, s := range tt.skipped {
				assert.NotContains(t, buf.String(), s)
			}
			assert.Contains(t, buf.String(), "level=INFO msg=request", "the access log whatever the level")
		})
	}
}

// accessLines returns the access log lines in p's stderr, each as its
// key=value pairs.
func accessLines(p *proxy) []map[string]string {
	var lines []map[string]string
	for line := range strings.Lines(p.stderr.String()) {
		if !strings.Contains(line, " msg=request ") {
			continue
		}
		m := map[string]string{}
		for f := range strings.FieldsSeq(line) {
			k, v, _ := strings.Cut(f, "=")
			m[k] = v
		}
		lines = append(lines, m)
	}
	return lines
}

// waitAccessLines waits until p has logged n access lines, and returns
// them.
func waitAccessLines(t *testing.T, p *proxy, n int) []map[string]string {
	t.Helper()
	require.Eventually(t, func() bool { return len(accessLines(p)) >= n }, 10*time.Second, 10*time.Millisecond, "stderr:\n%s", p.stderr)
	return accessLines(p)
}

func TestEndToEndAccessLog(t *testing.T) {
	dead := "http://127.0.0.1:" + freePort(t)
	p := startProxy(t, "-key", testKey, "-access-log", "-log-level", "error",
		"-backends", demoBackends(t, "live")+",dead="+dead, "-picker", "roundrobin", "-retries", "0")
	assert.NotContains(t, p.stderr.String(), "proxy listening", "-log-level error")

	// New clients, without cookies, until one reaches live and one dead.
	var bound *http.Cookie
	got502 := false
	for i := 0; i < 4 && (bound == nil || !got502); i++ {
		r := do(t, newPlainClient(t), get(t, p.url+"/whoami"))
		switch r.status {
		case http.StatusOK:
			bound = findCookie(r.cookies, "affinity")
		case http.StatusBadGateway:
			got502 = true
		}
	}
	require.NotNil(t, bound, "a client reached live")
	require.True(t, got502, "a client reached dead")
	n := len(waitAccessLines(t, p, 2))

	r := do(t, newPlainClient(t), get(t, p.url+"/whoami?secret=1", bound))
	require.Equal(t, http.StatusOK, r.status)
	lines := waitAccessLines(t, p, n+1)

	var hit, newClient, badGateway map[string]string
	for _, l := range lines {
		switch {
		case l["status"] == "502":
			badGateway = l
		case l["route"] == "bound_hit":
			hit = l
		case l["route"] == "pick":
			newClient = l
		}
	}
	require.NotNil(t, newClient, "%v", lines)
	assert.Equal(t, map[string]string{"method": "GET", "path": "/whoami", "status": "200", "backend": "live", "binding": "none", "bind": "true", "attempts": "1"},
		pick(newClient, "method", "path", "status", "backend", "binding", "bind", "attempts"))
	require.NotNil(t, hit, "%v", lines)
	assert.Equal(t, map[string]string{"path": "/whoami", "status": "200", "backend": "live", "binding": "valid", "bind": "false", "attempts": "1"},
		pick(hit, "path", "status", "backend", "binding", "bind", "attempts"), "the path without its query")
	assert.Equal(t, strings.TrimSuffix(r.body, "\n"), "server=live user=")
	require.NotNil(t, badGateway, "%v", lines)
	assert.Equal(t, map[string]string{"backend": "dead", "binding": "none", "route": "pick", "bind": "false", "attempts": "1"},
		pick(badGateway, "backend", "binding", "route", "bind", "attempts"))
	for _, l := range []map[string]string{hit, newClient, badGateway} {
		assert.Regexp(t, `^127\.0\.0\.1:\d+$`, l["client"])
		assert.NotEmpty(t, l["duration"])
		assert.NotEqual(t, "0", l["bytes"], "every answer has a body")
	}
	assert.Equal(t, "18", hit["bytes"], "the body's bytes")
	assert.Equal(t, map[string]string{"placement": "picked", "retries": "0"}, pick(newClient, "placement", "retries"))
	assert.Equal(t, map[string]string{"placement": "bound", "retries": "0"}, pick(hit, "placement", "retries"))
	assert.Equal(t, map[string]string{"placement": "picked", "retries": "0", "header": "0s"},
		pick(badGateway, "placement", "retries", "header"), "no header came from dead")
	for _, l := range []map[string]string{hit, newClient} {
		assert.NotEqual(t, "0s", l["header"], "the backend's header came")
		assert.NotEmpty(t, l["header"])
	}
}

// pick returns the keys of m named.
func pick(m map[string]string, keys ...string) map[string]string {
	out := map[string]string{}
	for _, k := range keys {
		out[k] = m[k]
	}
	return out
}

func TestEndToEndNoAccessLogByDefault(t *testing.T) {
	p := startProxy(t, "-key", testKey, "-backends", demoBackends(t, "one"))
	r := do(t, newPlainClient(t), get(t, p.url+"/whoami"))
	require.Equal(t, http.StatusOK, r.status)
	assert.Equal(t, 0, p.stop(t))
	assert.Empty(t, accessLines(p))
	assert.Contains(t, p.stderr.String(), "proxy listening", "-log-level info by default")
}

func TestEndToEndRetries(t *testing.T) {
	tests := []struct {
		retries  []string
		want502s bool
	}{
		{[]string{"-retries", "0"}, true},
		{nil, false}, // 2, the default
		{[]string{"-retries", "1"}, false},
	}
	for _, tt := range tests {
		t.Run(strings.Join(append([]string{"retries"}, tt.retries...), " "), func(t *testing.T) {
			dead := "http://127.0.0.1:" + freePort(t)
			p := startProxy(t, append([]string{"-key", testKey, "-access-log", "-picker", "roundrobin",
				"-backends", "dead=" + dead + "," + demoBackends(t, "live")}, tt.retries...)...)
			statuses := map[int]int{}
			for range 4 { // two of them are placed on dead: fewer than the 5 failures that eject it
				statuses[do(t, newPlainClient(t), get(t, p.url+"/whoami")).status]++
			}
			if tt.want502s {
				assert.Equal(t, map[int]int{200: 2, 502: 2}, statuses)
				return
			}
			assert.Equal(t, map[int]int{200: 4}, statuses)
			lines := waitAccessLines(t, p, 4)
			retried := 0
			for _, l := range lines {
				assert.Equal(t, "live", l["backend"])
				if l["attempts"] == "2" {
					assert.Equal(t, "1", l["retries"], "%v", l)
					retried++
				}
			}
			assert.Positive(t, retried, "some went to dead first: %v", lines)
		})
	}
}

// healthBackend is a backend whose /h answers status after delay, and
// anything else 200.
func healthBackend(t *testing.T, status int, delay time.Duration) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/h" {
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
			}
			w.WriteHeader(status)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestEndToEndHealthSettings(t *testing.T) {
	tests := []struct {
		name   string
		status int
		delay  time.Duration
		args   []string
		want   string // the state the backends reach, as GET /backends shows it
		other  string // that the other backend, otherwise the same, reaches
	}{
		{"418 passes with -health-status 418", 418, 0, []string{"-health-status", "418"}, "healthy", "unhealthy"},
		{"204 fails with -health-status 200", 204, 0, []string{"-health-status", "200"}, "unhealthy", "healthy"},
		{"a slow answer fails with -health-timeout", 200, 300 * time.Millisecond, []string{"-health-timeout", "20ms"}, "unhealthy", "healthy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Two proxies check one backend; the second lacks tt.args.
			a := healthBackend(t, tt.status, tt.delay)
			common := []string{"-key", testKey, "-admin", "127.0.0.1:0", "-backends", "a=" + a,
				"-health-path", "/h", "-health-interval", "400ms", "-health-rise", "1", "-health-fall", "1"}
			with := startProxy(t, append(common, tt.args...)...)
			without := startProxy(t, common...)
			wait := func(p *proxy, state string) {
				t.Helper()
				assert.Eventually(t, func() bool { return stateOf(t, p, "a") == state }, 10*time.Second, 20*time.Millisecond, "state %s", state)
			}
			wait(with, tt.want)
			wait(without, tt.other)
		})
	}
}

func TestEndToEndWeights(t *testing.T) {
	p := startProxy(t, "-key", testKey, "-admin", "127.0.0.1:0", "-backends", demoBackends(t, "a", "b", "c"), "-weights", "a=3,c=65536")
	weights := map[string]int64{}
	for _, b := range listBackends(t, p) {
		weights[b.ID] = b.Weight
	}
	assert.Equal(t, map[string]int64{"a": 3, "b": 1, "c": 65536}, weights)

	demo := startProxy(t, "-key", testKey, "-admin", "127.0.0.1:0", "-weights", "app2=7")
	weights = map[string]int64{}
	for _, b := range listBackends(t, demo) {
		weights[b.ID] = b.Weight
	}
	assert.Equal(t, map[string]int64{"app1": 1, "app2": 7, "app3": 1}, weights, "the demo servers take weights too")
}

func TestEndToEndRunningConfig(t *testing.T) {
	token := "admin-token-0123456789"
	tokenFile := writeFile(t, token)
	keyFile := writeFile(t, testKey+"\n"+oldKey+"\n")
	t.Setenv(keyEnv, "")
	os.Unsetenv(keyEnv)
	p := startProxy(t, "-key-file", keyFile, "-admin", "127.0.0.1:0", "-admin-token-file", tokenFile,
		"-backends", demoBackends(t, "one"), "-cookie-name", "lb", "-cookie-ttl", "1h", "-cookie-max-life", "8h",
		"-health-path", "/whoami", "-health-interval", "2s", "-health-fall", "4", "-health-status", "200-299",
		"-slow-start", "30s", "-retries", "1", "-eject-status", "5xx,429", "-picker", "roundrobin", "-log-level", "warn")
	call := func(path string, header ...string) (int, string, http.Header) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, p.admin+path, nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+token)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		r := do(t, newPlainClient(t), req)
		return r.status, r.body, r.header
	}

	status, body, _ := call("/config")
	require.Equal(t, http.StatusOK, status, body)
	var rc runningConfig
	require.NoError(t, json.Unmarshal([]byte(body), &rc))
	assert.Equal(t, version(), rc.Version)
	assert.WithinDuration(t, time.Now(), rc.StartedAt, time.Minute)
	assert.False(t, rc.TLS)
	assert.False(t, rc.H2C)
	assert.Equal(t, "cookie", rc.Policy)
	assert.Equal(t, "roundrobin", rc.Picker)
	sliding := true
	assert.Equal(t, &cookieConfig{Name: "lb", Lifetime: "1h0m0s from the client's last request, at most 8h0m0s in all", TTL: "1h0m0s", Sliding: &sliding,
		MaxLife: "8h0m0s", SigningKeys: 2, KeySource: "-key-file", Secure: "auto", SameSite: "lax"}, rc.Cookie)
	assert.Nil(t, rc.Key)
	assert.Equal(t, &healthConfig{Path: "/whoami", Interval: "2s", Timeout: "2s", Rise: 2, Fall: 4, MinStatus: 200, MaxStatus: 299}, rc.HealthCheck)
	assert.Equal(t, "500-599,429", rc.EjectStatus)
	assert.Equal(t, 1, rc.Retries)
	assert.Equal(t, "30s", rc.SlowStart)
	assert.Equal(t, "warn", rc.LogLevel)
	assert.False(t, rc.AccessLog)
	assert.Contains(t, body, `"uptime_seconds":`)

	status, page, hdr := call("/")
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, "text/html; charset=utf-8", hdr.Get("Content-Type"))
	assert.Contains(t, page, `<table id="backends">`, "the status page is still there")
	assert.Contains(t, page, `<section id="config">`)
	for _, s := range []string{"<th>Policy</th><td>cookie</td>", "<th>Picker</th><td>roundrobin</td>", "<th>Cookie</th><td>lb</td>",
		"<th>Version</th><td>" + version(), "1h0m0s from the client&#39;s last request, at most 8h0m0s in all", "GET /whoami every 2s, timeout 2s; 200-299 pass; down after 4 failures, up after 2 passes",
		"<th>Signing keys</th><td>2, from -key-file</td>", ", up "} {
		assert.Contains(t, page, s)
	}
	assert.Less(t, strings.Index(page, `<section id="config">`), strings.Index(page, "<footer"))

	status, js, hdr := call("/?format=json")
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, "application/json", hdr.Get("Content-Type"))
	var sp struct {
		Backends []map[string]any `json:"backends"`
		FailOpen *bool            `json:"fail_open"`
		Config   runningConfig    `json:"config"`
	}
	require.NoError(t, json.Unmarshal([]byte(js), &sp), js)
	assert.Len(t, sp.Backends, 1, "the status JSON's fields are kept")
	assert.NotNil(t, sp.FailOpen)
	assert.Equal(t, rc.HealthCheck, sp.Config.HealthCheck)
	assert.Equal(t, rc.Cookie, sp.Config.Cookie)

	status, list, _ := call("/backends")
	require.Equal(t, http.StatusOK, status)
	assert.True(t, strings.HasPrefix(list, `[{"id":"one",`), "GET /backends is still an array: %s", list)

	for name, s := range map[string]string{"/config": body, "/": page, "/?format=json": js, "/backends": list} {
		for _, secret := range []string{testKey, oldKey, base64.StdEncoding.EncodeToString([]byte(testKey)), token} {
			assert.NotContains(t, s, secret, "%s shows no secret", name)
		}
	}
	status, _, _ = call("/config", "Authorization", "Bearer wrong")
	assert.Equal(t, http.StatusUnauthorized, status, "GET /config takes the token too")
}

func TestRunningConfigByPolicy(t *testing.T) {
	tests := []struct {
		args []string
		rows []string // on the status page
	}{
		{[]string{"-policy", "ip", "-trusted-proxies", "10.0.0.0/8", "-load-factor", "1.25"}, []string{"<th>Trusted proxies</th><td>10.0.0.0/8</td>", "<th>Load factor</th><td>1.25</td>", "<th>Health checks</th><td>off</td>", "<th>Listener</th><td>HTTP/1.1</td>"}},
		{[]string{"-policy", "header", "-header", "X-Api-Key", "-h2c"}, []string{"<th>Listener</th><td>HTTP/1.1 and cleartext HTTP/2 (h2c)</td>", "<th>Key header</th><td>X-Api-Key</td>", "<th>Load factor</th><td>0</td>"}},
		{[]string{"-policy", "appcookie", "-app-cookie", "JSESSIONID", "-key", testKey, "-strict"}, []string{"as long as the application&#39;s cookie JSESSIONID", "<th>Strict bindings</th><td>true</td>", "<th>Retries</th><td>0</td>", "<th>Signing keys</th><td>1, from -key</td>"}},
		{[]string{"-cookie-ttl", "0", "-key", testKey}, []string{"a session cookie, until the browser closes", "<th>Retries</th><td>2</td>"}},
		{[]string{"-cookie-sliding=false"}, []string{"15m0s from the binding", "<th>Signing keys</th><td>1, from random</td>"}},
		{[]string{"-health-path", "/h", "-health-interval", "500ms"}, []string{"every 500ms, timeout 500ms; 200-399 pass; down after 3 failures, up after 2 passes"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Setenv(keyEnv, "")
			os.Unsetenv(keyEnv)
			cfg, err := parseFlags(tt.args, nil)
			require.NoError(t, err)
			rc := newRunningConfig(cfg, time.Now())
			set, _ := newTestAdmin(t)
			h := newAdmin(set, newMetrics(t, set), slog.New(slog.DiscardHandler), adminOptions{config: rc})
			rec := adminDo(h, http.MethodGet, "/", "")
			require.Equal(t, http.StatusOK, rec.Code)
			for _, r := range tt.rows {
				assert.Contains(t, rec.Body.String(), r)
			}
			assert.Equal(t, rec.Header().Get("Content-Length"), strconv.Itoa(rec.Body.Len()))
		})
	}
}

// TestEndToEndSlowStart holds 4 requests of new clients on b1, adds b2,
// and sends 4 more new clients, each while those before it are held: least
// connections sends them all to b2, until it is as busy as b1, unless b2
// is in slow start and counts as busier than it is.
func TestEndToEndSlowStart(t *testing.T) {
	tests := []struct {
		args []string
		all  bool // all 4 reach b2
	}{
		{nil, true},
		{[]string{"-slow-start", "1h"}, false},
	}
	for _, tt := range tests {
		t.Run(strings.Join(append([]string{"slow start"}, tt.args...), " "), func(t *testing.T) {
			hb := startHoldingBackends(t, 2)
			b1, b2, _ := strings.Cut(hb.list, ",")
			p := startProxy(t, append([]string{"-key", testKey, "-admin", "127.0.0.1:0", "-backends", b1}, tt.args...)...)
			t.Cleanup(hb.release) // before the proxy's shutdown waits for them

			tr := &http.Transport{} // a connection for each request in flight
			t.Cleanup(tr.CloseIdleConnections)
			c := &http.Client{Transport: tr, Timeout: 30 * time.Second}
			errs := make(chan error, 8)
			servers := map[string]int{}
			hold := func() {
				t.Helper()
				go func() {
					resp, err := c.Do(get(t, p.url+"/"))
					if err == nil {
						resp.Body.Close()
					}
					errs <- err
				}()
				select {
				case name := <-hb.arrived:
					servers[name]++
				case <-time.After(10 * time.Second): // a guard, not a measure
					t.Fatal("a request reached no backend within 10s")
				}
			}
			for range 4 {
				hold()
			}
			require.Equal(t, map[string]int{"b1": 4}, servers)
			id, u, _ := strings.Cut(b2, "=")
			status, body := callAdmin(t, p, http.MethodPost, "/backends", `{"id":"`+id+`","url":"`+u+`"}`)
			require.Equal(t, http.StatusCreated, status, body)
			for range 4 {
				hold()
			}
			hb.release()
			for range 8 {
				assert.NoError(t, <-errs)
			}
			if tt.all {
				assert.Equal(t, map[string]int{"b1": 4, "b2": 4}, servers)
			} else {
				assert.Less(t, servers["b2"], 4, "b2 took every new client in slow start: %v", servers)
				assert.Positive(t, servers["b2"], "b2 took no new client: %v", servers)
			}
		})
	}
}

// TestEndToEndAccessLogKeepsThePolicy checks that the policy the access
// log wraps still strips its cookie from the requests it forwards.
func TestEndToEndAccessLogKeepsThePolicy(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(r.Header.Get("Cookie")))
	}))
	t.Cleanup(srv.Close)
	for _, args := range [][]string{nil, {"-access-log"}} {
		t.Run(strings.Join(append([]string{"flags"}, args...), " "), func(t *testing.T) {
			p := startProxy(t, append([]string{"-key", testKey, "-backends", "app=" + srv.URL}, args...)...)
			first := do(t, newPlainClient(t), get(t, p.url+"/"))
			bound := findCookie(first.cookies, "affinity")
			require.NotNil(t, bound)
			req := get(t, p.url+"/", bound)
			req.AddCookie(&http.Cookie{Name: "app", Value: "1"})
			r := do(t, newPlainClient(t), req)
			assert.Equal(t, "app=1", r.body, "the backend sees the application's cookie only")
			assert.Nil(t, findCookie(r.cookies, "affinity"), "a bound hit sets no cookie")
		})
	}
}

func TestAdminConfigRoutes(t *testing.T) {
	set, plain := newTestAdmin(t)
	cfg, err := parseFlags([]string{"-key", testKey}, nil)
	require.NoError(t, err)
	withConfig := newAdmin(set, newMetrics(t, set), slog.New(slog.DiscardHandler), adminOptions{config: newRunningConfig(cfg, time.Now())})

	rec := adminDo(withConfig, http.MethodPost, "/config", "{}")
	assert.Equal(t, http.StatusMethodNotAllowed, rec.Code)
	assert.Equal(t, "GET, HEAD", rec.Header().Get("Allow"))
	rec = adminDo(withConfig, http.MethodHead, "/config", "")
	assert.Equal(t, http.StatusOK, rec.Code)
	rec = adminDo(withConfig, http.MethodHead, "/", "")
	assert.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, rec.Header().Get("Content-Length"), strconv.Itoa(rec.Body.Len()), "HEAD: the length GET would send")
	assert.Contains(t, rec.Body.String(), `<section id="config">`)

	rec = adminDo(plain, http.MethodGet, "/config", "")
	assert.Equal(t, http.StatusNotFound, rec.Code, "no configuration, no /config")
	rec = adminDo(plain, http.MethodGet, "/", "")
	assert.NotContains(t, rec.Body.String(), `<section id="config">`)
}

func TestAddJSON(t *testing.T) {
	c := runningConfig{Policy: "ip"}
	tests := []struct {
		name, in string
		config   bool // the result holds c in "config"
	}{
		{"an object", `{"backends":[]}` + "\n", true},
		{"an empty object", `{}`, true},
		{"not an object", `[1]`, false},
		{"not JSON", `oops`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := addJSON([]byte(tt.in), c)
			if !tt.config {
				assert.Equal(t, tt.in, string(out))
				return
			}
			var v map[string]json.RawMessage
			require.NoError(t, json.Unmarshal(out, &v), "%s", out)
			assert.Contains(t, string(v["config"]), `"policy":"ip"`)
		})
	}
}

func TestDemoNames(t *testing.T) {
	d, cs, err := startDemo(len(demoNames), slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(d.close)
	var ids []string
	for _, c := range cs {
		ids = append(ids, c.ID)
	}
	assert.Equal(t, demoNames, ids, "-weights knows the demo servers by the names startDemo gives them")
}

func TestEndToEndAccessLogOverHTTPS(t *testing.T) {
	ca := newTestCA(t)
	f := newKeyFiles(t)
	f.issue(t, ca, 1)
	p := startTLSProxy(t, f, "-key", testKey, "-access-log", "-admin", "127.0.0.1:0", "-backends", demoBackends(t, "one"))
	c := &http.Client{Transport: httpsTransport(t, ca, true), Timeout: 5 * time.Second}
	resp, err := c.Get(p.url + "/whoami")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 2, resp.ProtoMajor, "HTTP/2")
	require.Equal(t, http.StatusOK, resp.StatusCode)

	l := waitAccessLines(t, p, 1)[0]
	assert.Equal(t, map[string]string{"status": "200", "backend": "one", "binding": "none", "route": "pick", "bind": "true", "bytes": "17"},
		pick(l, "status", "backend", "binding", "route", "bind", "bytes"))

	status, body := callAdmin(t, p, http.MethodGet, "/config", "")
	require.Equal(t, http.StatusOK, status)
	assert.Contains(t, body, `"tls":true`)
}

// TestRunningConfigCookieAttrs checks that the running configuration
// shows the affinity cookie's attributes as the cookie flags set them, and
// the trusted proxies whatever the policy.
func TestRunningConfigCookieAttrs(t *testing.T) {
	cfg, err := parseFlags([]string{"-key", testKey, "-cookie-secure", "always", "-cookie-samesite", "none", "-cookie-path", "/shop",
		"-cookie-partitioned", "-cookie-cors", "-trusted-proxies", "10.0.0.5"}, io.Discard)
	require.NoError(t, err)
	rc := newRunningConfig(cfg, time.Now())
	require.NotNil(t, rc.Cookie)
	assert.Equal(t, "always", rc.Cookie.Secure)
	assert.Equal(t, "none", rc.Cookie.SameSite)
	assert.Equal(t, "/shop", rc.Cookie.Path)
	assert.True(t, rc.Cookie.Partitioned)
	assert.True(t, rc.Cookie.CORS)
	assert.Equal(t, []string{"10.0.0.5/32"}, rc.Trusted)
	assert.Equal(t, "Secure always, SameSite none, Path /shop, Partitioned, with a SameSite=None twin affinity-cors", cookieAttrText(rc.Cookie))
}
