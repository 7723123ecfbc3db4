package cli

import (
	"context"
	"flag"
	"io"
	"log/slog"

	"github.com/affinitylb/affinity/backend"
)

// Extension is what a command adds to stickyproxy. Its zero value adds
// nothing: [Main] is then the stickyproxy command itself.
type Extension struct {
	// Flags, if not nil, defines more flags on fs, the command's flag set,
	// before the command line is parsed; -h lists them among
	// stickyproxy's, in name order. Redefining one of stickyproxy's flags
	// panics, as [flag.FlagSet] does. A value a flag's Set refuses is a
	// command-line error (exit status 2).
	Flags func(fs *flag.FlagSet)

	// Source, if not nil, is called once the command line is parsed and
	// valid, before the proxy listens, with the logger of the proxy's
	// logs (-log-level). An error it returns is reported as a bad command
	// line: "stickyproxy: " and the error on one line of stderr, exit
	// status 2. The source it returns, if not nil, is the membership:
	// there are no demo servers, -backends and -weights are refused (exit
	// status 2), the set starts empty and follows what the source
	// delivers ([backend.Set.Sync]) until shutdown, and the admin API
	// refuses to add or remove backends (409), while it still drains them.
	// The source failing ends the proxy, exit status 1. A nil source and
	// a nil error leave the membership to -backends or the demo servers.
	Source func(logger *slog.Logger) (backend.Source, error)
}

// Main runs stickyproxy, extended by ext, with the command-line arguments
// args (without the program's name) until ctx is done, then shuts it down
// gracefully and returns the exit status: 0 after a clean shutdown, -h or
// -version, 2 for an invalid command line, 1 for any other failure. It
// writes the usage and the startup summary to stdout and its logs to
// stderr. A signal handler is the caller's: main cancels ctx on SIGTERM.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer, ext Extension) int {
	return runWith(ctx, args, stdout, stderr, ext, nil)
}
