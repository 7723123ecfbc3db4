// Command https terminates TLS in front of plain-HTTP backends, serving
// HTTP/2 and HTTP/1.1. It makes itself a short-lived self-signed
// certificate at start, and prints its fingerprint. Because clients reach it
// over TLS, the sticky cookie is marked Secure (the cookie policy's default,
// SecureAuto, follows the request), so browsers never send it over plain
// HTTP.
package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
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
		fmt.Fprintln(os.Stderr, "https:", err)
		os.Exit(1)
	}
}

// run serves until ctx is done, then shuts down gracefully. It calls ready,
// if not nil, with its base URL once it accepts connections.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, ready func(url string)) error {
	fs := flag.NewFlagSet("https", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:8443", "`address` to listen on")
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
	// No WithSecure: SecureAuto marks the cookie Secure on requests that
	// came over TLS, which here is all of them. Behind a TLS-terminating
	// proxy of your own, use cookie.WithSecure(cookie.SecureAlways).
	pol, err := cookie.New([][]byte{[]byte(rand.Text())}) // random: cookies die with the process
	if err != nil {
		return err
	}
	h, err := sticky.New(set, pol, sticky.WithLogger(logger))
	if err != nil {
		return err
	}
	cert, err := selfSigned(24 * time.Hour)
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           h,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	url := "https://" + ln.Addr().String()
	fmt.Fprintf(stdout, "https listening on %s (HTTP/2 and HTTP/1.1)\n", url)
	fmt.Fprintf(stdout, "self-signed certificate for localhost, 127.0.0.1, ::1, valid until %s\n", cert.Leaf.NotAfter.Format(time.RFC3339))
	fmt.Fprintf(stdout, "SHA-256 fingerprint: %s\n", fingerprint(cert.Leaf))
	fmt.Fprintf(stdout, "try: curl -k --http2 -c jar -b jar %s/\n", url)
	if ready != nil {
		ready(url)
	}
	errc := make(chan error, 1)
	// ServeTLS with the certificate in TLSConfig (no files): it offers h2
	// by ALPN, so HTTP/2 clients get HTTP/2.
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
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
