package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The generators -gen chooses from.
const (
	genAuto = "auto" // wrk if it is on PATH and the durations are whole seconds, else go
	genWrk  = "wrk"  // wrk, which must be on PATH
	genGo   = "go"   // the built-in generator
)

// The scenarios, in the order they run.
const (
	scenarioBound = "bound" // every request carries a valid sticky cookie
	scenarioNew   = "new"   // no request carries one: each opens a session
)

// scenarioText describes each scenario in the report.
var scenarioText = map[string]string{
	scenarioBound: "every request carries a valid sticky cookie, one to each backend in turn; the baseline gets the same Cookie headers",
	scenarioNew:   "no request carries a cookie; the sticky proxy picks a backend and sets a cookie on each",
}

// The bounds of the flags, so that every run ends in a known time.
const (
	maxConns     = 1024 // per level; wrk needs a file descriptor each
	maxLevels    = 8
	minDuration  = 100 * time.Millisecond
	maxDuration  = 5 * time.Minute
	maxWarmup    = time.Minute
	maxRounds    = 50
	defaultConns = 64
	// The default rounds: five with one level of concurrency, three when
	// -concurrency lists several, to keep the run in minutes.
	defaultRounds      = 5
	defaultLevelRounds = 3
)

// config is the benchmark's configuration, read from its command line and
// checked: every field is valid.
type config struct {
	levels     []int // the concurrencies to measure, each a number of connections
	duration   time.Duration
	warmup     time.Duration
	rounds     int
	scenarios  []string // scenarioBound, scenarioNew, in that order
	gen        string   // genAuto, genWrk or genGo
	pin        bool     // pin with taskset if it is there
	paired     bool     // run baseline and sticky at the same time, sharing a CPU
	control    bool     // run the baseline in the sticky proxy's place: an A/A run
	json       bool
	cpuprofile string // a directory for the proxies' CPU profiles; "": none
	args       []string
}

