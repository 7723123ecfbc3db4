package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFmtDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "-"},
		{850, "850ns"},
		{1000, "1.00µs"},
		{46_849, "46.8µs"},
		{412_300, "412µs"},
		{999_700, "1.00ms"},
		{4_100_000, "4.10ms"},
		{41_049_000, "41.0ms"},
		{410_000_000, "410ms"},
		{1_234_000_000, "1.23s"},
		{99_999_000_000, "100s"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, fmtDuration(tt.d), "%d", int64(tt.d))
	}
}

// testLevel returns a level of rounds pairs of runs: baseline at base
// req/s, sticky at stick req/s, each round a little faster.
func testLevel(rounds int, base, stick float64) level {
	l := level{Conns: 64}
	for i := range rounds {
		drift := 1 + float64(i)/100
		l.Runs = append(l.Runs,
			sample{Mode: modeBaseline, Round: i + 1, RPS: base * drift, CPUPerReq: 40 * time.Microsecond, CPUUtil: 0.99, OthersShare: 0.01,
				result: result{Requests: 1000, P99: 4 * time.Millisecond}},
			sample{Mode: modeSticky, Round: i + 1, RPS: stick * drift, CPUPerReq: 50 * time.Microsecond, CPUUtil: 0.98, OthersShare: 0.01,
				result: result{Requests: 900, Errors: 1, P99: 5 * time.Millisecond}})
	}
	l.summarize()
	return l
}

func TestSummarize(t *testing.T) {
	l := testLevel(5, 20000, 16000)
	assert.InDelta(t, 20400, l.Baseline.RPS, 1e-6, "median")
	assert.InDelta(t, 20000, l.Baseline.RPSMin, 1e-6)
	assert.InDelta(t, 20800, l.Baseline.RPSMax, 1e-6)
	assert.Equal(t, 4*time.Millisecond, l.Baseline.P99)
	assert.Equal(t, 50*time.Microsecond, l.Sticky.CPUPerReq)
	assert.Equal(t, int64(5000), l.Baseline.Requests)
	assert.Equal(t, int64(5), l.Sticky.Errors)
	assert.InDelta(t, 0.8, l.Ratio.Throughput, 1e-9)
	assert.InDelta(t, 0.8, l.Ratio.ThroughputMin, 1e-9, "drift hits both runs of a round")
	assert.InDelta(t, 0.8, l.Ratio.ThroughputMax, 1e-9)
	assert.InDelta(t, 0.8, l.Ratio.ThroughputRound, 1e-9)
	assert.Zero(t, l.Ratio.ThroughputCover, "5 rounds are too few for a 95% interval")
	assert.InDelta(t, 1.25, l.Ratio.P99, 1e-9)
	assert.InDelta(t, 1.25, l.Ratio.CPUPerReq, 1e-9)
}

func TestSummarizeInterval(t *testing.T) {
	// 30 rounds whose ratios are 0.901, 0.902, … 0.930, in a shuffled order
	// and on baselines that drift: the median of the rounds' ratios and
	// its interval, the 10th and 21st smallest, come from the pairs.
	l := level{Conns: 64}
	for i := range 30 {
		r := 0.901 + float64((i*7)%30)/1000
		base := 20000 * (1 + float64(i%4)/10)
		l.Runs = append(l.Runs,
			sample{Mode: modeBaseline, Round: i + 1, RPS: base},
			sample{Mode: modeSticky, Round: i + 1, RPS: r * base})
	}
	l.summarize()
	assert.InDelta(t, 0.9155, l.Ratio.ThroughputRound, 1e-9)
	assert.InDelta(t, 0.910, l.Ratio.ThroughputLow, 1e-9)
	assert.InDelta(t, 0.921, l.Ratio.ThroughputHigh, 1e-9)
	assert.InDelta(t, 0.9572, l.Ratio.ThroughputCover, 1e-4)
	assert.InDelta(t, 0.901, l.Ratio.ThroughputMin, 1e-9)
	assert.InDelta(t, 0.930, l.Ratio.ThroughputMax, 1e-9)

	var out bytes.Buffer
	rep := testReport(64)
	rep.Scenarios[0].Levels[0] = l
	require.NoError(t, writeText(&out, rep))
	assert.Contains(t, out.String(), "   "+fmtRatio(l.Ratio.ThroughputRound)+"  0.910–0.921  0.901–0.930")
}

