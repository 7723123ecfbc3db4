package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// readyTimeout bounds every wait that is not a run's load: for a helper to
// start, for a probe, for a process to exit.
const readyTimeout = 10 * time.Second

// numBackends is how many backends the proxies spread requests over.
const numBackends = 3

// bench runs the benchmark cfg describes and collects its runs.
type bench struct {
	cfg      config
	launch   launcher
	progress io.Writer
	rep      *report

	proxyCPU, loadCPU string // CPU numbers for taskset; "" when not pinning
	proxyCore         int    // proxyCPU as a number; -1 when not pinning
	wrk               string // wrk's path when wrk generates the load
	wrkThreads        int
	dir               string // temporary: wrk's scripts

	backends string   // the backends' URLs, comma-separated
	key      string   // the sticky cookie's signing key, hex: the same for every sticky proxy
	cookies  []string // for the bound scenario, Cookie headers binding to each backend in turn
	done     int      // runs done
}

// runBench runs the benchmark and returns its report. It kills every
// process it started before it returns, also when ctx is done first.
func runBench(ctx context.Context, cfg config, progress io.Writer) (*report, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	b := &bench{cfg: cfg, launch: launcher{exe: exe}, progress: progress, proxyCore: -1}
	b.rep = &report{
		Machine: describeMachine(),
		Setup: setup{
			Command:   commandLine(os.Args[0], cfg.args),
			Levels:    cfg.levels,
			Rounds:    cfg.rounds,
			Warmup:    cfg.warmup,
			Duration:  cfg.duration,
			Paired:    cfg.paired,
			Control:   cfg.control,
			Backends:  numBackends,
			BodySize:  bodySize,
			LoadStart: loadAverage(),
		},
	}
	b.choosePinning()
	if err := b.chooseGenerator(ctx); err != nil {
		return nil, err
	}
	if b.dir, err = os.MkdirTemp("", "affinity-bench-"); err != nil {
		return nil, err
	}
	defer os.RemoveAll(b.dir)
	if cfg.cpuprofile != "" {
		if err := os.MkdirAll(cfg.cpuprofile, 0o755); err != nil {
			return nil, err
		}
	}
	key := make([]byte, 32)
	rand.Read(key)
	b.key = hex.EncodeToString(key)

	backends, err := b.launch.start(ctx, b.loadCPU, exe, "-role", roleBackends, "-n", strconv.Itoa(numBackends))
	if err != nil {
		return nil, err
	}
	defer backends.stop()
	if b.backends, err = backends.line(ctx, "ready ", readyTimeout); err != nil {
		return nil, err
	}
	if b.cookies, err = b.fetchCookies(ctx); err != nil {
		return nil, fmt.Errorf("fetching sticky cookies: %w", err)
	}

	fmt.Fprintf(progress, "bench: %d runs, about %v; %s; %s\n", cfg.runs(), cfg.estimate().Round(time.Second), b.rep.Setup.Generator, b.rep.Setup.Pinning)
	for _, sc := range cfg.scenarios {
		res := scenarioResult{Name: sc, Description: scenarioText[sc]}
		for _, conns := range cfg.levels {
			lv := level{Conns: conns}
			for round := 1; round <= cfg.rounds; round++ {
				if cfg.paired {
					rs, err := b.pair(ctx, sc, conns, round)
					if err != nil {
						return nil, fmt.Errorf("%s c=%d round %d: %w", sc, conns, round, err)
					}
					lv.Runs = append(lv.Runs, rs[:]...)
					continue
				}
				for _, mode := range roundOrder(round) {
					r, err := b.once(ctx, sc, conns, mode, round)
					if err != nil {
						return nil, fmt.Errorf("%s c=%d %s round %d: %w", sc, conns, mode, round, err)
					}
					lv.Runs = append(lv.Runs, r)
				}
			}
			lv.summarize()
			res.Levels = append(res.Levels, lv)
		}
		b.rep.Scenarios = append(b.rep.Scenarios, res)
	}
	b.rep.Setup.LoadEnd = loadAverage()
	b.rep.addNotes()
	return b.rep, nil
}

