package apiservertest

import "syscall"

// supported reports whether the harness runs on this system, and if not, why.
func supported() (bool, string) { return true, "" }

// sysProcAttr places a child in a process group of its own, so that it can
// be signalled with everything it starts, and has the kernel kill it when
// the test process dies without running its cleanups (a test timeout, a
// fatal signal).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// signalGroup sends SIGTERM, or SIGKILL if kill is set, to the process
// group led by pid. A group that is gone already is not an error.
func signalGroup(pid int, kill bool) {
	sig := syscall.SIGTERM
	if kill {
		sig = syscall.SIGKILL
	}
	_ = syscall.Kill(-pid, sig)
}
