package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// wrkTimeout is wrk's --timeout: a request not answered by then counts as
// an error.
const wrkTimeout = 5 * time.Second

// wrkScript returns the Lua script wrk runs: it adds a Cookie header to
// every request, taking cookies in turn, unless there are none, and prints,
// when wrk is done, the "result" line the built-in generator prints too.
// wrk counts latency in microseconds; errors include answers with a status
// of 400 or more.
//
// With one cookie the request is the same every time, which wrk builds
// once. With several, each thread builds one request per cookie when it
// starts, and a request function hands them out in turn: a table look-up
// per request, no formatting.
func wrkScript(cookies []string) string {
	var b strings.Builder
	b.WriteString("-- written by examples/bench\n")
	switch len(cookies) {
	case 0:
	case 1:
		fmt.Fprintf(&b, "wrk.headers[\"Cookie\"] = %s\n", luaQuote(cookies[0]))
	default:
		b.WriteString("local cookies = {")
		for i, c := range cookies {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(luaQuote(c))
		}
		b.WriteString(`}
local reqs, n = {}, 0
init = function(args)
  for i, c in ipairs(cookies) do
    wrk.headers["Cookie"] = c
    reqs[i] = wrk.format()
  end
  wrk.headers["Cookie"] = nil
end
request = function()
  n = n % #reqs + 1
  return reqs[n]
end
`)
	}
	b.WriteString(`done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('result {"requests":%d,"errors":%d,"elapsed_ns":%d,"p50_ns":%d,"p99_ns":%d,"max_ns":%d}\n',
    summary.requests - e.status, e.connect + e.read + e.write + e.status + e.timeout,
    summary.duration * 1000, math.floor(latency:percentile(50)) * 1000,
    math.floor(latency:percentile(99)) * 1000, latency.max * 1000))
end
`)
	return b.String()
}

// luaQuote returns s as a Lua string literal.
func luaQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := range len(s) {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c >= 0x7f:
			fmt.Fprintf(&b, "\\%03d", c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// writeWrkScript writes wrkScript(cookies) to a file in dir and returns its
// path.
func writeWrkScript(dir, name string, cookies []string) (string, error) {
	p := filepath.Join(dir, name+".lua")
	return p, os.WriteFile(p, []byte(wrkScript(cookies)), 0o600)
}

// wrkArgs returns wrk's arguments for conns connections from threads
// threads for d, a whole number of seconds, running script against target.
func wrkArgs(target, script string, conns, threads int, d time.Duration) []string {
	return []string{
		"-t", strconv.Itoa(min(threads, conns)),
		"-c", strconv.Itoa(conns),
		"-d", strconv.Itoa(int(d/time.Second)) + "s",
		"--timeout", strconv.Itoa(int(wrkTimeout/time.Second)) + "s",
		"--latency",
		"-s", script,
		target,
	}
}
