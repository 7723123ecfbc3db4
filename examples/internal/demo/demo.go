// Package demo is the scaffolding the examples share and do not teach: the
// -backends flag's list, and in-process application servers to balance over
// when it is empty. A program you copy from an example replaces it with
// your own list of servers.
package demo

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/internal/demoapp"
)

// App returns the demo application server called name: a [demoapp.App],
// which keeps its login sessions in its own memory.
func App(name string) http.Handler { return demoapp.New(name) }

// Backends returns the backends of list, a comma-separated list of URL or
// NAME=URL items (NAME becomes the backend's ID). When list is empty, it
// starts instead one newApp(name) per name, each on its own loopback port,
// and returns the backends that reach them. stop closes the servers it
// started; it is never nil.
func Backends(list string, newApp func(name string) http.Handler, names ...string) (cfgs []backend.Config, stop func(), err error) {
	for item := range strings.SplitSeq(list, ",") {
		if item = strings.TrimSpace(item); item == "" {
			continue
		}
		id, url, ok := strings.Cut(item, "=")
		if !ok {
			id, url = "", item
		}
		cfgs = append(cfgs, backend.Config{ID: id, URL: url})
	}
	if len(cfgs) > 0 {
		return cfgs, func() {}, nil
	}
	return start(newApp, names)
}

// start serves newApp(name) for each name on a loopback port of its own.
func start(newApp func(name string) http.Handler, names []string) ([]backend.Config, func(), error) {
	var (
		servers []*http.Server
		wg      sync.WaitGroup
	)
	stop := func() {
		for _, s := range servers {
			s.Close()
		}
		wg.Wait()
	}
	cfgs := make([]backend.Config, 0, len(names))
	for _, name := range names {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			stop()
			return nil, nil, fmt.Errorf("demo server %s: %w", name, err)
		}
		srv := &http.Server{Handler: newApp(name), ReadHeaderTimeout: 10 * time.Second}
		servers = append(servers, srv)
		wg.Go(func() { srv.Serve(ln) }) // returns http.ErrServerClosed once stopped
		cfgs = append(cfgs, backend.Config{ID: name, URL: "http://" + ln.Addr().String()})
	}
	return cfgs, stop, nil
}
