// Package demotest runs an example program in-process for its smoke test.
package demotest

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// RunFunc is an example's run function: it serves until ctx is done, then
// shuts down and returns, calling ready with its base URL
// ("http://127.0.0.1:PORT") once it accepts connections.
type RunFunc func(ctx context.Context, args []string, stdout, stderr io.Writer, ready func(url string)) error

// Program is an example started by [Start].
type Program struct {
	URL    string // the base URL it serves on
	stdout syncBuffer
}

// Stdout returns what the program has printed on its standard output.
func (p *Program) Stdout() string { return p.stdout.String() }

// Start runs run with args plus -listen 127.0.0.1:0, and returns once the
// program accepts connections. Its logs go to the test's output. When the
// test ends, the program is stopped and must return nil within 10 seconds.
func Start(t *testing.T, run RunFunc, args ...string) *Program {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := &Program{}
	urls, done := make(chan string, 1), make(chan error, 1)
	go func() {
		args := append([]string{"-listen", "127.0.0.1:0"}, args...)
		done <- run(ctx, args, &p.stdout, t.Output(), func(url string) { urls <- url })
	}()
	select {
	case p.URL = <-urls:
	case err := <-done:
		cancel()
		t.Fatalf("the program returned before serving: %v", err)
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("the program did not start within 10s")
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err, "the program's shutdown")
		case <-time.After(10 * time.Second):
			t.Error("the program did not shut down within 10s")
		}
	})
	return p
}

// Get sends a GET request for url with c, and returns the response, its
// body read and closed.
func Get(t *testing.T, c *http.Client, url string, header ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	require.NoError(t, err)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return Do(t, c, req)
}

// Do sends req with c and returns the response, its body read and closed.
func Do(t *testing.T, c *http.Client, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(body)
}

// Cookie returns the cookie called name that resp sets, or nil.
func Cookie(resp *http.Response, name string) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// Field returns the value of key in a demo application's "/whoami" answer,
// "server=NAME user=USER".
func Field(body, key string) string {
	for f := range strings.FieldsSeq(body) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			return v
		}
	}
	return ""
}

// syncBuffer is a bytes.Buffer the program writes while a test reads it.
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