// choosePinning decides where the processes run: the proxies on one CPU,
// the backends and the load generator on another, when taskset is there and
// this process may use two CPUs.
func (b *bench) choosePinning() {
	s := &b.rep.Setup
	unpinned := func(why string) {
		s.Pinning = "not pinned (" + why + ")"
		b.rep.Notes = append(b.rep.Notes, "not pinned: the proxy, the backends and the load generator share the CPUs, so ratios swing by ±20% unpinned on 2 cores")
	}
	if !b.cfg.pin {
		unpinned("-pin=false")
		return
	}
	taskset, err := exec.LookPath("taskset")
	if err != nil {
		unpinned("no taskset on PATH")
		return
	}
	cpus := allowedCPUs()
	if cpus == nil && runtime.NumCPU() >= 2 {
		cpus = []int{0, 1}
	}
	if len(cpus) < 2 {
		unpinned("one CPU")
		return
	}
	b.launch.taskset = taskset
	b.proxyCore = cpus[0]
	b.proxyCPU, b.loadCPU = strconv.Itoa(cpus[0]), strconv.Itoa(cpus[1])
	s.Pinned = true
	s.Pinning = fmt.Sprintf("proxy pinned to CPU %s, backends and load generator to CPU %s (taskset)", b.proxyCPU, b.loadCPU)
}

// chooseGenerator decides what generates the load: wrk when -gen says so,
// or -gen is auto and wrk is on PATH and can run for -d and -warmup.
func (b *bench) chooseGenerator(ctx context.Context) error {
	s := &b.rep.Setup
	s.Generator = "built-in Go generator (one http.Client per connection)"
	s.GeneratorName = genGo
	if b.cfg.gen == genGo {
		return nil
	}
	path, err := exec.LookPath("wrk")
	switch {
	case err != nil && b.cfg.gen == genWrk:
		return errors.New("-gen wrk: no wrk on PATH (apt-get install wrk)")
	case err != nil:
		s.Generator += "; wrk is not on PATH"
		return nil
	case !wholeSeconds(b.cfg.duration) || !wholeSeconds(b.cfg.warmup):
		s.Generator += "; wrk counts only whole seconds"
		return nil
	}
	b.wrk = path
	b.wrkThreads = 1
	if !s.Pinned {
		b.wrkThreads = max(1, runtime.NumCPU()/2)
	}
	s.GeneratorName = genWrk
	s.Generator = fmt.Sprintf("%s, %d thread(s)", wrkVersion(ctx, path), b.wrkThreads)
	return nil
}

// wrkVersion returns the first line of wrk -v, "wrk" if there is none.
func wrkVersion(ctx context.Context, path string) string {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	out, _ := exec.CommandContext(ctx, path, "-v").Output() // wrk -v exits 1
	line, _, _ := strings.Cut(string(out), "\n")
	if v, _, ok := strings.Cut(line, " ["); ok {
		line = v
	}
	if line = strings.TrimSpace(line); line == "" {
		return "wrk"
	}
	return line
}

// startProxy starts a proxy process and returns it with its base URL.
func (b *bench) startProxy(ctx context.Context, mode, cpu, profile string) (*child, string, error) {
	args := []string{"-role", roleProxy, "-mode", mode, "-backends", b.backends, "-key", b.key}
	if profile != "" {
		args = append(args, "-profile", profile)
	}
	p, err := b.launch.start(ctx, cpu, b.launch.exe, args...)
	if err != nil {
		return nil, "", err
	}
	ready, err := p.line(ctx, "ready ", readyTimeout)
	if err != nil {
		p.stop()
		return nil, "", err
	}
	addr, procs, _ := strings.Cut(ready, " ")
	if n, err := strconv.Atoi(procs); err == nil {
		b.rep.Setup.ProxyGOMAXPROCS = n
	}
	return p, "http://" + addr + "/", nil
}

