package cli

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/balancer"
	"github.com/affinitylb/affinity/cookie"
	"github.com/affinitylb/affinity/metrics"
	"github.com/affinitylb/affinity/policy"
	"github.com/affinitylb/affinity/sticky"

	"golang.org/x/sync/errgroup"
)

// Limits on what a client may cost the servers: a client that has not sent
// its request's header within readHeaderTimeout is cut off (slowloris), and
// one whose header is over maxHeaderBytes gets 431. A variable so that a
// test can shorten it.
var readHeaderTimeout = 10 * time.Second

const maxHeaderBytes = 64 << 10

// shutdownTimeout bounds how long a graceful shutdown waits for requests
// in flight.
const shutdownTimeout = 10 * time.Second

// run runs the proxy with the command-line arguments args until ctx is
// done, then shuts it down gracefully, and returns the exit status: 0 after
// a clean shutdown or -h, 2 for an invalid command line (a backend of
// -backends that is the proxy itself among them, found once listening but
// before serving), 1 for any other failure. When ready is not nil, run
// calls it with the addresses the proxy listens on once it accepts
// connections.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, ready func(listening)) int {
	return runWith(ctx, args, stdout, stderr, Extension{}, ready)
}

// runWith is run, extended by ext; see [Extension].
func runWith(ctx context.Context, args []string, stdout, stderr io.Writer, ext Extension, ready func(listening)) int {
	cfg, err := parseFlagsWith(args, stdout, ext.Flags)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if errors.Is(err, errVersion) {
		fmt.Fprintf(stdout, "stickyproxy %s\n", version())
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "stickyproxy: %v\n", err)
		return 2
	}
	pol, err := newPolicy(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "stickyproxy: %v\n", err)
		return 2
	}
	logger, access := newLoggers(stderr, cfg.logLevel)
	var src backend.Source
	if ext.Source != nil {
		if src, err = ext.Source(logger); err == nil && src != nil {
			err = checkSourced(cfg)
		}
		if err != nil {
			fmt.Fprintf(stderr, "stickyproxy: %v\n", err)
			return 2
		}
	}
	// Listening first: only then are the ports known, to refuse a backend
	// that is the proxy itself before serving.
	lns, err := listen(cfg)
	if err == nil {
		if err := checkBackends(cfg, lns.self()); err != nil {
			lns.close()
			fmt.Fprintf(stderr, "stickyproxy: %v\n", err)
			return 2
		}
	}
	for _, w := range cfg.warnings {
		logger.Warn(w)
	}
	if err == nil {
		err = serve(ctx, cfg, lns, pol, src, stdout, logger, access, ready)
	}
	if err != nil {
		logger.Error("stickyproxy failed", "err", err)
		return 1
	}
	return 0
}

// checkSourced refuses the flags that give backends, or their weights, by
// name, when a membership source gives the backends.
func checkSourced(cfg config) error {
	if len(cfg.backends) > 0 {
		return fmt.Errorf("invalid value %q for -backends: the membership source gives the backends; not both", cfg.backendsFlag)
	}
	if cfg.weights != nil {
		return errors.New("-weights names backends of -backends or the demo servers; not with a membership source, which gives the weights")
	}
	return nil
}

// listeners is the proxy's listeners.
type listeners struct {
	proxy net.Listener // on -listen
	admin net.Listener // on -admin; nil without
}

// listen listens on the addresses cfg gives.
func listen(cfg config) (listeners, error) {
	var lns listeners
	var err error
	if lns.proxy, err = net.Listen("tcp", cfg.listen); err != nil {
		return listeners{}, err
	}
	if cfg.admin != "" {
		if lns.admin, err = net.Listen("tcp", cfg.admin); err != nil {
			lns.proxy.Close()
			return listeners{}, fmt.Errorf("admin API: %w", err)
		}
	}
	return lns, nil
}

// self returns the addresses of lns, as bound.
func (lns listeners) self() self { return newSelf(lns.proxy, lns.admin) }

// close closes lns; closing a listener that is served, or closed, again
// does no harm.
func (lns listeners) close() {
	lns.proxy.Close()
	if lns.admin != nil {
		lns.admin.Close()
	}
}