func TestSetRates(t *testing.T) {
	r := sample{result: result{Requests: 50000, Elapsed: 5 * time.Second}}
	r.setRates(usage{proxy: 2500 * time.Millisecond, others: 500 * time.Millisecond})
	assert.InDelta(t, 10000, r.RPS, 1e-9)
	assert.InDelta(t, 0.5, r.CPUUtil, 1e-9)
	assert.Equal(t, 50*time.Microsecond, r.CPUPerReq)
	assert.InDelta(t, 0.1, r.OthersShare, 1e-9)

	r = sample{result: result{Requests: 50000, Elapsed: 5 * time.Second}}
	r.setRates(usage{proxy: 2500 * time.Millisecond, others: 0})
	assert.Positive(t, r.OthersShare, "a known 0 is not unknown")

	r = sample{result: result{Requests: 50000, Elapsed: 5 * time.Second}}
	r.setRates(usage{proxy: -1, others: -1})
	assert.InDelta(t, 10000, r.RPS, 1e-9)
	assert.Zero(t, r.CPUPerReq, "unknown")
	assert.Zero(t, r.CPUUtil)
	assert.Zero(t, r.OthersShare)
}

func TestPerCPU(t *testing.T) {
	r := sample{result: result{Requests: 50000, Elapsed: 5 * time.Second}}
	r.setRates(usage{proxy: 2 * time.Second, others: 0})
	r.perCPU()
	assert.InDelta(t, 25000, r.RPS, 1e-9, "10,000 req/s on 40% of a CPU")
	assert.InDelta(t, 10000, r.MeasuredRPS, 1e-9)

	r = sample{result: result{Requests: 50000, Elapsed: 5 * time.Second}}
	r.setRates(usage{proxy: -1, others: -1})
	r.perCPU()
	assert.InDelta(t, 10000, r.RPS, 1e-9, "no CPU share, no scaling")
	assert.Zero(t, r.MeasuredRPS)
}

func testReport(levels ...int) *report {
	rep := &report{
		Machine: machine{CPUs: 2, OS: "linux", Arch: "amd64", CPUModel: "AMD EPYC", Go: "go1.26.0"},
		Setup: setup{
			Command: "go run ./examples/bench", Generator: "wrk 4.1.0, 1 thread(s)", GeneratorName: genWrk,
			Pinning: "proxy pinned to CPU 0, backends and load generator to CPU 1 (taskset)", Pinned: true,
			ProxyGOMAXPROCS: 1, Levels: levels, Rounds: 5, Warmup: time.Second, Duration: 5 * time.Second,
			Backends: 3, BodySize: 128, LoadStart: 0.2, LoadEnd: 2.05,
		},
	}
	for _, name := range []string{scenarioBound, scenarioNew} {
		sc := scenarioResult{Name: name, Description: scenarioText[name]}
		for _, c := range levels {
			l := testLevel(5, 20000, 16000)
			l.Conns = c
			sc.Levels = append(sc.Levels, l)
		}
		rep.Scenarios = append(rep.Scenarios, sc)
	}
	rep.addNotes()
	return rep
}

func TestWriteText(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, writeText(&out, testReport(64)))
	text := out.String()
	for _, want := range []string{
		"machine  2 CPUs, linux/amd64, AMD EPYC, go1.26.0\n",
		"command  go run ./examples/bench\n",
		"pinning  proxy pinned to CPU 0, backends and load generator to CPU 1 (taskset); proxy GOMAXPROCS 1\n",
		"loadavg  0.20 at start, 2.05 at end (one minute; at start all of it is other work)\n",
		"bound: every request carries a valid sticky cookie",
		"  conns  proxy     req/s      min–max     p99  CPU/req  proxy CPU  others  ×req/s  per round  95% CI        range   ×p99  ×CPU/req\n" +
			"     64  baseline  20400  20000–20800  4.00ms   40.0µs        99%      1%\n" +
			"     64  sticky    16320  16000–16640  5.00ms   50.0µs        98%      1%   0.800      0.800       -  0.800–0.800  1.250     1.250\n",
		"note: requests failed or not answered 200: bound c=64 5 (baseline 0, sticky 5), new c=64 5 (baseline 0, sticky 5)\n",
	} {
		assert.Contains(t, text, want)
	}
	assert.NotContains(t, text, "throughput by concurrency", "one level, no growth table")
	assert.NotContains(t, text, "control")
}