// maxNewClients bounds the new clients fetchCookies sends to find a
// binding to every backend. The picker spreads idle backends' ties evenly,
// so with 3 backends one is still missed after 64 with a probability of
// 3 × (2/3)^64, about 10^-11.
const maxNewClients = 64

// fetchCookies asks a sticky proxy for bindings, as new clients, until it
// has one to each backend, and returns them as Cookie headers in the
// backends' order. The bound scenario sends them in turn, so that its
// requests spread over the backends as many clients' would, and as the
// baseline's do: the two scenarios then differ only by the proxy.
func (b *bench) fetchCookies(ctx context.Context) ([]string, error) {
	p, target, err := b.startProxy(ctx, modeSticky, "", "")
	if err != nil {
		return nil, err
	}
	defer p.stop()
	cookies := make([]string, numBackends)
	found := 0
	for range maxNewClients {
		resp, from, err := probe(ctx, target, "")
		if err != nil {
			return nil, err
		}
		c := stickyCookie(resp)
		if c == "" {
			return nil, fmt.Errorf("no %s cookie in the answer", cookieName)
		}
		if i := backendIndex(from); i >= 0 && cookies[i] == "" {
			cookies[i] = c
			found++
		}
		if found == numBackends {
			return cookies, nil
		}
	}
	return nil, fmt.Errorf("%d new clients bound to %d of the %d backends", maxNewClients, found, numBackends)
}

// stickyCookie returns resp's sticky cookie as a Cookie header; "": none.
func stickyCookie(resp *http.Response) string {
	for _, c := range resp.Cookies() {
		if c.Name == cookieName {
			return c.Name + "=" + c.Value
		}
	}
	return ""
}

// answeredBy returns the name of the backend that answered body, which
// begins with greeting and the name; "" if it does not.
func answeredBy(body []byte) string {
	rest, ok := strings.CutPrefix(string(body), greeting)
	if f := strings.Fields(rest); ok && len(f) > 0 {
		return f[0]
	}
	return ""
}

// backendIndex returns the index of the backend called name among
// numBackends, as backendName numbers them; -1 if there is none of that
// name.
func backendIndex(name string) int {
	for i := range numBackends {
		if backendName(i) == name {
			return i
		}
	}
	return -1
}

// probe sends one request to target, with cookie if it is not "", checks
// that the answer is a backend's and returns it and the name of the backend
// that sent it.
func probe(ctx context.Context, target, cookie string) (*http.Response, string, error) {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, "", err
	}
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	tr := &http.Transport{Proxy: nil}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, "", err
	}
	if resp.StatusCode != http.StatusOK || len(body) != bodySize {
		return nil, "", fmt.Errorf("probe: %s with %d bytes, want 200 OK with %d", resp.Status, len(body), bodySize)
	}
	return resp, answeredBy(body), nil
}

// once makes one run: it starts a fresh proxy, checks that it answers as
// the scenario expects, loads it, and stops it.
func (b *bench) once(ctx context.Context, sc string, conns int, mode string, round int) (sample, error) {
	r := sample{Mode: mode, Round: round}
	p, target, err := b.startChecked(ctx, sc, conns, mode, round)
	if err != nil {
		return r, err
	}
	defer p.stop()
	m := &meter{pid: p.pid(), core: b.proxyCore}
	var u usage
	if r.result, u, err = b.load(ctx, m, target, b.scenarioCookies(sc), conns); err != nil {
		return r, err
	}
	r.setRates(u)
	p.stop() // now: a profile is complete once the proxy has exited
	b.ran(sc, conns, r)
	return r, nil
}

// roundOrder returns the order in which round runs the two proxies: the
// baseline first in odd rounds, the sticky proxy first in even ones, so
// that whatever favours one place in a round (the run after another one
// runs on a machine in another state) favours each proxy equally often.
func roundOrder(round int) [2]string {
	if round%2 == 0 {
		return [2]string{modeSticky, modeBaseline}
	}
	return [2]string{modeBaseline, modeSticky}
}