// checkBackends refuses the backends of -backends that are the proxy
// itself, known only once it listens.
func checkBackends(cfg config, s self) error {
	for _, b := range cfg.backends {
		if err := s.check(b.URL); err != nil {
			return fmt.Errorf("invalid value %q for -backends: %w", cfg.backendsFlag, err)
		}
	}
	return nil
}

// newPolicy returns the policy cfg describes. Its errors name the value
// the library refused.
func newPolicy(cfg config) (policy.Policy, error) {
	var opts []cookie.Option
	if cfg.cookieName != "" {
		opts = append(opts, cookie.WithName(cfg.cookieName))
	}
	if cfg.cookieMaxLife > 0 {
		opts = append(opts, cookie.WithMaxLife(cfg.cookieMaxLife))
	}
	opts = append(opts, cfg.cookieAttrs.options()...)
	switch cfg.policy {
	case policyAppCookie: // no WithTTL or WithSliding: the application's cookie sets the lifetime
		return asPolicy(cookie.NewApp(cfg.appCookie, cfg.keys, opts...))
	case policyHeader:
		return asPolicy(policy.HeaderKey(cfg.header))
	case policyQuery:
		return asPolicy(policy.QueryKey(cfg.query))
	case policyIP:
		return asPolicy(policy.ClientIPKey(cfg.trusted))
	}
	opts = append(opts, cookie.WithTTL(cfg.cookieTTL), cookie.WithSliding(cfg.cookieSliding))
	return asPolicy(cookie.New(cfg.keys, opts...))
}

// asPolicy returns what a policy constructor returned, with no policy
// (rather than a nil pointer in the interface) on error.
func asPolicy[P policy.Policy](p P, err error) (policy.Policy, error) {
	if err != nil {
		return nil, err
	}
	return p, nil
}

// newKeyPicker returns the consistent hashing that places the requests
// carrying an affinity key: with -load-factor, with bounded loads; without
// it, keys never spill over to other backends. The -picker picker places
// the others, which include every new client of the cookie policies.
func newKeyPicker(cfg config) (*balancer.ConsistentHash, error) {
	var opts []balancer.HashOption
	if cfg.loadFactor != 0 {
		opts = append(opts, balancer.WithLoadFactor(cfg.loadFactor))
	}
	return balancer.NewConsistentHash(opts...)
}

// listening is the addresses, host:port, the proxy listens on.
type listening struct {
	proxy string
	admin string // "": no admin API (-admin)
	// reload reloads the certificate and key of -tls-cert and -tls-key, as
	// SIGHUP does, and returns the error that kept the old pair, if any;
	// nil without -tls-cert.
	reload func() error
}

