package browser

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// testKey signs the proxy's cookies.
const testKey = "e2e-browser-test-key-0123456789"

// binDir holds the stickyproxy the tests build, for the test binary's
// life.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "affinity-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// stickyproxy returns the stickyproxy binary, examples/stickyproxy built
// from this checkout, once, with the race detector when the tests have it.
var stickyproxy = sync.OnceValues(func() (string, error) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		return "", err
	}
	bin := filepath.Join(binDir, "stickyproxy")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", append(args, "./examples/stickyproxy")...)
	cmd.Dir = root // the library's own module, as users build it
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go %s in %s: %v\n%s", strings.Join(cmd.Args[1:], " "), root, err, out)
	}
	return bin, nil
})

// proxy is a stickyproxy process started by a test, serving its three demo
// application servers, app1 to app3.
type proxy struct {
	url    string // the proxy's base URL
	admin  string // the admin listener's base URL
	stderr *syncBuffer
}

// startProxy runs stickyproxy with its demo servers on loopback ports, an
// admin listener and args, and waits until it listens. When t ends, the
// proxy is interrupted and must exit 0, without a data race reported.
func startProxy(t *testing.T, args ...string) *proxy {
	t.Helper()
	bin, err := stickyproxy()
	if err != nil {
		t.Fatalf("building stickyproxy: %v", err)
	}
	p := &proxy{stderr: &syncBuffer{}}
	args = append([]string{"-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0", "-key", testKey}, args...)
	cmd := exec.Command(bin, args...)
	cmd.Stderr = p.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}

	// It prints where it listens, then how to try it; read what is left
	// until it exits.
	urls := make(chan [2]string, 1)
	read := make(chan struct{})
	go func() {
		defer close(read)
		var u [2]string
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			if rest, ok := strings.CutPrefix(line, "stickyproxy listening on "); ok {
				u[0] = rest
			}
			if rest, ok := strings.CutPrefix(line, "admin API on "); ok {
				u[1], _, _ = strings.Cut(rest, " ")
			}
			if strings.HasPrefix(line, "try it:") {
				urls <- u
				break
			}
		}
		io.Copy(io.Discard, stdout)
	}()

	exited := false
	t.Cleanup(func() {
		if exited {
			return
		}
		cmd.Process.Signal(os.Interrupt)
		timer := time.AfterFunc(15*time.Second, func() { cmd.Process.Kill() })
		defer timer.Stop()
		<-read // before Wait, which closes the pipe
		err := cmd.Wait()
		logs := p.stderr.String()
		if err != nil {
			t.Errorf("stickyproxy did not shut down cleanly: %v; stderr:\n%s", err, tail(logs, 8<<10))
		} else if strings.Contains(logs, "DATA RACE") {
			t.Errorf("stickyproxy reported a data race:\n%s", tail(logs, 16<<10))
		}
	})

	select {
	case u := <-urls:
		if !strings.HasPrefix(u[0], "http://127.0.0.1:") || !strings.HasPrefix(u[1], "http://127.0.0.1:") {
			t.Fatalf("stickyproxy printed proxy %q, admin %q: want http://127.0.0.1:PORT", u[0], u[1])
		}
		p.url, p.admin = u[0], u[1]
	case <-read:
		exited = true
		err := cmd.Wait()
		t.Fatalf("stickyproxy exited before listening: %v; stderr:\n%s", err, p.stderr)
	case <-time.After(30 * time.Second):
		t.Fatalf("stickyproxy did not listen within 30s; stderr:\n%s", p.stderr)
	}
	return p
}