// pair makes one paired run: a fresh baseline proxy and a fresh sticky
// proxy, on the same CPU, loaded at the same time by load generators of
// their own. Whatever slows the machine then slows both alike, and the
// costs per request compare as if each had had the machine alone. The
// scheduler splits the CPU between the two unevenly, and differently from
// round to round, so their req/s are given per full CPU.
func (b *bench) pair(ctx context.Context, sc string, conns, round int) ([2]sample, error) {
	// Which starts first alternates, lest it sway the scheduler's split
	// the same way every round.
	modes := roundOrder(round)
	var rs [2]sample
	var procs [2]*child
	var targets [2]string
	for i, mode := range modes {
		rs[i] = sample{Mode: mode, Round: round}
		p, target, err := b.startChecked(ctx, sc, conns, mode, round)
		if err != nil {
			return rs, err
		}
		defer p.stop()
		procs[i], targets[i] = p, target
	}
	var us [2]usage
	var errs [2]error
	var wg sync.WaitGroup
	for i := range modes {
		wg.Go(func() {
			m := &meter{pid: procs[i].pid(), core: b.proxyCore}
			rs[i].result, us[i], errs[i] = b.load(ctx, m, targets[i], b.scenarioCookies(sc), conns)
		})
	}
	wg.Wait()
	if err := errors.Join(errs[:]...); err != nil {
		return rs, err
	}
	for i := range modes {
		u := us[i]
		if other := us[1-i].proxy; u.others >= 0 && other >= 0 {
			u.others = max(u.others-other, 0) // the partner is not other work
		}
		rs[i].setRates(u)
		rs[i].perCPU()
		procs[i].stop()
	}
	if rs[0].Mode != modeBaseline {
		rs[0], rs[1] = rs[1], rs[0]
	}
	for _, r := range rs {
		b.ran(sc, conns, r)
	}
	return rs, nil
}

// startChecked starts a fresh proxy for a run and checks that it answers
// as the scenario expects.
func (b *bench) startChecked(ctx context.Context, sc string, conns int, mode string, round int) (*child, string, error) {
	profile := ""
	if b.cfg.cpuprofile != "" {
		profile = filepath.Join(b.cfg.cpuprofile, fmt.Sprintf("%s-c%d-%s-%d.pprof", sc, conns, mode, round))
	}
	serve := mode
	if b.cfg.control {
		serve = modeBaseline
	}
	p, target, err := b.startProxy(ctx, serve, b.proxyCPU, profile)
	if err != nil {
		return nil, "", err
	}
	if err := b.check(ctx, target, sc, serve); err != nil {
		p.stop()
		return nil, "", err
	}
	return p, target, nil
}

// check sends target, a proxy serving as mode, one request with each of
// the scenario's cookies (one without, if it has none), and checks that
// each is answered as the scenario says: only the sticky proxy answering a
// new client sets a cookie, and the sticky proxy sends a bound request to
// the backend its cookie names. Otherwise the scenario would not measure
// what it says.
func (b *bench) check(ctx context.Context, target, sc, mode string) error {
	cookies := b.scenarioCookies(sc)
	if len(cookies) == 0 {
		cookies = []string{""}
	}
	for i, c := range cookies {
		resp, from, err := probe(ctx, target, c)
		if err != nil {
			return err
		}
		if set, want := len(resp.Cookies()) > 0, mode == modeSticky && sc == scenarioNew; set != want {
			return fmt.Errorf("probe: Set-Cookie %v, want %v", set, want)
		}
		if mode == modeSticky && c != "" && backendIndex(from) != i {
			return fmt.Errorf("probe: the cookie binding to %s was answered by %q", backendName(i), from)
		}
	}
	return nil
}

// scenarioCookies returns the Cookie headers the scenario's requests
// carry, in turn; none if they carry none.
func (b *bench) scenarioCookies(sc string) []string {
	if sc == scenarioBound {
		return b.cookies
	}
	return nil
}

// load loads target with the load generator, its requests carrying cookies
// in turn, and returns what it measured and what m measured meanwhile.
func (b *bench) load(ctx context.Context, m *meter, target string, cookies []string, conns int) (result, usage, error) {
	if b.wrk != "" {
		return b.loadWrk(ctx, m, target, cookies, conns)
	}
	return b.loadGo(ctx, m, target, cookies, conns)
}

