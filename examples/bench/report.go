package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// report is everything a benchmark found, as printed and as -json writes it.
type report struct {
	Machine   machine          `json:"machine"`
	Setup     setup            `json:"setup"`
	Scenarios []scenarioResult `json:"scenarios"`
	Notes     []string         `json:"notes,omitempty"` // what the reader should know to trust the figures
}

// setup is how the figures were made.
type setup struct {
	Command         string        `json:"command"`
	Generator       string        `json:"generator"`
	GeneratorName   string        `json:"generator_name"` // wrk or go
	Pinning         string        `json:"pinning"`
	Pinned          bool          `json:"pinned"`
	Paired          bool          `json:"paired"`  // baseline and sticky ran at once, sharing the proxy CPU
	Control         bool          `json:"control"` // the baseline ran in the sticky proxy's place (A/A)
	ProxyGOMAXPROCS int           `json:"proxy_gomaxprocs"`
	Levels          []int         `json:"connections"`
	Rounds          int           `json:"rounds"`
	Warmup          time.Duration `json:"warmup_ns"`
	Duration        time.Duration `json:"duration_ns"`
	Backends        int           `json:"backends"`
	BodySize        int           `json:"body_bytes"`
	// The machine's one-minute load average as the benchmark started and
	// ended, -1 if unknown: other work on the machine makes figures noisy.
	LoadStart float64 `json:"load_average_start"`
	LoadEnd   float64 `json:"load_average_end"`
}

// scenarioResult holds a scenario's figures, by concurrency.
type scenarioResult struct {
	Name        string  `json:"name"`
	Description string  `json:"description"`
	Levels      []level `json:"levels"`
}

// level holds the runs at one concurrency, a baseline and a sticky run a round,
// and their summaries.
type level struct {
	Conns    int      `json:"connections"`
	Baseline summary  `json:"baseline"`
	Sticky   summary  `json:"sticky"`
	Ratio    ratios   `json:"sticky_over_baseline"`
	Runs     []sample `json:"runs"`
}

// sample is one proxy process under load.
type sample struct {
	Mode  string `json:"mode"`
	Round int    `json:"round"`
	result
	RPS float64 `json:"requests_per_second"` // paired: per full CPU
	// MeasuredRPS is, in a paired run, the req/s measured, before RPS
	// scaled it to a full CPU.
	MeasuredRPS float64       `json:"measured_requests_per_second,omitempty"`
	ProxyCPU    time.Duration `json:"proxy_cpu_ns,omitempty"`             // 0: unknown
	CPUPerReq   time.Duration `json:"proxy_cpu_per_request_ns,omitempty"` // 0: unknown
	CPUUtil     float64       `json:"proxy_cpu_share,omitempty"`          // of one CPU; 0: unknown
	// The share of the proxy's CPU that anything else used: other
	// processes, the hypervisor's other guests. Pinned and on Linux only.
	OthersShare float64 `json:"proxy_core_others_share,omitempty"`
}

// setRates fills in the rates of r from its result and the CPU usage
// during the measurement.
func (r *sample) setRates(u usage) {
	r.RPS = float64(r.Requests) / r.Elapsed.Seconds()
	if u.others >= 0 {
		// At least a trace, so that a known 0 is not read as unknown.
		r.OthersShare = max(u.others.Seconds()/r.Elapsed.Seconds(), 1e-6)
	}
	if u.proxy < 0 || r.Requests == 0 {
		return
	}
	r.ProxyCPU = u.proxy
	r.CPUUtil = u.proxy.Seconds() / r.Elapsed.Seconds()
	r.CPUPerReq = u.proxy / time.Duration(r.Requests)
}

// perCPU scales r's throughput to a full CPU, for a proxy that shared its
// CPU with another (a paired run): req/s divided by the share of the CPU it
// had, the rate it measured kept in MeasuredRPS. Without a CPU share, r is
// left as it is.
func (r *sample) perCPU() {
	if r.CPUUtil <= 0 {
		return
	}
	r.MeasuredRPS = r.RPS
	r.RPS /= r.CPUUtil
}

