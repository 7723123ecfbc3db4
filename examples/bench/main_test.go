package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMain lets the test binary play the helpers' roles: the benchmark
// runs os.Executable, which under go test is this binary.
func TestMain(m *testing.M) {
	if isRole(os.Args[1:]) {
		os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// smokeArgs make the shortest benchmark: both scenarios, one round, the
// built-in generator, no pinning.
var smokeArgs = []string{"-d", "300ms", "-warmup", "100ms", "-rounds", "1", "-c", "4", "-gen", "go", "-pin=false"}

// smoke runs the benchmark with smokeArgs, args and -json, checks that it
// succeeded and left no process behind, and returns its report and what it
// wrote to stderr.
func smoke(t *testing.T, args ...string) (rep report, stderr string) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts processes and loads them for a few seconds")
	}
	quickExit(t)
	var out, errs bytes.Buffer
	code := run(t.Context(), slices.Concat(smokeArgs, args, []string{"-json"}), &out, &errs)
	require.Equal(t, 0, code, "stderr: %s", errs.String())
	assertNoChildren(t)
	require.NoError(t, json.Unmarshal(out.Bytes(), &rep), out.String())
	return rep, errs.String()
}

func TestSmoke(t *testing.T) {
	rep, stderr := smoke(t)
	assert.False(t, rep.Setup.Pinned)
	assert.Equal(t, genGo, rep.Setup.GeneratorName)
	require.Len(t, rep.Scenarios, 2)
	for _, sc := range rep.Scenarios {
		require.Len(t, sc.Levels, 1, sc.Name)
		l := sc.Levels[0]
		assert.Len(t, l.Runs, 2, sc.Name)
		for _, r := range l.Runs {
			assert.Positive(t, r.Requests, "%s %s", sc.Name, r.Mode)
			assert.Zero(t, r.Errors, "%s %s", sc.Name, r.Mode)
			assert.Positive(t, r.P99, "%s %s", sc.Name, r.Mode)
		}
		assert.Positive(t, l.Ratio.Throughput, sc.Name)
	}
	assert.Contains(t, stderr, "[4/4] new   c=4    round 1/1 sticky", "progress goes to stderr")
}

// TestSmokePaired runs a round of each scenario with the two proxies at
// the same time.
func TestSmokePaired(t *testing.T) {
	rep, stderr := smoke(t, "-paired")
	assert.True(t, rep.Setup.Paired)
	require.Len(t, rep.Scenarios, 2)
	for _, sc := range rep.Scenarios {
		require.Len(t, sc.Levels, 1, sc.Name)
		l := sc.Levels[0]
		require.Len(t, l.Runs, 2, sc.Name)
		assert.Equal(t, []string{modeBaseline, modeSticky}, []string{l.Runs[0].Mode, l.Runs[1].Mode})
		for _, r := range l.Runs {
			assert.Positive(t, r.Requests, "%s %s", sc.Name, r.Mode)
			assert.Zero(t, r.Errors, "%s %s", sc.Name, r.Mode)
		}
		assert.Positive(t, l.Ratio.Throughput, sc.Name)
	}
	assert.Contains(t, stderr, "[4/4] new   c=4    round 1/1 sticky")
}

// TestSmokeControl runs an A/A control: the sticky slot's proxy must be a
// baseline, which the check of each run's first answer enforces (a new
// client of a sticky proxy would be given a cookie).
func TestSmokeControl(t *testing.T) {
	rep, _ := smoke(t, "-paired", "-control", "-scenarios", "new")
	assert.True(t, rep.Setup.Control)
	require.Len(t, rep.Scenarios, 1)
	require.Len(t, rep.Scenarios[0].Levels, 1)
	assert.Positive(t, rep.Scenarios[0].Levels[0].Ratio.Throughput)
}

func TestInterruptStopsEveryProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	quickExit(t)
	ctx, cancel := context.WithTimeout(t.Context(), 1500*time.Millisecond) // in the first runs
	defer cancel()
	var stdout, stderr bytes.Buffer
	start := time.Now()
	code := run(ctx, []string{"-d", "5s", "-rounds", "1", "-c", "4", "-gen", "go", "-pin=false"}, &stdout, &stderr)
	assert.Equal(t, 130, code, "stderr: %s", stderr.String())
	assert.Less(t, time.Since(start), 5*time.Second, "stopped at once")
	assert.Empty(t, stdout.String())
	assertNoChildren(t)
}

func TestBadFlagsExitTwo(t *testing.T) {
	var stdout, stderr bytes.Buffer
	assert.Equal(t, 2, run(t.Context(), []string{"-c", "0"}, &stdout, &stderr))
	assert.Contains(t, stderr.String(), "bench: invalid value 0 for -c")
	assert.Equal(t, 2, run(t.Context(), []string{"-role", "nope"}, &stdout, &stderr))
}

// quickExit keeps the helpers, when built with -race, from sleeping a
// second as they exit, as the race detector does by default.
func quickExit(t *testing.T) {
	t.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
}

// assertNoChildren checks, on Linux, that this process has no child
// process left, running or waiting to be reaped.
func assertNoChildren(t *testing.T) {
	t.Helper()
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		return // not Linux
	}
	me := strconv.Itoa(os.Getpid())
	for _, d := range dirs {
		b, err := os.ReadFile("/proc/" + d.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		if i := strings.LastIndexByte(s, ')'); i >= 0 {
			if f := strings.Fields(s[i+1:]); len(f) > 1 && f[1] == me {
				t.Errorf("child process left: %s", strings.TrimSpace(s[:i+1]))
			}
		}
	}
}
