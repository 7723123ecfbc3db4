package browser

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// testTimeout bounds each test, browser start and shutdown included.
const testTimeout = 60 * time.Second

// requireBrowserEnv, set to 1, turns a missing chromium from a skip into a
// failure: CI sets it, so that the browser tests cannot silently stop
// running.
const requireBrowserEnv = "AFFINITY_REQUIRE_BROWSER"

// chromiumPath returns the chromium executable found on the PATH. Without
// one it skips t, or fails it when requireBrowserEnv is 1.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if path, err := exec.LookPath("chromium"); err == nil {
		return path
	}
	if os.Getenv(requireBrowserEnv) == "1" {
		t.Fatalf("chromium not found, and %s=1: install Debian's chromium package", requireBrowserEnv)
	}
	t.Skip("chromium not found: install Debian's chromium package")
	return ""
}

// newBrowser starts a headless chromium with a fresh profile and returns a
// chromedp context for a tab in it, done after testTimeout. extra options
// come after the defaults, and so replace those they name. The browser is
// closed when t ends; if t failed, its output is logged.
func newBrowser(t *testing.T, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	exe := chromiumPath(t)
	profile := t.TempDir() // before the cleanup below: removed after the browser exits
	out := &syncBuffer{}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.UserDataDir(profile),
		chromedp.Headless,
		chromedp.NoSandbox, // we run as root in CI containers
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		// Loopback only: no update checks, sync, component downloads or
		// proxies, and no host name resolves (the tests use 127.0.0.1).
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-proxy-server", true),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1280, 800),
		chromedp.CombinedOutput(out),
	)
	opts = append(opts, extra...)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	browserCtx, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		// Close gracefully, so that chromium stops its helper processes
		// before the profile is removed, then wait for it to exit.
		if err := chromedp.Cancel(browserCtx); err != nil {
			t.Logf("closing chromium: %v", err)
		}
		cancelBrowser()
		cancelAlloc()
		cancel()
		if t.Failed() {
			t.Logf("chromium's output, last 4 KiB, D-Bus complaints left out:\n%s", tail(withoutDBus(out.String()), 4<<10))
		}
	})
	if err := chromedp.Do(browserCtx); err != nil { // starts the browser and opens the tab
		t.Fatalf("starting %s: %v", exe, err)
	}
	return browserCtx
}

// syncBuffer is a bytes.Buffer safe for concurrent use: a process's output
// is written while a test may read it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// withoutDBus returns chromium's output without its complaints about the
// D-Bus that containers lack.
func withoutDBus(out string) string {
	var b strings.Builder
	for line := range strings.Lines(out) {
		if !strings.Contains(line, ":ERROR:dbus/") {
			b.WriteString(line)
		}
	}
	return b.String()
}

// tail returns the last n bytes of s at most.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}
