// Command custompicker places new clients with a picker of its own, wired
// into a sticky handler with [sticky.WithPicker]: backends whose ID starts
// with the front end's zone ("eu-1" for zone "eu") are preferred, and the
// others take new clients only when the zone has no routable backend left.
// The picker places new clients only; the cookie keeps them where it put
// them.
package main

import (
	"context"
	"crypto/rand"
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
	"github.com/affinitylb/affinity/cookie"
	"github.com/affinitylb/affinity/examples/internal/demo"
	"github.com/affinitylb/affinity/sticky"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, nil); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "custompicker:", err)
		os.Exit(1)
	}
}

// run serves until ctx is done, then shuts down gracefully. It calls ready,
// if not nil, with its base URL once it accepts connections.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, ready func(url string)) error {
	fs := flag.NewFlagSet("custompicker", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:8082", "`address` to listen on")
	zone := fs.String("zone", "eu", "this front end's `zone`: backends with IDs \"ZONE-...\" are preferred")
	list := fs.String("backends", "", "comma-separated backends, `ZONE-N=URL,...` (default: in-process demo apps eu-1, eu-2, us-1)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))

	backends, stopDemo, err := demo.Backends(*list, demo.App, "eu-1", "eu-2", "us-1")
	if err != nil {
		return err
	}
	defer stopDemo()
	set, err := backend.NewSet(backends, backend.WithLogger(logger))
	if err != nil {
		return err
	}
	// A random key (128 bits as text): cookies die with the process.
	cookie, err := cookie.New([][]byte{[]byte(rand.Text())})
	if err != nil {
		return err
	}
	h, err := sticky.New(set, cookie, sticky.WithPicker(zonePicker(*zone)), sticky.WithLogger(logger))
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
	fmt.Fprintf(stdout, "custompicker (zone %s) listening on %s\n", *zone, url)
	fmt.Fprintf(stdout, "try: curl %s/whoami; curl -c jar -b jar %s/whoami\n", url, url)
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
