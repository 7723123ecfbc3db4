package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// stopGrace is how long a child has to exit once its stdin is closed
// before it is killed.
const stopGrace = 2 * time.Second

// launcher starts this program's helper processes and external tools, each
// in a process group of its own and, when pinning, bound to a CPU by
// taskset.
type launcher struct {
	exe     string // this program, re-executed with -role
	taskset string // taskset's path; "" when not pinning
}

// child is a process started by a launcher. The helpers print one line
// when they are ready and exit when their stdin closes; whatever happens to
// this program, they are killed with their group when the context it
// started them with is done, and see their stdin close if it dies.
type child struct {
	name   string
	cmd    *exec.Cmd
	stdin  io.Closer
	lines  chan string   // stdout, line by line; closed at its end
	quit   chan struct{} // closed by stop: nobody reads lines any more
	stderr *tail
	done   chan struct{} // closed once the process has been waited for
	err    error         // Wait's result, set before done is closed
	once   sync.Once
}

// start runs name with args, on CPU cpu if the launcher pins and cpu is
// not "".
func (l *launcher) start(ctx context.Context, cpu, name string, args ...string) (*child, error) {
	path, argv := name, args
	if l.taskset != "" && cpu != "" {
		path, argv = l.taskset, append([]string{"-c", cpu, name}, args...)
	}
	cmd := exec.CommandContext(ctx, path, argv...)
	ownGroup(cmd)
	cmd.Cancel = func() error { return killGroup(cmd.Process) }
	cmd.WaitDelay = stopGrace
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout = pw
	c := &child{
		name: name, cmd: cmd, stdin: stdin,
		lines: make(chan string), quit: make(chan struct{}), stderr: &tail{max: 4 << 10},
		done: make(chan struct{}),
	}
	cmd.Stderr = c.stderr
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	pw.Close() // the child holds the write end now
	go func() {
		defer pr.Close()
		defer close(c.lines)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			select {
			case c.lines <- sc.Text():
			case <-c.quit:
				return
			}
		}
	}()
	go func() {
		c.err = cmd.Wait()
		close(c.done)
	}()
	return c, nil
}

// pid returns the child's process ID; under taskset too, as taskset
// executes the command in its own place.
func (c *child) pid() int { return c.cmd.Process.Pid }

// line returns the rest of the next line of c's output that starts with
// prefix, skipping the others, or an error if none comes within timeout or
// ctx is done first.
func (c *child) line(ctx context.Context, prefix string, timeout time.Duration) (string, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case l, ok := <-c.lines:
			if !ok { // stdout closed: the child exited, or is about to
				select {
				case <-c.done:
				case <-time.After(stopGrace):
				}
				return "", c.failure(fmt.Errorf("closed its output before printing %q", prefix))
			}
			if rest, ok := strings.CutPrefix(l, prefix); ok {
				return rest, nil
			}
		case <-timer.C:
			return "", c.failure(fmt.Errorf("printed no %q within %v", prefix, timeout))
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
}

// wait waits for c to exit, at most timeout, and returns its error.
func (c *child) wait(ctx context.Context, timeout time.Duration) error {
	select {
	case <-c.done:
		if c.err != nil {
			return c.failure(c.err)
		}
		return nil
	case <-time.After(timeout):
		return c.failure(fmt.Errorf("still running after %v", timeout))
	case <-ctx.Done():
		return ctx.Err()
	}
}

// failure returns err about c, with the end of what c wrote to stderr.
func (c *child) failure(err error) error {
	if s := strings.TrimSpace(c.stderr.String()); s != "" {
		return fmt.Errorf("%s: %w; its stderr ends:\n%s", c.name, err, s)
	}
	return fmt.Errorf("%s: %w", c.name, err)
}

// stop closes c's stdin, which makes a helper exit, waits for it to exit,
// and kills its group after stopGrace. It returns once c has been waited
// for. It may be called more than once.
func (c *child) stop() {
	c.once.Do(func() {
		close(c.quit)
		c.stdin.Close()
		select {
		case <-c.done:
		case <-time.After(stopGrace):
			killGroup(c.cmd.Process)
			<-c.done
		}
	})
}

