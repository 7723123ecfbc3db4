// Command mux puts a sticky handler on an [http.ServeMux] next to routes
// the front end serves itself: /healthz and /static/ are answered here,
// everything else is proxied to the backends, each client staying on the
// one it first reached. A [sticky.Handler] is an ordinary [http.Handler],
// so it mounts, wraps and composes like any other.
package main

import (
	"context"
	"crypto/rand"
	"embed"
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

//go:embed static
var static embed.FS

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, nil); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "mux:", err)
		os.Exit(1)
	}
}

// run serves until ctx is done, then shuts down gracefully. It calls ready,
// if not nil, with its base URL once it accepts connections.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, ready func(url string)) error {
	fs := flag.NewFlagSet("mux", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:8081", "`address` to listen on")
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
	// A random signing key (128 bits as text): cookies die with the process.
	// Replicas of a real front end share a key from their configuration.
	pol, err := cookie.New([][]byte{[]byte(rand.Text())})
	if err != nil {
		return err
	}
	proxy, err := sticky.New(set, pol, sticky.WithLogger(logger))
	if err != nil {
		return err
	}

	mux := http.NewServeMux()
	// The front end's own routes. The most specific pattern wins, so these
	// never reach a backend, and their responses carry no sticky cookie.
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		snap := set.Snapshot() // the same membership the proxy routes with
		fmt.Fprintf(w, "ok: %d of %d backends routable\n", len(snap.Routable()), len(snap.Backends()))
	})
	mux.Handle("/static/", http.FileServerFS(static))
	// Everything else goes to the application, sticky.
	mux.Handle("/", proxy)

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second, // a slow client cannot hold a connection forever
		IdleTimeout:       2 * time.Minute,  // nor an idle keep-alive one
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	url := "http://" + ln.Addr().String()
	fmt.Fprintf(stdout, "mux listening on %s\n", url)
	fmt.Fprintf(stdout, "try: curl %s/healthz; curl -c jar -b jar %s/whoami\n", url, url)
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
	// Stop accepting, and give requests in flight 10 seconds to finish.
	logger.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}