func TestWriteTextControl(t *testing.T) {
	rep := testReport(64)
	rep.Setup.Control = true
	var out bytes.Buffer
	require.NoError(t, writeText(&out, rep))
	text := out.String()
	assert.Contains(t, text, "control  A/A: the baseline ran in the sticky proxy's place too (rows \"control\")")
	assert.Contains(t, text, "     64  control   16320  16000–16640")
	assert.NotContains(t, text, "64  sticky")
}

func TestWriteTextGrowthControl(t *testing.T) {
	rep := testReport(1, 16)
	rep.Setup.Control = true
	var out bytes.Buffer
	require.NoError(t, writeText(&out, rep))
	assert.Contains(t, out.String(), "  conns  bound baseline  bound control      ×  new baseline  new control      ×\n")
}

func TestWriteTextGrowth(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, writeText(&out, testReport(1, 16, 64, 256)))
	assert.Contains(t, out.String(), "throughput by concurrency, median req/s\n"+
		"  conns  bound baseline  bound sticky      ×  new baseline  new sticky      ×\n"+
		"      1           20400         16320  0.800         20400       16320  0.800\n")
	assert.Contains(t, out.String(), "    256           20400")
}

func TestNotes(t *testing.T) {
	rep := testReport(64)
	rep.Notes = nil
	rep.Scenarios[0].Levels[0].Baseline.CPUUtil = 0.5
	rep.Scenarios[0].Levels[0].Baseline.Errors = 0
	rep.Scenarios[0].Levels[0].Sticky.Errors = 0
	rep.Scenarios = rep.Scenarios[:1]
	rep.addNotes()
	require.Len(t, rep.Notes, 1)
	assert.Equal(t, "the baseline proxy used only this much of its CPU, so the load generator or the backends limited req/s, "+
		"and the req/s ratio understates the sticky layer's cost (CPU/req still compares the proxies): bound c=64 50%", rep.Notes[0])

	rep.Notes = nil
	rep.Scenarios[0].Levels[0].Sticky.OthersShare = 0.35
	rep.addNotes()
	require.Len(t, rep.Notes, 1)
	assert.Contains(t, rep.Notes[0], "other work (other processes, the hypervisor's other guests) took this much of the proxy's CPU")
	assert.Contains(t, rep.Notes[0], ": bound c=64 35%")

	rep.Notes = nil
	rep.Scenarios[0].Levels[0].Sticky.OthersShare = 0
	rep.Setup.LoadStart = 1.5
	rep.addNotes()
	require.Len(t, rep.Notes, 2)
	assert.Contains(t, rep.Notes[0], "the machine was busy with other work (load average 1.50 on 2 CPUs at the start)")
}

func TestPairedReport(t *testing.T) {
	rep := testReport(64)
	rep.Setup.Paired = true
	l := &rep.Scenarios[0].Levels[0]
	l.Baseline.CPUUtil, l.Sticky.CPUUtil = 0.48, 0.49
	rep.Notes = nil
	rep.addNotes()
	for _, n := range rep.Notes {
		assert.NotContains(t, n, "used only", "two proxies at half a CPU each kept it busy")
	}

	l.Baseline.CPUUtil, l.Sticky.CPUUtil = 0.3, 0.35
	rep.Notes = nil
	rep.addNotes()
	require.NotEmpty(t, rep.Notes)
	assert.Contains(t, rep.Notes[0], "the two proxies together used only this much of their CPU")
	assert.Contains(t, rep.Notes[0], ": bound c=64 65%")

	var out bytes.Buffer
	require.NoError(t, writeText(&out, rep))
	assert.Contains(t, out.String(), "runs     5 round(s) of baseline and sticky at the same time, sharing the proxy CPU")
	assert.Contains(t, out.String(), "Paired, the two proxies share one CPU")
	assert.Contains(t, out.String(), "req/s are then per full CPU")
}

func TestWriteJSON(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, writeJSON(&out, testReport(64)))
	var got struct {
		Setup struct {
			Connections []int `json:"connections"`
		} `json:"setup"`
		Scenarios []struct {
			Name   string `json:"name"`
			Levels []struct {
				Ratio struct {
					Throughput float64 `json:"throughput"`
				} `json:"sticky_over_baseline"`
				Runs []struct {
					Mode string `json:"mode"`
					P99  int64  `json:"p99_ns"`
				} `json:"runs"`
			} `json:"levels"`
		} `json:"scenarios"`
	}
	require.NoError(t, json.Unmarshal(out.Bytes(), &got))
	assert.Equal(t, []int{64}, got.Setup.Connections)
	require.Len(t, got.Scenarios, 2)
	assert.Equal(t, "new", got.Scenarios[1].Name)
	assert.InDelta(t, 0.8, got.Scenarios[0].Levels[0].Ratio.Throughput, 1e-9)
	assert.Len(t, got.Scenarios[0].Levels[0].Runs, 10)
	assert.Equal(t, int64(5e6), got.Scenarios[0].Levels[0].Runs[1].P99)
}

