package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
)

// machine describes the computer the benchmark ran on.
type machine struct {
	CPUs     int    `json:"cpus"` // runtime.NumCPU: those this process may use
	OS       string `json:"os"`
	Arch     string `json:"arch"`
	CPUModel string `json:"cpu_model,omitempty"`
	Go       string `json:"go"`
}

func (m machine) String() string {
	model := ""
	if m.CPUModel != "" {
		model = ", " + m.CPUModel
	}
	return fmt.Sprintf("%d CPUs, %s/%s%s, %s", m.CPUs, m.OS, m.Arch, model, m.Go)
}

// describeMachine describes this computer.
func describeMachine() machine {
	m := machine{CPUs: runtime.NumCPU(), OS: runtime.GOOS, Arch: runtime.GOARCH, Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		m.CPUModel = cpuModel(string(b))
	}
	return m
}

// cpuModel returns the processor's name in the text of /proc/cpuinfo: the
// first "model name" (x86), or else "Model" or "Hardware" (ARM), or "cpu"
// (POWER); "" if there is none.
func cpuModel(cpuinfo string) string {
	for _, key := range []string{"model name", "Model", "Hardware", "cpu"} {
		for l := range strings.Lines(cpuinfo) {
			k, v, ok := strings.Cut(l, ":")
			if ok && strings.TrimSpace(k) == key {
				if v = strings.TrimSpace(v); v != "" {
					return v
				}
			}
		}
	}
	return ""
}

// commandLine returns the command that ran the benchmark, argv0 with args,
// quoted for a POSIX shell. A binary that go run built in its cache reads
// as "go run ./examples/bench".
func commandLine(argv0 string, args []string) string {
	words := []string{argv0}
	if strings.Contains(argv0, "go-build") {
		words = []string{"go", "run", "./examples/bench"}
	}
	for _, a := range args {
		words = append(words, shellQuote(a))
	}
	return strings.Join(words, " ")
}

// shellQuote quotes s for a POSIX shell if it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_=.,/:@%+") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// loadAverage returns the machine's load average over the last minute,
// from /proc/loadavg, or -1 if it cannot be read.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f, _, _ := strings.Cut(string(b), " ")
	v, err := strconv.ParseFloat(f, 64)
	if err != nil {
		return -1
	}
	return v
}
