// Command custompicker places new clients with a picker of its own, written
// as a program outside the module would write it, and wired into a sticky
// handler with [sticky.WithPicker]: it prefers the backends of the front
// end's zone, which each backend's metadata names, and among them the one
// with the best latency for its load, learnt from how the requests it
// placed went (a [balancer.DonePicker]). The picker places new clients
// only; the cookie keeps them where it put them.
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
	"strings"
	"syscall"
	"time"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/balancer"
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
	zone := fs.String("zone", "eu", "this front end's `zone`: backends whose metadata zone is ZONE are preferred")
	list := fs.String("backends", "", "comma-separated backends, `ID=URL,...` (default: in-process demo apps app1, app2, app3)")
	zones := fs.String("zones", "app1=eu,app2=eu,app3=us", "comma-separated `ID=ZONE,...`: each backend's zone, kept in its metadata")
	slow := fs.String("slow", "", "an in-process demo app, by `ID`, that answers after 300ms, to watch new clients leave it")
	if err := fs.Parse(args); err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))

	newApp := func(name string) http.Handler {
		app := demo.App(name)
		if name != *slow {
			return app
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-time.After(300 * time.Millisecond):
				app.ServeHTTP(w, r)
			case <-r.Context().Done():
			}
		})
	}
	backends, stopDemo, err := demo.Backends(*list, newApp, "app1", "app2", "app3")
	if err != nil {
		return err
	}
	defer stopDemo()
	if err := setZones(backends, *zones); err != nil {
		return err
	}
	set, err := backend.NewSet(backends, backend.WithLogger(logger))
	if err != nil {
		return err
	}
	// A random key (128 bits as text): cookies die with the process.
	cookie, err := cookie.New([][]byte{[]byte(rand.Text())})
	if err != nil {
		return err
	}
	h, err := sticky.New(set, cookie, sticky.WithPicker(newZonePicker(*zone)), sticky.WithLogger(logger))
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

// setZones records in each of cfgs the zone list gives its ID, as a
// comma-separated list of ID=ZONE, in its metadata "zone".
func setZones(cfgs []backend.Config, list string) error {
	zones := map[string]string{}
	for item := range strings.SplitSeq(list, ",") {
		if item = strings.TrimSpace(item); item == "" {
			continue
		}
		id, zone, ok := strings.Cut(item, "=")
		if !ok || id == "" || zone == "" {
			return fmt.Errorf("-zones: %q: want ID=ZONE", item)
		}
		zones[id] = zone
	}
	for i := range cfgs {
		if z, ok := zones[cfgs[i].ID]; ok {
			cfgs[i].Metadata = map[string]string{"zone": z}
		}
	}
	return nil
}

var _ balancer.DonePicker = (*zonePicker)(nil) // the handler tells it how its placements went