// summary sums up one proxy's runs at one concurrency: medians over the
// rounds, and the range of the throughput.
type summary struct {
	RPS       float64       `json:"requests_per_second"` // median
	RPSMin    float64       `json:"requests_per_second_min"`
	RPSMax    float64       `json:"requests_per_second_max"`
	P50       time.Duration `json:"p50_ns"` // median
	P99       time.Duration `json:"p99_ns"` // median
	CPUPerReq time.Duration `json:"proxy_cpu_per_request_ns,omitempty"`
	CPUUtil   float64       `json:"proxy_cpu_share,omitempty"`
	// OthersShare is the median share of the proxy's CPU that anything
	// else used, when known.
	OthersShare float64 `json:"proxy_core_others_share,omitempty"`
	Requests    int64   `json:"requests"`
	Errors      int64   `json:"errors"`
}

// ratios compares sticky with baseline: ratios of their medians, and the
// throughput ratio of each round's pair of runs summed up: its median, a
// 95% confidence interval for that median, and its range.
type ratios struct {
	Throughput    float64 `json:"throughput"`
	ThroughputMin float64 `json:"throughput_round_min"`
	ThroughputMax float64 `json:"throughput_round_max"`
	// The median of the rounds' ratios, and its interval: with 6 rounds or
	// more, the order statistics that hold the median with a probability
	// of at least 95%, exactly ThroughputCover (see medianInterval).
	ThroughputRound float64 `json:"throughput_round_median"`
	ThroughputLow   float64 `json:"throughput_round_median_low,omitempty"`
	ThroughputHigh  float64 `json:"throughput_round_median_high,omitempty"`
	ThroughputCover float64 `json:"throughput_round_median_coverage,omitempty"`
	P99             float64 `json:"p99"`
	CPUPerReq       float64 `json:"proxy_cpu_per_request,omitempty"`
}

// confidence is the least probability with which the reported interval
// holds the median of the rounds' throughput ratios.
const confidence = 0.95

// summarize fills in l's summaries and ratios from its runs.
func (l *level) summarize() {
	l.Baseline = summarize(l.Runs, modeBaseline)
	l.Sticky = summarize(l.Runs, modeSticky)
	l.Ratio = ratios{
		Throughput: ratio(l.Sticky.RPS, l.Baseline.RPS),
		P99:        ratio(float64(l.Sticky.P99), float64(l.Baseline.P99)),
		CPUPerReq:  ratio(float64(l.Sticky.CPUPerReq), float64(l.Baseline.CPUPerReq)),
	}
	base := map[int]float64{}
	for _, r := range l.Runs {
		if r.Mode == modeBaseline {
			base[r.Round] = r.RPS
		}
	}
	var per []float64
	for _, r := range l.Runs {
		if b, ok := base[r.Round]; ok && r.Mode == modeSticky && b > 0 {
			per = append(per, r.RPS/b)
		}
	}
	if len(per) > 0 {
		l.Ratio.ThroughputMin, l.Ratio.ThroughputMax = minMax(per)
		l.Ratio.ThroughputRound = median(per)
	}
	if lo, hi, cover, ok := medianInterval(per, confidence); ok {
		l.Ratio.ThroughputLow, l.Ratio.ThroughputHigh, l.Ratio.ThroughputCover = lo, hi, cover
	}
}

// summarize sums up the runs of mode.
func summarize(runs []sample, mode string) summary {
	var s summary
	var rps, p50, p99, cpr, util, others []float64
	for _, r := range runs {
		if r.Mode != mode {
			continue
		}
		rps = append(rps, r.RPS)
		p50 = append(p50, float64(r.P50))
		p99 = append(p99, float64(r.P99))
		if r.CPUPerReq > 0 {
			cpr = append(cpr, float64(r.CPUPerReq))
			util = append(util, r.CPUUtil)
		}
		if r.OthersShare > 0 {
			others = append(others, r.OthersShare)
		}
		s.Requests += r.Requests
		s.Errors += r.Errors
	}
	if len(rps) == 0 {
		return s
	}
	s.RPS = median(rps)
	s.RPSMin, s.RPSMax = minMax(rps)
	s.P50 = time.Duration(median(p50))
	s.P99 = time.Duration(median(p99))
	if len(cpr) == len(rps) { // known for every run, or not at all
		s.CPUPerReq = time.Duration(median(cpr))
		s.CPUUtil = median(util)
	}
	if len(others) == len(rps) {
		s.OthersShare = median(others)
	}
	return s
}

// ratio returns a/b, 0 when b is 0.
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// minMax returns the smallest and largest of xs, which is not empty.
func minMax(xs []float64) (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, x := range xs {
		lo, hi = min(lo, x), max(hi, x)
	}
	return lo, hi
}

