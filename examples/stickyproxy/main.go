// Command stickyproxy is a sticky-session reverse proxy built on the
// affinity library: each client stays on the backend it first reached,
// bound by a signed cookie of the proxy's (-policy cookie or appcookie) or
// by an affinity key the requests carry: a header, a query parameter or the
// client's address (-policy header, query or ip). Without -backends it runs
// three demo application servers in-process that keep their login sessions
// in memory, so stickiness, or its absence, is plain to see. With -admin it
// serves a JSON API to list, add, remove and drain backends at run time;
// with -health-path it checks their health actively.
//
// The program is package [cli], which other commands reuse with flags and
// a membership source of their own.
//
// See README.md for the flags and a session with curl.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/affinitylb/affinity/examples/stickyproxy/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	context.AfterFunc(ctx, stop) // a second signal kills at once
	os.Exit(cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr, cli.Extension{}))
}
