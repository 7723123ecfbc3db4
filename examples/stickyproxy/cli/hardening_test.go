package cli

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestKeyFileWithByteOrderMark checks that a key file saved by an editor
// that starts it with a UTF-8 byte order mark gives the keys -key gives
// for the same secrets: else the replica reading it signs with another
// key than its peers, silently, and every client it serves is bound anew
// by the others (their cookies are Forged there).
func TestKeyFileWithByteOrderMark(t *testing.T) {
	t.Setenv(keyEnv, "")
	fromKey, err := parseFlags([]string{"-key", testKey + "," + oldKey}, nil)
	require.NoError(t, err)
	for _, content := range []string{
		"\ufeff" + testKey + "\n" + oldKey + "\n",
		"\ufeff" + testKey + "\r\n" + oldKey + "\r\n",
	} {
		c, err := parseFlags([]string{"-key-file", writeFile(t, content)}, nil)
		if err != nil {
			continue // refusing the file is as good as reading it right
		}
		assert.Equal(t, fromKey.keys, c.keys, "the same keys as -key gives, for %q", content)
	}
}

// TestEndToEndAccessLogInjection sends requests whose path and headers
// carry line breaks, secrets and a forged access-log line, and checks
// that each is one access line that shows no secret.
func TestEndToEndAccessLogInjection(t *testing.T) {
	p := startProxy(t, "-key", testKey, "-access-log", "-log-level", "error", "-backends", demoBackends(t, "one"))
	for _, path := range []string{
		"/a%0Amsg=request%20method=GET%20path=/forged%20status=200",
		"/a%0D%0Ab",
		"/%E2%80%A8x",
		"/a\"b=c",
	} {
		req, err := http.NewRequest(http.MethodGet, p.url+path+"?token=SECRETQUERY", nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer SECRETAUTH")
		req.Header.Set("Cookie", "PHPSESSID=SECRETCOOKIE")
		req.Header.Set("User-Agent", "x\u2028msg=request")
		resp, err := newPlainClient(t).Do(req)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
	}
	lines := waitAccessLines(t, p, 4)
	out := p.stderr.String()
	assert.Len(t, lines, 4, "one line a request:\n%s", out)
	assert.Equal(t, 4, strings.Count(out, "\n"), "one line a request:\n%s", out)
	for _, secret := range []string{"SECRETQUERY", "SECRETAUTH", "SECRETCOOKIE", testKey} {
		assert.NotContains(t, out, secret)
	}
}

// TestParseFlagsTrustingEveryone checks that -trusted-proxies naming
// every address is taken with a warning: every client may then say which
// host and scheme it used (X-Forwarded-Host and X-Forwarded-Proto are
// kept as sent) and, with -policy ip, choose its key, which is what
// -trusted-proxies is there to prevent.
func TestParseFlagsTrustingEveryone(t *testing.T) {
	t.Setenv(keyEnv, "")
	for _, list := range []string{"0.0.0.0/0", "::/0", "10.0.0.0/8,0.0.0.0/0"} {
		c, err := parseFlags([]string{"-key", testKey, "-trusted-proxies", list}, nil)
		require.NoError(t, err)
		found := false
		for _, w := range c.warnings {
			found = found || strings.Contains(w, "-trusted-proxies")
		}
		assert.True(t, found, "no warning for -trusted-proxies %s: %q", list, c.warnings)
	}
}

// TestKeyEnvTrailingNewline checks that STICKYPROXY_KEY read from a file
// that ends in a newline, as secrets mounted by Kubernetes or Docker
// often do, gives the keys -key gives without it.
func TestKeyEnvTrailingNewline(t *testing.T) {
	fromKey, err := parseFlags([]string{"-key", testKey}, nil)
	require.NoError(t, err)
	for _, v := range []string{testKey + "\n", testKey + "\r\n"} {
		t.Setenv(keyEnv, v)
		c, err := parseFlags(nil, nil)
		require.NoError(t, err)
		assert.Equal(t, fromKey.keys, c.keys, "%q", v)
	}
}
