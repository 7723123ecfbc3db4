package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWrkScript(t *testing.T) {
	s := wrkScript([]string{`affinity=AbC-_9; x="q\"`})
	assert.Contains(t, s, `wrk.headers["Cookie"] = "affinity=AbC-_9; x=\"q\\\""`+"\n")
	assert.NotContains(t, s, "request = function", "one cookie: a static request, built once")
	assert.Contains(t, s, "done = function(summary, latency, requests)")
	assert.Contains(t, s, `io.write(string.format('result {"requests":%d`)

	several := wrkScript([]string{"affinity=a", "affinity=b"})
	assert.Contains(t, several, `local cookies = {"affinity=a", "affinity=b"}`+"\n")
	assert.Contains(t, several, "request = function()")

	assert.NotContains(t, wrkScript(nil), "Cookie", "no cookie, no header")
	assert.Equal(t, `"a\010b\255"`, luaQuote("a\nb\xff"))

	args := wrkArgs("http://127.0.0.1:1/", "/tmp/s.lua", 4, 8, 5*time.Second)
	assert.Equal(t, []string{"-t", "4", "-c", "4", "-d", "5s", "--timeout", "5s", "--latency", "-s", "/tmp/s.lua", "http://127.0.0.1:1/"}, args,
		"no more threads than connections")
}

// TestWrkScriptRunsInWrk runs wrk with the scripts against a server that
// counts the Cookie headers it is sent: none, one, or several in turn,
// each about as often as the others. It needs wrk, which CI installs and
// requires (AFFINITY_REQUIRE_WRK=1); elsewhere it is skipped without it.
func TestWrkScriptRunsInWrk(t *testing.T) {
	if testing.Short() {
		t.Skip("runs wrk for a few seconds")
	}
	wrk, err := exec.LookPath("wrk")
	if err != nil {
		if os.Getenv("AFFINITY_REQUIRE_WRK") != "" {
			t.Fatal("wrk is required (AFFINITY_REQUIRE_WRK is set) but not on PATH")
		}
		t.Skip("wrk is not on PATH")
	}
	for _, tc := range []struct {
		name    string
		cookies []string
	}{
		{"none", nil},
		{"one", []string{"affinity=one"}},
		{"three in turn", []string{"affinity=a", "affinity=b", "affinity=c"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			seen := map[string]int{}
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				seen[strings.Join(r.Header["Cookie"], "; ")]++
				mu.Unlock()
			}))
			t.Cleanup(srv.Close)
			script, err := writeWrkScript(t.TempDir(), "test", tc.cookies)
			require.NoError(t, err)

			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, wrk, wrkArgs(srv.URL+"/", script, 4, 2, time.Second)...).CombinedOutput()
			require.NoError(t, err, "%s", out)
			_, line, ok := strings.Cut(string(out), "\nresult ")
			require.True(t, ok, "no result line in %s", out)
			res, err := parseResult(strings.TrimSpace(line))
			require.NoError(t, err)
			assert.Positive(t, res.Requests)
			assert.Zero(t, res.Errors)

			mu.Lock()
			defer mu.Unlock()
			want := tc.cookies
			if len(want) == 0 {
				want = []string{""}
			}
			total := 0
			for _, n := range seen {
				total += n
			}
			assert.Len(t, seen, len(want), "Cookie headers seen: %v", seen)
			for _, c := range want {
				assert.GreaterOrEqual(t, seen[c]*len(want)*4, total*3, "%q sent %d of %d times", c, seen[c], total)
			}
		})
	}
}

func TestWriteWrkScript(t *testing.T) {
	dir := t.TempDir()
	p, err := writeWrkScript(dir, "bound-1", []string{"affinity=a"})
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(dir, "bound-1.lua"), p)
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	assert.Equal(t, wrkScript([]string{"affinity=a"}), string(b))
}
