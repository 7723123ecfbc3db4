// Command bench measures, end to end through sockets on 127.0.0.1, what
// the sticky layer (sticky.Handler with a cookie policy and its defaults)
// costs over the best bare httputil.ReverseProxy, and prints a table:
// throughput, p99 latency and the proxy's CPU time per request, for
// requests that carry a sticky cookie and for requests that open a session.
//
// Each proxy runs in a process of its own, which this program starts by
// running itself again with -role, pinned to a CPU of its own with taskset
// when it can; the backends and the load generator (wrk if it is on PATH,
// else a built-in one) run on another. Baseline and sticky runs alternate,
// so that drift on the machine hits both.
//
//	go run ./examples/bench
//
// See README.md for the flags and how to read the table.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	context.AfterFunc(ctx, stop) // a second signal kills at once
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run runs the benchmark with the command-line arguments args, or the
// helper process they name, and returns the exit status: 0 on success and
// for -h, 2 for an invalid command line, 130 when ctx was done first, 1
// for any other failure. Results go to stdout, progress to stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if isRole(args) {
		return runRole(ctx, args, stdout, stderr)
	}
	cfg, err := parseFlags(args, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 2
	}
	rep, err := runBench(ctx, cfg, stderr)
	if ctx.Err() != nil {
		fmt.Fprintln(stderr, "bench: interrupted; every process it started is stopped")
		return 130
	}
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 1
	}
	if cfg.json {
		err = writeJSON(stdout, rep)
	} else {
		err = writeText(stdout, rep)
	}
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 1
	}
	return 0
}