func TestResultRoundTrip(t *testing.T) {
	var out bytes.Buffer
	want := result{Requests: 10, Errors: 1, Elapsed: time.Second, P50: 2 * time.Millisecond, P99: 3 * time.Millisecond, Max: 4 * time.Millisecond}
	require.NoError(t, printResult(&out, want))
	line, ok := strings.CutPrefix(out.String(), "result ")
	require.True(t, ok)
	got, err := parseResult(strings.TrimSpace(line))
	require.NoError(t, err)
	assert.Equal(t, want, got)

	_, err = parseResult(`{"requests":1}`)
	assert.Error(t, err, "no elapsed time")
	_, err = parseResult(`nope`)
	assert.Error(t, err)
}

func TestParseStat(t *testing.T) {
	// A process named "a) b" (names may hold spaces and parentheses),
	// utime 250 and stime 50 ticks.
	stat := "1234 (a) b) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 100 1000 10 0\n"
	got, err := parseStat(stat)
	require.NoError(t, err)
	assert.Equal(t, 3*time.Second, got)

	for _, bad := range []string{"", "1234 S 1", "1 (x) S 1 2 3", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 x 50 0"} {
		_, err := parseStat(bad)
		assert.Error(t, err, "%q", bad)
	}
}

func TestParseCoreBusy(t *testing.T) {
	stat := "cpu  256110 50 100546 419546 1317 0 6307 0 0 0\n" +
		"cpu0 100 1 20 5000 7 3 4 5 0 0\n" +
		"cpu1 200 2 40 6000 8 3 4 10 0 0\n" +
		"intr 9690470 0 0\n"
	got, err := parseCoreBusy(stat, 1)
	require.NoError(t, err)
	assert.Equal(t, (200+2+40+10)*clockTick, got, "user, nice, system, steal")
	got, err = parseCoreBusy(stat, 0)
	require.NoError(t, err)
	assert.Equal(t, 126*clockTick, got)
	_, err = parseCoreBusy(stat, 2)
	assert.Error(t, err)
	_, err = parseCoreBusy("cpu0 1 2 x 4 5 6 7 8 9 10\n", 0)
	assert.Error(t, err)
}

func TestParseCPUList(t *testing.T) {
	_, err := parseCPUList("0-1,4, 6-7\n")
	require.Error(t, err, "spaces inside are not Linux's")
	got, err := parseCPUList("0-1,4,6-7\n")
	require.NoError(t, err)
	assert.Equal(t, []int{0, 1, 4, 6, 7}, got)
	for _, bad := range []string{"", "a", "3-1", "-1"} {
		_, err := parseCPUList(bad)
		assert.Error(t, err, "%q", bad)
	}
}

func TestCPUModel(t *testing.T) {
	x86 := "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel\t\t: 1\nmodel name\t: AMD EPYC 7B13\n\nprocessor\t: 1\nmodel name\t: AMD EPYC 7B13\n"
	assert.Equal(t, "AMD EPYC 7B13", cpuModel(x86))
	arm := "processor\t: 0\nBogoMIPS\t: 50.00\nCPU part\t: 0xd0c\n\nModel\t\t: Raspberry Pi 4 Model B Rev 1.4\n"
	assert.Equal(t, "Raspberry Pi 4 Model B Rev 1.4", cpuModel(arm))
	assert.Equal(t, "", cpuModel(""))
}

func TestCommandLine(t *testing.T) {
	assert.Equal(t, "go run ./examples/bench -d 5s -concurrency 1,16,64",
		commandLine("/tmp/go-build123/b001/exe/bench", []string{"-d", "5s", "-concurrency", "1,16,64"}))
	assert.Equal(t, "./bench -scenarios 'bound, new' ''", commandLine("./bench", []string{"-scenarios", "bound, new", ""}))
	assert.Equal(t, `bench -x 'it'\''s'`, commandLine("bench", []string{"-x", "it's"}))
}