// ran counts a run as done and reports it on the progress writer.
func (b *bench) ran(sc string, conns int, r sample) {
	b.done++
	cpuText := ""
	if r.CPUUtil > 0 {
		cpuText = fmt.Sprintf(", proxy CPU %.0f%%", 100*r.CPUUtil)
	}
	if r.OthersShare > 0 {
		cpuText += fmt.Sprintf(" (others %.0f%%)", 100*r.OthersShare)
	}
	unit := "req/s"
	if r.MeasuredRPS > 0 {
		unit = "req/s per CPU"
	}
	fmt.Fprintf(b.progress, "[%*d/%d] %-5s c=%-4d round %d/%d %-8s %8.0f %s, p99 %s%s, %d errors\n",
		len(strconv.Itoa(b.cfg.runs())), b.done, b.cfg.runs(), sc, conns, r.Round, b.cfg.rounds, r.Mode,
		r.RPS, unit, fmtDuration(r.P99), cpuText, r.Errors)
}

// loadGo loads target with the built-in generator and returns what it
// measured and what m measured meanwhile.
func (b *bench) loadGo(ctx context.Context, m *meter, target string, cookies []string, conns int) (result, usage, error) {
	args := []string{"-role", roleLoad, "-url", target,
		"-c", strconv.Itoa(conns), "-warmup", b.cfg.warmup.String(), "-d", b.cfg.duration.String()}
	for _, c := range cookies {
		args = append(args, "-cookie", c)
	}
	g, err := b.launch.start(ctx, b.loadCPU, b.launch.exe, args...)
	if err != nil {
		return result{}, usage{}, err
	}
	defer g.stop()
	if _, err := g.line(ctx, "measuring", b.cfg.warmup+readyTimeout); err != nil {
		return result{}, usage{}, err
	}
	m.start()
	line, err := g.line(ctx, "result ", b.cfg.duration+drainGrace+readyTimeout)
	if err != nil {
		return result{}, usage{}, err
	}
	u := m.stop()
	res, err := parseResult(line)
	if err != nil {
		return result{}, usage{}, err
	}
	if err := g.wait(ctx, readyTimeout); err != nil {
		return result{}, usage{}, err
	}
	return res, u, nil
}

// loadWrk loads target with wrk, a warm-up run then a measured one, and
// returns what wrk measured and what m measured meanwhile.
func (b *bench) loadWrk(ctx context.Context, m *meter, target string, cookies []string, conns int) (result, usage, error) {
	name := "new"
	if len(cookies) > 0 {
		name = "bound"
	}
	// One script per target: paired runs write theirs at the same time.
	script, err := writeWrkScript(b.dir, name+"-"+path.Base(strings.TrimSuffix(target, "/")), cookies)
	if err != nil {
		return result{}, usage{}, err
	}
	wrk := func(d time.Duration) (*child, error) {
		return b.launch.start(ctx, b.loadCPU, b.wrk, wrkArgs(target, script, conns, b.wrkThreads, d)...)
	}
	if b.cfg.warmup > 0 {
		w, err := wrk(b.cfg.warmup)
		if err != nil {
			return result{}, usage{}, err
		}
		err = w.wait(ctx, b.cfg.warmup+wrkTimeout+readyTimeout)
		w.stop()
		if err != nil {
			return result{}, usage{}, err
		}
	}
	m.start()
	w, err := wrk(b.cfg.duration)
	if err != nil {
		return result{}, usage{}, err
	}
	defer w.stop()
	line, err := w.line(ctx, "result ", b.cfg.duration+wrkTimeout+readyTimeout)
	if err != nil {
		return result{}, usage{}, err
	}
	u := m.stop()
	res, err := parseResult(line)
	if err != nil {
		return result{}, usage{}, err
	}
	if err := w.wait(ctx, readyTimeout); err != nil {
		return result{}, usage{}, err
	}
	return res, u, nil
}
