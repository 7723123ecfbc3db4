package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"
)

// The roles a helper process plays, given by -role as the first argument.
const (
	roleBackends = "backends" // the demo backends
	roleProxy    = "proxy"    // a proxy under test, -mode baseline or sticky
	roleLoad     = "load"     // the built-in load generator
)

// The proxies under test.
const (
	modeBaseline = "baseline"
	modeSticky   = "sticky"
)

// isRole reports whether args start a helper process rather than the
// benchmark.
func isRole(args []string) bool {
	return len(args) > 0 && (args[0] == "-role" || strings.HasPrefix(args[0], "-role="))
}

// roleConfig is a helper's command line, written by the benchmark.
type roleConfig struct {
	role     string
	mode     string   // proxy
	backends []string // proxy: the backends' URLs
	key      []byte   // proxy: the sticky cookie's signing key
	profile  string   // proxy: a file for a CPU profile; "": none
	n        int      // backends: how many
	url      string   // load: the target
	conns    int      // load
	warmup   time.Duration
	duration time.Duration
	cookies  []string // load: Cookie headers to send, in turn; none: no header
}

// parseRole parses a helper's command line.
func parseRole(args []string) (roleConfig, error) {
	var rc roleConfig
	var backends, key string
	fs := flag.NewFlagSet("bench -role", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&rc.role, "role", "", "")
	fs.StringVar(&rc.mode, "mode", "", "")
	fs.StringVar(&backends, "backends", "", "")
	fs.StringVar(&key, "key", "", "")
	fs.StringVar(&rc.profile, "profile", "", "")
	fs.IntVar(&rc.n, "n", 3, "")
	fs.StringVar(&rc.url, "url", "", "")
	fs.IntVar(&rc.conns, "c", defaultConns, "")
	fs.DurationVar(&rc.warmup, "warmup", 0, "")
	fs.DurationVar(&rc.duration, "d", time.Second, "")
	fs.Func("cookie", "", func(c string) error {
		rc.cookies = append(rc.cookies, c)
		return nil
	})
	if err := fs.Parse(args); err != nil {
		return rc, err
	}
	switch rc.role {
	case roleBackends:
		if rc.n < 1 || rc.n > 16 {
			return rc, fmt.Errorf("-n %d: want 1 to 16", rc.n)
		}
	case roleProxy:
		if rc.mode != modeBaseline && rc.mode != modeSticky {
			return rc, fmt.Errorf("-mode %q: want baseline or sticky", rc.mode)
		}
		rc.backends = strings.Split(backends, ",")
		k, err := hex.DecodeString(key)
		if err != nil {
			return rc, fmt.Errorf("-key: %w", err)
		}
		rc.key = k
	case roleLoad:
		if !strings.HasPrefix(rc.url, "http://127.0.0.1:") {
			return rc, fmt.Errorf("-url %q: want http://127.0.0.1:PORT/", rc.url)
		}
		if rc.conns < 1 || rc.conns > maxConns || rc.duration <= 0 || rc.duration > maxDuration || rc.warmup < 0 || rc.warmup > maxWarmup {
			return rc, fmt.Errorf("-c %d -d %v -warmup %v: out of range", rc.conns, rc.duration, rc.warmup)
		}
	default:
		return rc, fmt.Errorf("-role %q: want backends, proxy or load", rc.role)
	}
	return rc, nil
}

// runRole runs a helper process until it is done or its stdin closes, and
// returns its exit status. Its first line on stdout says it is ready.
func runRole(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	rc, err := parseRole(args)
	if err != nil {
		fmt.Fprintf(stderr, "bench %s: %v\n", strings.Join(args, " "), err)
		return 2
	}
	// The benchmark holds our stdin: when it closes, we are done, even if
	// the benchmark died without killing us.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	switch rc.role {
	case roleBackends:
		err = serveBackends(ctx, rc.n, stdout)
	case roleProxy:
		err = serveProxy(ctx, rc, stdout)
	case roleLoad:
		err = generate(ctx, rc, stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "bench -role %s: %v\n", rc.role, err)
		return 1
	}
	return 0
}

// bodySize is the size of the backends' answers.
const bodySize = 128

// greeting begins every backend's answer, followed by the backend's name.
const greeting = "hello from "

// backendName returns the name of the i-th backend, counting from 0: app1
// to appN. The sticky proxy's backends have these IDs too.
func backendName(i int) string { return fmt.Sprintf("app%d", i+1) }

// serveBackends runs n backends on loopback, each answering every request
// with bodySize bytes that start with its name, until ctx is done. It
// prints "ready URL,URL,..." when they listen.
func serveBackends(ctx context.Context, n int, stdout io.Writer) error {
	var urls []string
	length := strconv.Itoa(bodySize)
	for i := range n {
		name := backendName(i)
		body := []byte(fmt.Sprintf("%-*s\n", bodySize-1, greeting+name))
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		srv := newServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			h.Set("Content-Type", "text/plain; charset=utf-8")
			h.Set("Content-Length", length)
			w.Write(body)
		}))
		go srv.Serve(ln)
		defer srv.Close()
		urls = append(urls, "http://"+ln.Addr().String())
	}
	fmt.Fprintf(stdout, "ready %s\n", strings.Join(urls, ","))
	<-ctx.Done()
	return nil
}

// serveProxy runs the proxy rc names on 127.0.0.1 until ctx is done. It
// prints "ready ADDRESS GOMAXPROCS" when it listens.
func serveProxy(ctx context.Context, rc roleConfig, stdout io.Writer) error {
	var h http.Handler
	var err error
	if rc.mode == modeBaseline {
		h, err = newBaseline(rc.backends)
	} else {
		h, err = newSticky(rc.backends, rc.key)
	}
	if err != nil {
		return err
	}
	if rc.profile != "" {
		f, err := os.Create(rc.profile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := newServer(h)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Fprintf(stdout, "ready %s %d\n", ln.Addr(), runtime.GOMAXPROCS(0))
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
		return srv.Close()
	}
}

// newServer returns an http.Server for h with the timeouts of a server
// facing the network; none of them binds a benchmark's request.
func newServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    64 << 10,
		// Connections cut when a run ends are no news.
		ErrorLog: log.New(io.Discard, "", 0),
	}
}

// result is what a load generator measured in one run's measured window.
type result struct {
	Requests int64         `json:"requests"` // answered 200
	Errors   int64         `json:"errors"`   // failed or answered another status
	Elapsed  time.Duration `json:"elapsed_ns"`
	P50      time.Duration `json:"p50_ns"`
	P99      time.Duration `json:"p99_ns"`
	Max      time.Duration `json:"max_ns"`
}

// printResult writes r as the "result" line a load generator ends with.
func printResult(w io.Writer, r result) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "result %s\n", b)
	return err
}

// parseResult parses the rest of a "result" line.
func parseResult(s string) (result, error) {
	var r result
	if err := json.Unmarshal([]byte(s), &r); err != nil {
		return r, fmt.Errorf("result %q: %w", s, err)
	}
	if r.Elapsed <= 0 {
		return r, errors.New("result: no elapsed time")
	}
	return r, nil
}
