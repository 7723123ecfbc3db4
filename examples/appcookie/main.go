// Command appcookie keeps each client on one backend for exactly as long as
// the application's own session lasts, as AWS ALB's application-based
// stickiness does. The backends here are PHP-style: their sessions live in
// their memory under the ID in a PHPSESSID cookie. [cookie.NewApp]
// watches that cookie on responses: when the application sets it, the
// balancer sets its own with the same lifetime; when the application
// deletes it, the balancer deletes its own. Clients without an application
// session are not bound at all.
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
		fmt.Fprintln(os.Stderr, "appcookie:", err)
		os.Exit(1)
	}
}

// run serves until ctx is done, then shuts down gracefully. It calls ready,
// if not nil, with its base URL once it accepts connections.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, ready func(url string)) error {
	fs := flag.NewFlagSet("appcookie", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:8083", "`address` to listen on")
	appCookie := fs.String("app-cookie", "PHPSESSID", "the application's session `cookie`")
	ttl := fs.Duration("session-ttl", 1440*time.Second, "the demo apps' session cookie lifetime; 0: until the browser closes")
	list := fs.String("backends", "", "comma-separated backends, `NAME=URL,...` (default: three in-process PHP-style apps)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))

	newApp := func(name string) http.Handler { return newPHPApp(name, *appCookie, *ttl) }
	backends, stopDemo, err := demo.Backends(*list, newApp, "php1", "php2", "php3")
	if err != nil {
		return err
	}
	defer stopDemo()
	set, err := backend.NewSet(backends, backend.WithLogger(logger))
	if err != nil {
		return err
	}
	// No WithTTL: the binding's lifetime is the application cookie's.
	// The key is random: bindings die with the process.
	pol, err := cookie.NewApp(*appCookie, [][]byte{[]byte(rand.Text())})
	if err != nil {
		return err
	}
	h, err := sticky.New(set, pol, sticky.WithLogger(logger))
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
	fmt.Fprintf(stdout, "appcookie listening on %s, following %s\n", url, *appCookie)
	fmt.Fprintf(stdout, "try: curl -i -c jar -b jar -d name=alice %s/login\n", url)
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
