//go:build !linux

package apiservertest

import "syscall"

// supported reports whether the harness runs on this system, and if not, why.
func supported() (bool, string) {
	return false, "apiservertest runs on Linux only"
}

// sysProcAttr is never called on this system: Start skips first.
func sysProcAttr() *syscall.SysProcAttr { return nil }

// signalGroup is never called on this system: Start skips first.
func signalGroup(pid int, kill bool) {}