// busyCore is the share of the proxy's CPU other work may take before the
// report warns about it.
const busyCore = 0.1

// saturated is the share of its CPU under which a pinned proxy was not
// what limited the throughput.
const saturated = 0.9

// proxyUtil returns the share of the proxy CPU the baseline proxy used,
// or, paired, the two proxies together: under saturated, something other
// than the proxies limited req/s.
func (l *level) proxyUtil(paired bool) float64 {
	if paired && l.Sticky.CPUUtil > 0 {
		return l.Baseline.CPUUtil + l.Sticky.CPUUtil
	}
	return l.Baseline.CPUUtil
}

// addNotes adds to rep.Notes what its figures say about their own
// trustworthiness.
func (rep *report) addNotes() {
	if rep.Setup.LoadStart > float64(rep.Machine.CPUs)/2 {
		rep.Notes = append(rep.Notes, fmt.Sprintf(
			"the machine was busy with other work (load average %.2f on %d CPUs at the start): expect noisy figures, and mind the per-round ranges",
			rep.Setup.LoadStart, rep.Machine.CPUs))
	}
	var busy, idle, errs []string // one item per level
	for _, sc := range rep.Scenarios {
		for _, l := range sc.Levels {
			at := fmt.Sprintf("%s c=%d", sc.Name, l.Conns)
			if others := max(l.Baseline.OthersShare, l.Sticky.OthersShare); others > busyCore {
				busy = append(busy, fmt.Sprintf("%s %.0f%%", at, 100*others))
			} else if util := l.proxyUtil(rep.Setup.Paired); rep.Setup.Pinned && util > 0 && util < saturated {
				idle = append(idle, fmt.Sprintf("%s %.0f%%", at, 100*util))
			}
			if n := l.Baseline.Errors + l.Sticky.Errors; n > 0 {
				errs = append(errs, fmt.Sprintf("%s %d (baseline %d, sticky %d)", at, n, l.Baseline.Errors, l.Sticky.Errors))
			}
		}
	}
	if len(busy) > 0 {
		rep.Notes = append(rep.Notes, "other work (other processes, the hypervisor's other guests) took this much of the proxy's CPU, "+
			"so req/s and p99 measure the machine's load as much as the proxies: "+strings.Join(busy, ", "))
	}
	if len(idle) > 0 {
		who := "the baseline proxy used only this much of its CPU"
		if rep.Setup.Paired {
			who = "the two proxies together used only this much of their CPU"
		}
		rep.Notes = append(rep.Notes, who+", so the load generator or the backends limited req/s, "+
			"and the req/s ratio understates the sticky layer's cost (CPU/req still compares the proxies"+wrkHint(rep.Setup.GeneratorName)+"): "+
			strings.Join(idle, ", "))
	}
	if len(errs) > 0 {
		rep.Notes = append(rep.Notes, "requests failed or not answered 200: "+strings.Join(errs, ", "))
	}
}

func wrkHint(gen string) string {
	if gen == genGo {
		return "; wrk, lighter than the built-in generator, may load the proxy fully: apt-get install wrk"
	}
	return ""
}