// serve starts the demo servers if cfg has no backends and there is no
// membership source src, and proxies
// until ctx is done, serving the admin API and running health checks if cfg
// says so; then it shuts everything down, waiting up to shutdownTimeout for
// requests in flight. A server that fails shuts the others down too.
//
// With src, the set starts empty and follows src until the shutdown; src
// failing shuts the proxy down. With -access-log, serve logs each request
// to access.
func serve(ctx context.Context, cfg config, lns listeners, pol policy.Policy, src backend.Source, stdout io.Writer, logger, access *slog.Logger, ready func(listening)) error {
	defer lns.close() // in case we return before serving; Serve closes them too
	started := time.Now()
	ln, adminLn := lns.proxy, lns.admin
	backends, d := cfg.backends, &demo{} // an empty demo shuts down at once
	var err error
	if len(backends) == 0 && src == nil {
		if d, backends, err = startDemo(len(demoNames), logger); err != nil {
			return err
		}
		defer d.close() // after the graceful shutdown below: a no-op
	}
	backends = withWeights(backends, cfg.weights)
	setOpts := []backend.Option{backend.WithLogger(logger), backend.WithSlowStart(cfg.slowStart)}
	if cfg.stallTimeout != nil {
		setOpts = append(setOpts, backend.WithStallTimeout(*cfg.stallTimeout))
	}
	if cfg.groupWeights != nil {
		setOpts = append(setOpts, backend.WithGroupWeights(cfg.groupWeights))
	}
	set, err := backend.NewSet(backends, setOpts...)
	if err != nil {
		return err
	}
	// One recorder sees the set's events and the handler's: it serves the
	// status page and /metrics on the admin listener.
	rec, err := metrics.New(set)
	if err != nil {
		return err
	}
	keys, err := newKeyPicker(cfg)
	if err != nil {
		return err
	}
	transport := sticky.DefaultTransport()
	transport.TLSClientConfig = backendTLS(cfg) // -backend-ca
	var al *accessLog
	if cfg.accessLog {
		al = &accessLog{logger: access, set: set}
		pol = al.policy(pol)
	}
	opts := []sticky.Option{
		sticky.WithPicker(pickers[cfg.picker]()),
		sticky.WithKeyPicker(keys),
		sticky.WithStrictBinding(cfg.strict),
		sticky.WithTransport(transport),
		sticky.WithObserver(rec),
		sticky.WithLogger(logger),
		sticky.WithBodyTimeout(cfg.bodyTimeout),
		sticky.WithWriteTimeout(cfg.writeTimeout),
		sticky.WithTrustedProxies(cfg.trusted...),
	}
	if len(cfg.ejectStatus) > 0 { // else only transport failures count
		opts = append(opts, sticky.WithFailureStatus(cfg.ejectStatus.contains))
	}
	if cfg.retries != nil {
		opts = append(opts, sticky.WithRetries(*cfg.retries, retryWithin))
	}
	h, err := sticky.New(set, pol, opts...)
	if err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	var front http.Handler = h
	if al != nil {
		front = al.handler(h)
	}
	srv := newServer(front, logger)
	srv.Protocols = protocols(cfg.cert != nil, cfg.h2c)
	addrs := listening{proxy: ln.Addr().String()}
	if cfg.cert != nil {
		certs := newCertStore(cfg.cert, cfg.tlsCert, cfg.tlsKey, logger)
		srv.TLSConfig, addrs.reload = tlsConfig(certs), certs.reload
		defer certs.watch()() // SIGHUP reloads, from now until serve returns
	}
	g.Go(func() error { return serveUntilShutdown(srv, ln, "proxy") })
	var (
		adminSrv  *http.Server
		adminAddr net.Addr
	)
	if adminLn != nil {
		opts := adminOptions{host: adminHost(cfg.admin), token: cfg.adminToken, self: lns.self().check, config: newRunningConfig(cfg, started), sourced: src != nil}
		adminSrv, adminAddr = newServer(newAdmin(set, rec, logger, opts), logger), adminLn.Addr()
		g.Go(func() error { return serveUntilShutdown(adminSrv, adminLn, "admin API") })
		addrs.admin = adminAddr.String()
		logger.Info("admin API listening", "addr", addrs.admin)
	}
	if src != nil {
		g.Go(func() error {
			err := set.Sync(gctx, src)
			if gctx.Err() != nil {
				return nil // stopped by the shutdown
			}
			if err == nil {
				err = errors.New("stopped")
			}
			return fmt.Errorf("membership source: %w", err)
		})
	}
	if cfg.healthPath != "" {
		hc := healthCheck(cfg)
		hc.Logger, hc.TLSConfig = logger, backendTLS(cfg) // -backend-ca
		g.Go(func() error {
			if err := set.CheckHealth(gctx, hc); gctx.Err() == nil {
				return fmt.Errorf("health checks: %w", err)
			}
			return nil // stopped by the shutdown
		})
	}

	printUsage(stdout, cfg, ln.Addr(), adminAddr, set.Snapshot(), len(cfg.backends) == 0 && src == nil)

	attrs := []any{"addr", addrs.proxy, "tls", cfg.cert != nil, "h2c", cfg.h2c, "policy", cfg.policy, "picker", cfg.picker, "backends", len(set.Snapshot().Backends())}
	logger.Info("proxy listening", append(attrs, policyAttrs(cfg)...)...)
	if ready != nil {
		ready(addrs)
	}

	<-gctx.Done() // the signal, or a failure
	logger.Info("shutting down", "timeout", shutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err = srv.Shutdown(sctx)
	if adminSrv != nil {
		err = errors.Join(err, adminSrv.Shutdown(sctx))
	}
	transport.CloseIdleConnections()
	err = errors.Join(err, d.shutdown(sctx))
	if ferr := g.Wait(); ferr != nil {
		return errors.Join(ferr, err)
	}
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	logger.Info("stopped")
	return nil
}

// withWeights returns bs with the weights ws gives by backend ID; bs
// itself, unchanged, if ws is empty.
func withWeights(bs []backend.Config, ws map[string]int) []backend.Config {
	if len(ws) == 0 {
		return bs
	}
	bs = slices.Clone(bs)
	for i := range bs {
		if w, ok := ws[bs[i].ID]; ok {
			bs[i].Weight = w
		}
	}
	return bs
}

// adminHost returns the host of addr, the value of -admin: besides IP
// literals and localhost, the admin API accepts it as a request's Host.
func adminHost(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "" // checked by parseFlags
	}
	return host
}