// tail keeps the last max bytes written to it. It is safe for concurrent
// use.
type tail struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// clockTick is the unit of the CPU times in /proc/PID/stat: USER_HZ, 100
// on every Linux architecture Go runs on.
const clockTick = 10 * time.Millisecond

// cpuTime returns the CPU time, user and system, that process pid has used
// so far, all its threads together. It reads /proc, so it fails but on
// Linux.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	return parseStat(string(b))
}

// parseStat returns the user plus system time in the text of a
// /proc/PID/stat file: its 14th and 15th fields, in clock ticks.
func parseStat(s string) (time.Duration, error) {
	// The second field, the command name in parentheses, may hold spaces
	// and parentheses: count fields from the last ')'.
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("stat: no command name")
	}
	f := strings.Fields(s[i+1:]) // from the 3rd field on
	if len(f) < 13 {
		return 0, fmt.Errorf("stat: %d fields", len(f)+2)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("stat: %w", err)
	}
	return time.Duration(utime+stime) * clockTick, nil
}

// coreBusy returns the time CPU n has run anything but idle: processes,
// the kernel for them, and, in a virtual machine, the hypervisor's other
// guests (steal). Interrupts are left out, as they are from a process's
// CPU time. It reads /proc/stat, so it fails but on Linux.
func coreBusy(n int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	return parseCoreBusy(string(b), n)
}

// parseCoreBusy returns the busy time of CPU n in the text of /proc/stat:
// user, nice, system and steal, the 1st to 3rd and 8th numbers of its
// line, in clock ticks.
func parseCoreBusy(stat string, n int) (time.Duration, error) {
	name := "cpu" + strconv.Itoa(n)
	for l := range strings.Lines(stat) {
		f := strings.Fields(l)
		if len(f) < 9 || f[0] != name {
			continue
		}
		var ticks int64
		for _, i := range []int{1, 2, 3, 8} {
			v, err := strconv.ParseInt(f[i], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("stat: %s: %w", name, err)
			}
			ticks += v
		}
		return time.Duration(ticks) * clockTick, nil
	}
	return 0, fmt.Errorf("stat: no %s", name)
}

// meter measures what a proxy process used of the CPU between start and
// stop and, when it is pinned, what everything else used of its CPU.
type meter struct {
	pid        int
	core       int // the CPU the proxy is pinned to; -1 if it is not
	proc, busy time.Duration
	ok, coreOK bool
}

// usage is what a meter measured; a field is -1 when it could not be.
type usage struct {
	proxy  time.Duration // the proxy process's CPU time
	others time.Duration // the time its CPU ran anything else
}

func (m *meter) start() {
	var err error
	m.proc, err = cpuTime(m.pid)
	m.ok = err == nil
	if m.core >= 0 {
		m.busy, err = coreBusy(m.core)
		m.coreOK = err == nil
	}
}

func (m *meter) stop() usage {
	u := usage{proxy: -1, others: -1}
	proc, err := cpuTime(m.pid)
	if err != nil || !m.ok {
		return u
	}
	u.proxy = proc - m.proc
	if m.core >= 0 && m.coreOK {
		if busy, err := coreBusy(m.core); err == nil {
			u.others = max(busy-m.busy-u.proxy, 0)
		}
	}
	return u
}

// parseCPUList parses a Linux CPU list such as "0-3,8,10-11".
func parseCPUList(s string) ([]int, error) {
	var cpus []int
	for f := range strings.SplitSeq(strings.TrimSpace(s), ",") {
		lo, hi, isRange := strings.Cut(f, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return nil, fmt.Errorf("bad CPU list %q", s)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, fmt.Errorf("bad CPU list %q", s)
			}
		}
		for n := a; n <= b && len(cpus) < 1<<16; n++ {
			cpus = append(cpus, n)
		}
	}
	return cpus, nil
}

// allowedCPUs returns the CPUs this process may run on, from
// /proc/self/status, or nil if that cannot be read.
func allowedCPUs() []int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return nil
	}
	for l := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(l, "Cpus_allowed_list:"); ok {
			cpus, err := parseCPUList(v)
			if err != nil {
				return nil
			}
			return cpus
		}
	}
	return nil
}
