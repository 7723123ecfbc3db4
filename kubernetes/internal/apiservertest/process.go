package apiservertest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"time"
)

// process is a child process in a process group of its own, its standard
// output and error appended to a log file.
type process struct {
	name string
	log  string
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has exited and err is set
	err  error         // what Wait returned
}

// startProcess starts path with args, output appended to log.
func startProcess(name, log, path string, args ...string) (*process, error) {
	out, err := os.OpenFile(log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer out.Close() // the child has its own copy
	cmd := exec.Command(path, args...)
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, log: log, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// stop sends SIGTERM to the process group, SIGKILL if the process has not
// exited after grace, and returns once it has exited. Whatever is left in
// the group then is killed too.
func (p *process) stop(grace time.Duration) {
	pid := p.cmd.Process.Pid
	signalGroup(pid, false)
	select {
	case <-p.done:
	case <-time.After(grace):
		signalGroup(pid, true)
		<-p.done
	}
	signalGroup(pid, true)
}

// tail returns the last n lines of the process's log.
func (p *process) tail(n int) string {
	return tailFile(p.log, n)
}

// tailFile returns the last n lines of the file at path, or why it could
// not be read.
func tailFile(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	data = bytes.TrimRight(data, "\n")
	i := len(data)
	for range n {
		j := bytes.LastIndexByte(data[:i], '\n')
		if j < 0 {
			return string(data)
		}
		i = j
	}
	return string(data[i+1:])
}