// writeJSON writes rep as indented JSON.
func writeJSON(w io.Writer, rep *report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// writeText writes rep as tables: the setup, a table per scenario with a
// row per proxy and concurrency, a table of throughput by concurrency when
// there are several, a legend and the notes.
func writeText(w io.Writer, rep *report) error {
	s := rep.Setup
	m := rep.Machine
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "sticky.Handler against the best bare httputil.ReverseProxy, on 127.0.0.1\n")
	fmt.Fprintf(tw, "machine\t%s\n", m)
	fmt.Fprintf(tw, "command\t%s\n", s.Command)
	fmt.Fprintf(tw, "load\t%s; keep-alive; %d backends answering %d bytes\n", s.Generator, s.Backends, s.BodySize)
	procs := ""
	if s.ProxyGOMAXPROCS > 0 {
		procs = fmt.Sprintf("; proxy GOMAXPROCS %d", s.ProxyGOMAXPROCS)
	}
	fmt.Fprintf(tw, "pinning\t%s%s\n", s.Pinning, procs)
	if s.LoadStart >= 0 && s.LoadEnd >= 0 {
		fmt.Fprintf(tw, "loadavg\t%.2f at start, %.2f at end (one minute; at start all of it is other work)\n", s.LoadStart, s.LoadEnd)
	}
	order := "baseline and sticky one after the other, which first alternating,"
	if s.Paired {
		order = "baseline and sticky at the same time, sharing the proxy CPU, each with a load generator of its own,"
	}
	fmt.Fprintf(tw, "runs\t%d round(s) of %s per scenario and concurrency, each a fresh proxy process, %v warm-up + %v measured\n",
		s.Rounds, order, s.Warmup, s.Duration)
	if s.Control {
		fmt.Fprintf(tw, "control\tA/A: the baseline ran in the sticky proxy's place too (rows \"%s\"); ratios away from 1 are the method's noise\n", s.stickyLabel())
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	withCPU, withOthers := false, false
	for _, sc := range rep.Scenarios {
		for _, l := range sc.Levels {
			withCPU = withCPU || l.Baseline.CPUPerReq > 0
			withOthers = withOthers || l.Baseline.OthersShare > 0
		}
	}
	for _, sc := range rep.Scenarios {
		fmt.Fprintf(w, "\n%s: %s\n", sc.Name, sc.Description)
		tw := newTable(w)
		head := fmt.Sprintf("conns\t%-8s\treq/s\tmin–max\tp99", "proxy")
		if withCPU {
			head += "\tCPU/req\tproxy CPU"
		}
		if withOthers {
			head += "\tothers"
		}
		fmt.Fprint(tw, head+"\t×req/s\tper round\t95% CI\trange\t×p99")
		if withCPU {
			fmt.Fprint(tw, "\t×CPU/req")
		}
		fmt.Fprint(tw, "\t\n")
		for _, l := range sc.Levels {
			for _, mode := range []string{modeBaseline, modeSticky} {
				sm := l.Baseline
				if mode == modeSticky {
					sm = l.Sticky
				}
				label := mode
				if mode == modeSticky {
					label = s.stickyLabel()
				}
				fmt.Fprintf(tw, "%d\t%-8s\t%s\t%s–%s\t%s", l.Conns, label, fmtRate(sm.RPS), fmtRate(sm.RPSMin), fmtRate(sm.RPSMax), fmtDuration(sm.P99))
				if withCPU {
					fmt.Fprintf(tw, "\t%s\t%s", fmtDuration(sm.CPUPerReq), fmtShare(sm.CPUUtil))
				}
				if withOthers {
					fmt.Fprintf(tw, "\t%s", fmtShare(sm.OthersShare))
				}
				if mode == modeBaseline {
					fmt.Fprint(tw, "\t\t\t\t\t")
					if withCPU {
						fmt.Fprint(tw, "\t")
					}
				} else {
					ci := "-"
					if l.Ratio.ThroughputCover > 0 {
						ci = fmtRatio(l.Ratio.ThroughputLow) + "–" + fmtRatio(l.Ratio.ThroughputHigh)
					}
					fmt.Fprintf(tw, "\t%s\t%s\t%s\t%s–%s\t%s", fmtRatio(l.Ratio.Throughput), fmtRatio(l.Ratio.ThroughputRound), ci,
						fmtRatio(l.Ratio.ThroughputMin), fmtRatio(l.Ratio.ThroughputMax), fmtRatio(l.Ratio.P99))
					if withCPU {
						fmt.Fprintf(tw, "\t%s", fmtRatio(l.Ratio.CPUPerReq))
					}
				}
				fmt.Fprint(tw, "\t\n")
			}
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(s.Levels) > 1 {
		if err := writeGrowth(w, rep); err != nil {
			return err
		}
	}

	fmt.Fprint(w, "\nreq/s: requests answered 200 per second of the measured window, median of the rounds; min–max: over the rounds.\n"+
		"p99: the load generator's 99th-percentile latency, median of the rounds.\n")
	if withCPU {
		fmt.Fprint(w, "CPU/req: the proxy process's CPU time (user+system) per request, median of the rounds; proxy CPU: its share of one CPU.\n"+
			"  Pinned, a proxy CPU near 100% means the proxy limited req/s; CPU/req compares the proxies even when it did not.\n")
		if s.Paired {
			fmt.Fprint(w, "  Paired, the two proxies share one CPU, each about half of it: their sum near 100% means they limited req/s.\n"+
				"  req/s are then per full CPU (measured req/s ÷ proxy CPU), since the scheduler splits the CPU unevenly, and p99\n"+
				"  includes waiting for the other proxy's turn on the CPU.\n")
		}
	}
	if withOthers {
		fmt.Fprint(w, "others: the share of the proxy's CPU that other work used meanwhile (processes, the hypervisor's other guests), median.\n")
	}
	fmt.Fprint(w, "×: sticky/baseline of the medians (req/s under 1, p99 and CPU/req over 1: what the sticky layer costs);\n"+
		"  per round: the median of sticky/baseline req/s over the rounds' pairs of runs; 95% CI: an interval that holds\n"+
		"  that median with a probability of at least 95% (order statistics, the sign test's; 6 rounds or more);\n"+
		"  range: the lowest and highest of the rounds' ratios, a gauge of the noise.\n")
	for _, n := range rep.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	return nil
}

// stickyLabel names the proxy of the sticky slot in tables: "sticky", or in
// an A/A run "control", the baseline that ran in its place.
func (s *setup) stickyLabel() string {
	if s.Control {
		return "control"
	}
	return modeSticky
}

// writeGrowth writes the median throughput of each proxy by concurrency,
// a column pair per scenario.
func writeGrowth(w io.Writer, rep *report) error {
	fmt.Fprint(w, "\nthroughput by concurrency, median req/s\n")
	tw := newTable(w)
	fmt.Fprint(tw, "conns")
	for _, sc := range rep.Scenarios {
		fmt.Fprintf(tw, "\t%s baseline\t%s %s\t×", sc.Name, sc.Name, rep.Setup.stickyLabel())
	}
	fmt.Fprint(tw, "\t\n")
	for i, conns := range rep.Setup.Levels {
		fmt.Fprintf(tw, "%d", conns)
		for _, sc := range rep.Scenarios {
			l := sc.Levels[i]
			fmt.Fprintf(tw, "\t%s\t%s\t%s", fmtRate(l.Baseline.RPS), fmtRate(l.Sticky.RPS), fmtRatio(l.Ratio.Throughput))
		}
		fmt.Fprint(tw, "\t\n")
	}
	return tw.Flush()
}

// table is a tabwriter, right-aligned, that writes to w without the
// spaces it leaves at the ends of lines after empty cells.
type table struct {
	*tabwriter.Writer
	buf bytes.Buffer
	w   io.Writer
}

func newTable(w io.Writer) *table {
	t := &table{w: w}
	t.Writer = tabwriter.NewWriter(&t.buf, 0, 0, 2, ' ', tabwriter.AlignRight)
	return t
}

// Flush writes the table out.
func (t *table) Flush() error {
	if err := t.Writer.Flush(); err != nil {
		return err
	}
	var b []byte
	for l := range bytes.Lines(t.buf.Bytes()) {
		b = append(append(b, bytes.TrimRight(l, " \n")...), '\n')
	}
	t.buf.Reset()
	_, err := t.w.Write(b)
	return err
}

// fmtRate formats a rate of requests per second, to the unit.
func fmtRate(r float64) string { return strconv.FormatFloat(r, 'f', 0, 64) }

// fmtRatio formats a ratio to three decimals, "-" when unknown.
func fmtRatio(r float64) string {
	if r == 0 {
		return "-"
	}
	return strconv.FormatFloat(r, 'f', 3, 64)
}

// fmtShare formats a share of a CPU as a percentage, "-" when unknown.
func fmtShare(s float64) string {
	if s == 0 {
		return "-"
	}
	return strconv.FormatFloat(100*s, 'f', 0, 64) + "%"
}

// fmtDuration formats d to three significant digits in ns, µs, ms or s:
// 850ns, 46.8µs, 4.10ms, 1.23s; "-" for 0, which means unknown.
func fmtDuration(d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	units := []struct {
		name string
		size time.Duration
	}{{"s", time.Second}, {"ms", time.Millisecond}, {"µs", time.Microsecond}}
	for i, u := range units {
		if d < u.size {
			continue
		}
		v := float64(d) / float64(u.size)
		s := sig3(v)
		if s == "1000" && i > 0 { // 999.7µs rounds to 1.00ms
			return sig3(v/1000) + units[i-1].name
		}
		return s + u.name
	}
	return strconv.FormatInt(int64(d), 10) + "ns"
}

// sig3 formats v, at least 1, to three significant digits.
func sig3(v float64) string {
	for _, dec := range []int{2, 1, 0} {
		s := strconv.FormatFloat(v, 'f', dec, 64)
		if digits := len(strings.ReplaceAll(s, ".", "")); digits <= 3 {
			return s
		}
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}