// parseFlags reads the command line. It writes nothing but the usage, to
// help and only for -h, in which case it returns [flag.ErrHelp]. Any other
// error is one line naming the flag and the bad value.
func parseFlags(args []string, help io.Writer) (config, error) {
	cfg := config{args: args}
	var conns int
	var levels, scenarios string
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are returned, not printed
	fs.IntVar(&conns, "c", defaultConns, "concurrent keep-alive `connections` from the load generator")
	fs.StringVar(&levels, "concurrency", "", "comma-separated `list` of connection counts to measure in turn, such as 1,16,64,256,\nfor the throughput-by-concurrency table; replaces -c")
	fs.DurationVar(&cfg.duration, "d", 5*time.Second, "measured `duration` of each run")
	fs.DurationVar(&cfg.warmup, "warmup", time.Second, "unmeasured load before each run's measurement")
	fs.IntVar(&cfg.rounds, "rounds", defaultRounds, "`rounds` per scenario and concurrency, each one baseline run then one sticky run;\n3 by default when -concurrency lists several")
	fs.StringVar(&scenarios, "scenarios", scenarioBound+","+scenarioNew, "comma-separated `list` of scenarios: bound (requests carry a sticky cookie),\nnew (they do not: each opens a session)")
	fs.StringVar(&cfg.gen, "gen", genAuto, "load `generator`: wrk, go (built in), or auto: wrk if it is on PATH\nand -d and -warmup are whole seconds, else go")
	fs.BoolVar(&cfg.pin, "pin", true, "pin the proxy to one CPU and the load generator and backends to another\nwith taskset, when it is there and there are two CPUs")
	fs.BoolVar(&cfg.paired, "paired", false, "run each round's baseline and sticky proxies at the same time, on the same CPU,\neach loaded by a generator of its own, so that the machine's drift hits both alike")
	fs.BoolVar(&cfg.control, "control", false, "A/A control: run the baseline in the sticky proxy's place too, so that the ratios\nshow what the method's noise alone gives")
	fs.BoolVar(&cfg.json, "json", false, "write the results as JSON instead of tables")
	fs.StringVar(&cfg.cpuprofile, "cpuprofile", "", "`directory` to write each proxy process's CPU profile to; empty: none")

	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(help)
			fmt.Fprint(help, "Usage: go run ./examples/bench [flags]\n\n"+
				"Measures, through sockets on 127.0.0.1, what sticky.Handler costs over the best\n"+
				"bare httputil.ReverseProxy: throughput, p99 latency and proxy CPU per request.\n\nFlags:\n")
			fs.PrintDefaults()
		}
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })

	if given["c"] && given["concurrency"] {
		return config{}, errors.New("give -c or -concurrency, not both")
	}
	cfg.levels = []int{conns}
	if given["concurrency"] {
		ls, err := parseLevels(levels)
		if err != nil {
			return config{}, fmt.Errorf("invalid value %q for -concurrency: %w", levels, err)
		}
		cfg.levels = ls
	}
	if conns < 1 || conns > maxConns {
		return config{}, fmt.Errorf("invalid value %d for -c: want 1 to %d", conns, maxConns)
	}
	if cfg.duration < minDuration || cfg.duration > maxDuration {
		return config{}, fmt.Errorf("invalid value %v for -d: want %v to %v", cfg.duration, minDuration, maxDuration)
	}
	if cfg.warmup < 0 || cfg.warmup > maxWarmup {
		return config{}, fmt.Errorf("invalid value %v for -warmup: want 0 to %v", cfg.warmup, maxWarmup)
	}
	if !given["rounds"] && len(cfg.levels) > 1 {
		cfg.rounds = defaultLevelRounds
	}
	if cfg.rounds < 1 || cfg.rounds > maxRounds {
		return config{}, fmt.Errorf("invalid value %d for -rounds: want 1 to %d", cfg.rounds, maxRounds)
	}
	sc, err := parseScenarios(scenarios)
	if err != nil {
		return config{}, fmt.Errorf("invalid value %q for -scenarios: %w", scenarios, err)
	}
	cfg.scenarios = sc
	switch cfg.gen {
	case genAuto, genGo:
	case genWrk:
		if !wholeSeconds(cfg.duration) || !wholeSeconds(cfg.warmup) {
			return config{}, fmt.Errorf("invalid value %q for -gen: wrk counts time in whole seconds, and -d is %v, -warmup %v", cfg.gen, cfg.duration, cfg.warmup)
		}
	default:
		return config{}, fmt.Errorf("invalid value %q for -gen: want auto, wrk or go", cfg.gen)
	}
	return cfg, nil
}

// wholeSeconds reports whether wrk can be given d.
func wholeSeconds(d time.Duration) bool { return d%time.Second == 0 }

// parseLevels parses a comma-separated list of distinct connection counts.
func parseLevels(s string) ([]int, error) {
	var ls []int
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 || n > maxConns {
			return nil, fmt.Errorf("%q is not a connection count from 1 to %d", f, maxConns)
		}
		if slices.Contains(ls, n) {
			return nil, fmt.Errorf("%d given twice", n)
		}
		ls = append(ls, n)
	}
	if len(ls) > maxLevels {
		return nil, fmt.Errorf("%d levels, at most %d", len(ls), maxLevels)
	}
	return ls, nil
}

// parseScenarios parses a comma-separated list of scenario names and
// returns them in the order they run.
func parseScenarios(s string) ([]string, error) {
	var want []string
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if _, ok := scenarioText[f]; !ok {
			return nil, fmt.Errorf("unknown scenario %q; want bound or new", f)
		}
		if !slices.Contains(want, f) {
			want = append(want, f)
		}
	}
	var sc []string
	for _, name := range []string{scenarioBound, scenarioNew} {
		if slices.Contains(want, name) {
			sc = append(sc, name)
		}
	}
	return sc, nil
}

// runs returns how many runs cfg makes: two a round, baseline and sticky.
func (c *config) runs() int { return len(c.scenarios) * len(c.levels) * c.rounds * 2 }

// runOverhead is about what a run costs beyond its warm-up and measurement:
// starting the proxy, connecting, stopping it.
const runOverhead = 300 * time.Millisecond

// estimate returns about how long cfg takes to run.
func (c *config) estimate() time.Duration {
	runs := c.runs()
	if c.paired {
		runs /= 2 // two at a time
	}
	return time.Duration(runs) * (c.warmup + c.duration + runOverhead)
}
