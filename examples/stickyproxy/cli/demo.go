package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/internal/demoapp"
)

// demo is the set of demo application servers the proxy runs in-process
// when it is given no backends.
type demo struct {
	servers []*http.Server
}

// startDemo starts n demo application servers, app1 to appN, each on its
// own loopback port, and returns the backends that reach them.
func startDemo(n int, logger *slog.Logger) (*demo, []backend.Config, error) {
	d := &demo{}
	cs := make([]backend.Config, 0, n)
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("app%d", i)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			d.close()
			return nil, nil, fmt.Errorf("demo server %s: %w", name, err)
		}
		srv := newServer(demoapp.New(name), logger)
		d.servers = append(d.servers, srv)
		go func() {
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				logger.Error("demo server failed", "name", name, "err", err)
			}
		}()
		cs = append(cs, backend.Config{ID: name, URL: "http://" + ln.Addr().String()})
	}
	return d, cs, nil
}

// shutdown stops the demo servers, letting the requests they are serving
// finish until ctx is done.
func (d *demo) shutdown(ctx context.Context) error {
	var errs []error
	for _, s := range d.servers {
		errs = append(errs, s.Shutdown(ctx))
	}
	return errors.Join(errs...)
}

// close stops the demo servers at once.
func (d *demo) close() {
	for _, s := range d.servers {
		s.Close()
	}
}