// policyAttrs returns the settings of cfg's policy that decide where its
// clients go, as attributes of the startup log line, named like their
// flags.
func policyAttrs(cfg config) []any {
	switch cfg.policy {
	case policyCookie:
		return []any{"cookie-ttl", cfg.cookieTTL, "cookie-sliding", cfg.cookieSliding, "cookie-max-life", cfg.cookieMaxLife, "strict", cfg.strict}
	case policyAppCookie:
		return []any{"cookie-max-life", cfg.cookieMaxLife, "strict", cfg.strict}
	}
	return []any{"load-factor", cfg.loadFactor}
}

// serveUntilShutdown serves srv on ln, over TLS if srv has a TLSConfig,
// and returns nil once srv is shut down, or why it failed, naming the
// server what.
func serveUntilShutdown(srv *http.Server, ln net.Listener, what string) error {
	serve := srv.Serve
	if srv.TLSConfig != nil {
		serve = func(ln net.Listener) error { return srv.ServeTLS(ln, "", "") } // the certificate is the TLSConfig's
	}
	if err := serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve %s: %w", what, err)
	}
	return nil
}

// newServer returns an http.Server for h with the timeouts and limits every
// server of this program uses. It logs its own errors to logger at Warn,
// but failed TLS handshakes, which scanners and old clients cause all day
// on a public port, at Debug.
func newServer(h http.Handler, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          log.New(serverLog{logger}, "", 0),
	}
}

// serverLog is what an http.Server's ErrorLog writes to: logger, at Warn,
// or at Debug for a failed TLS handshake.
type serverLog struct{ logger *slog.Logger }

func (l serverLog) Write(p []byte) (int, error) {
	msg := strings.TrimSuffix(string(p), "\n")
	level := slog.LevelWarn
	if strings.HasPrefix(msg, "http: TLS handshake error") {
		level = slog.LevelDebug
	}
	l.logger.Log(context.Background(), level, msg)
	return len(p), nil
}

