// Command canary rolls a new version of an application out beside the old
// one without losing a session: two groups of backends, blue (v1) and green
// (v2), whose weights move from 100/0 through 90/10 and 50/50 to 0/100.
// Each new client chooses a group by the weights of the moment; a client
// bound to a backend stays on it, whatever its group weighs, so a user
// logged in on v1 stays logged in on v1 while v2 takes the new users.
//
// The weights move every -step, or when POST /rollout/next asks.
package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
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
	"sync"
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
		fmt.Fprintln(os.Stderr, "canary:", err)
		os.Exit(1)
	}
}

// steps is the rollout: the weights of blue and green, in turn.
var steps = []map[string]int{
	{"blue": 100, "green": 0},
	{"blue": 90, "green": 10},
	{"blue": 50, "green": 50},
	{"blue": 0, "green": 100},
}

// run serves until ctx is done, then shuts down gracefully. It calls ready,
// if not nil, with its base URL once it accepts connections.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, ready func(url string)) error {
	fs := flag.NewFlagSet("canary", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:8085", "`address` to listen on")
	step := fs.Duration("step", 30*time.Second, "time between two steps of the rollout; 0: only POST /rollout/next moves it")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *step < 0 {
		return fmt.Errorf("-step %v: negative", *step)
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))

	// Two demo servers of each version; a server's name says its version.
	backends, stopDemo, err := demo.Backends("", demo.App, "blue1", "blue2", "green1", "green2")
	if err != nil {
		return err
	}
	defer stopDemo()
	for i := range backends {
		backends[i].Group = strings.TrimRight(backends[i].ID, "0123456789") // blue or green
	}
	// The groups' weights live in the set, beside its backends: the first
	// step's at the start, SetGroupWeight's afterwards.
	set, err := backend.NewSet(backends, backend.WithLogger(logger), backend.WithGroupWeights(steps[0]))
	if err != nil {
		return err
	}
	// The cookie names the backend and its group. The key is random:
	// bindings die with the process.
	pol, err := cookie.New([][]byte{[]byte(rand.Text())})
	if err != nil {
		return err
	}
	h, err := sticky.New(set, pol, sticky.WithLogger(logger))
	if err != nil {
		return err
	}
	r := &rollout{set: set, logger: logger}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /rollout", r.show)
	mux.HandleFunc("POST /rollout/next", r.next)
	mux.Handle("/", h)

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	url := "http://" + ln.Addr().String()
	fmt.Fprintf(stdout, "canary listening on %s: blue (v1) %d%%, green (v2) %d%% of new clients\n", url, steps[0]["blue"], steps[0]["green"])
	fmt.Fprintf(stdout, "try: curl -c jar -b jar %s/whoami; curl -X POST %s/rollout/next\n", url, url)
	if ready != nil {
		ready(url)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	var tick <-chan time.Time
	if *step > 0 {
		t := time.NewTicker(*step)
		defer t.Stop()
		tick = t.C
	}
loop:
	for {
		select {
		case err := <-errc:
			return err
		case <-tick:
			r.advance()
			if st := r.status(); st.Step == st.Of {
				tick = nil // the rollout is done
			}
		case <-ctx.Done():
			break loop
		}
	}
	logger.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}

// rollout moves the groups' weights through steps, one step at a time.
type rollout struct {
	set    *backend.Set
	logger *slog.Logger
	mu     sync.Mutex
	step   int // the index in steps of the weights in force
}

// status is the rollout as GET /rollout shows it.
type status struct {
	Step    int            `json:"step"` // 1 to len(steps)
	Of      int            `json:"of"`
	Weights map[string]int `json:"weights"`
}

// advance sets the next step's weights, and reports whether it did: false
// at the last step.
func (r *rollout) advance() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.step == len(steps)-1 {
		return false
	}
	r.step++
	for _, g := range []string{"blue", "green"} { // one at a time: a client in between sees blue changed only
		if err := r.set.SetGroupWeight(g, steps[r.step][g]); err != nil {
			r.logger.Error("rollout", "err", err) // a bug: the weights are in range
		}
	}
	r.logger.Info("rollout step", "step", r.step+1, "of", len(steps), "blue", steps[r.step]["blue"], "green", steps[r.step]["green"])
	return true
}

func (r *rollout) status() status {
	r.mu.Lock()
	defer r.mu.Unlock()
	return status{Step: r.step + 1, Of: len(steps), Weights: steps[r.step]}
}

func (r *rollout) show(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, r.status())
}

// next moves the rollout one step: 200 with the new status, or 409 at the
// last step.
func (r *rollout) next(w http.ResponseWriter, _ *http.Request) {
	if !r.advance() {
		writeJSON(w, http.StatusConflict, map[string]string{"error": "the rollout is done: green has every new client"})
		return
	}
	writeJSON(w, http.StatusOK, r.status())
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}
