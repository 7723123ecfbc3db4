// Command apikey keeps API clients, which keep no cookies, on one backend
// by the key they send with every request: requests with the same
// X-Api-Key header reach the same backend, by consistent hashing, for as
// long as it serves them. Requests without a key go to the least loaded
// backend.
// Nothing is stored and nothing is set on responses.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/examples/internal/demo"
	"github.com/affinitylb/affinity/policy"
	"github.com/affinitylb/affinity/sticky"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, nil); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "apikey:", err)
		os.Exit(1)
	}
}

// run serves until ctx is done, then shuts down gracefully. It calls ready,
// if not nil, with its base URL once it accepts connections.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, ready func(url string)) error {
	fs := flag.NewFlagSet("apikey", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:8084", "`address` to listen on")
	header := fs.String("header", "X-Api-Key", "the request `header` that carries the key")
	list := fs.String("backends", "", "comma-separated backends, `NAME=URL,...` (default: three in-process demo apps)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))

	backends, stopDemo, err := demo.Backends(*list, demo.App, "app1", "app2", "app3")
	if err != nil {
		return err
	}
	defer stopDemo()
	set, err := backend.NewSet(backends, backend.WithLogger(logger))
	if err != nil {
		return err
	}
	// The policy hashes the header's value into the request's affinity key.
	// The handler's key picker, a balancer.ConsistentHash, maps the key to
	// a backend; its picker sends keyless requests to least connections.
	key, err := policy.HeaderKey(*header)
	if err != nil {
		return err
	}
	h, err := sticky.New(set, key, sticky.WithLogger(logger))
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	url := "http://" + ln.Addr().String()
	fmt.Fprintf(stdout, "apikey listening on %s, keyed by %s\n", url, *header)
	fmt.Fprintf(stdout, "try: curl -H '%s: k1' %s/whoami\n", *header, url)
	if ready != nil {
		ready(url)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}