// printUsage tells the operator where the proxy listens (and its admin
// API, if admin is not nil), where it sends traffic (the backends of snap,
// and their groups when there are any but the default), and how to try it with
// curl.
func printUsage(w io.Writer, cfg config, proxy, admin net.Addr, snap *backend.Snapshot, demo bool) {
	bs := snap.Backends()
	base := "http://" + displayAddr(proxy)
	if cfg.cert != nil {
		base = "https://" + displayAddr(proxy)
	}
	fmt.Fprintf(w, "stickyproxy listening on %s\n", base)
	if cfg.cert != nil {
		fmt.Fprintf(w, "HTTPS with HTTP/2 and HTTP/1.1; certificate %s (SIGHUP reloads it)\n", cfg.tlsCert)
	}
	if cfg.h2c {
		fmt.Fprintf(w, "cleartext HTTP/2 too (curl --http2-prior-knowledge %s/)\n", base)
	}
	if admin != nil {
		a := "http://" + displayAddr(admin)
		fmt.Fprintf(w, "admin API on %s (curl -s %s/backends)\n", a, a)
	}
	if cfg.healthPath != "" {
		fmt.Fprintf(w, "health checks: GET %s every %v\n", cfg.healthPath, cfg.healthInterval)
	}
	fmt.Fprintln(w, "backends:")
	for _, b := range bs {
		if g := b.Group(); g != "" {
			fmt.Fprintf(w, "  %-12s %s (group %s)\n", b.ID(), b.URL(), g)
		} else {
			fmt.Fprintf(w, "  %-12s %s\n", b.ID(), b.URL())
		}
	}
	if gs := snap.Groups(); cfg.groupWeights != nil || len(gs) > 1 || len(gs) == 1 && gs[0].Name != "" {
		fmt.Fprintln(w, "groups:")
		for _, g := range gs {
			fmt.Fprintf(w, "  %-12s weight %d\n", cmp.Or(g.Name, "(default)"), g.Weight)
		}
	}
	if len(bs) == 0 { // only with a membership source, before it delivers
		fmt.Fprintln(w, "  none yet: the membership source gives them")
	}
	cmds := tryCommands(cfg, base, demo)
	width := 0
	for _, c := range cmds {
		width = max(width, len(c[0]))
	}
	fmt.Fprintln(w, "try it:")
	if cfg.cert != nil {
		fmt.Fprintln(w, "  # a certificate curl does not trust: add --cacert CA.pem (or -k, which checks nothing)")
	}
	for _, c := range cmds {
		fmt.Fprintf(w, "  %-*s  # %s\n", width, c[0], c[1])
	}
}

// tryCommands returns curl commands, with comments, that show cfg's policy
// at work on the proxy at base, on the demo servers if demo.
func tryCommands(cfg config, base string, demo bool) [][2]string {
	path := "/"
	if demo {
		path = "/whoami"
	}
	unkeyed := [2]string{"curl " + base + path, "no key: placed by the picker, " + cfg.picker}
	switch cfg.policy {
	case policyHeader:
		h := func(v string) string { return "curl -H " + shellQuote(cfg.header+": "+v) + " " + base + path }
		return [][2]string{
			{h("k1"), "a key: always the same backend"},
			{h("k2"), "another key: maybe another backend"},
			unkeyed,
		}
	case policyQuery:
		q := func(v string) string { return "curl " + shellQuote(base+path+"?"+url.Values{cfg.query: {v}}.Encode()) }
		return [][2]string{
			{q("k1"), "a key: always the same backend"},
			{q("k2"), "another key: maybe another backend"},
			unkeyed,
		}
	case policyIP:
		cmds := [][2]string{{"curl " + base + path, "your address is the key: the same backend every time"}}
		if len(cfg.trusted) > 0 {
			cmds = append(cmds, [2]string{"curl -H 'X-Forwarded-For: 192.0.2.1' " + base + path, "believed only from -trusted-proxies"})
		}
		return cmds
	}
	// The cookie policies.
	switch {
	case !demo && cfg.policy == policyAppCookie:
		return [][2]string{{"curl -c jar -b jar " + base + "/", "bound once the application sets " + cfg.appCookie}}
	case !demo:
		return [][2]string{{"curl -c jar -b jar " + base + "/", "the proxy's cookie binds you to a backend"}}
	}
	return [][2]string{
		{"curl -c jar -b jar " + base + "/", "login page; the proxy binds you to a backend"},
		{"curl -c jar -b jar -d name=alice " + base + "/login", "log in there"},
		{"curl -b jar " + base + "/whoami", "same backend, still alice"},
		{"curl " + base + "/whoami", "no cookies: maybe another backend, nobody"},
	}
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// displayAddr returns the address a client on this machine dials to reach
// a listener on a: localhost when it listens on every interface.
func displayAddr(a net.Addr) string {
	if t, ok := a.(*net.TCPAddr); ok && t.IP.IsUnspecified() {
		return net.JoinHostPort("localhost", strconv.Itoa(t.Port))
	}
	return a.String()
}
