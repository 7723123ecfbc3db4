package cli

import (
	"bytes"
	"cmp"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/balancer"
	"github.com/affinitylb/affinity/cookie"
	"github.com/affinitylb/affinity/policy"
)

// minKeyLen is the shortest signing key the cookie policies accept.
const minKeyLen = 16

// defaultCookieName is the affinity cookie's name when -cookie-name is not
// given: the library's default, [cookie.WithName]'s.
const defaultCookieName = "affinity"

// pickers maps the values of -picker to the pickers they choose.
var pickers = map[string]func() balancer.Picker{
	"leastconn":  func() balancer.Picker { return &balancer.LeastConnections{} },
	"roundrobin": func() balancer.Picker { return &balancer.RoundRobin{} },
}

// The values of -policy.
const (
	policyCookie    = "cookie"    // the proxy's own signed cookie
	policyAppCookie = "appcookie" // the proxy's cookie, living as long as the application's
	policyHeader    = "header"    // a request header is the affinity key
	policyQuery     = "query"     // a query parameter is the affinity key
	policyIP        = "ip"        // the client's address is the affinity key
)

// policyFlags lists the flags that apply to some policies only, with those
// policies: giving one with another policy is an error, most likely a typo.
// -key is not among them: it is ignored by the key policies, since scripts
// may pass it whatever the policy.
var policyFlags = []struct {
	flag     string
	policies []string
}{
	{"cookie-name", []string{policyCookie, policyAppCookie}},
	{"cookie-ttl", []string{policyCookie}},
	{"cookie-sliding", []string{policyCookie}},
	{"cookie-max-life", []string{policyCookie, policyAppCookie}},
	{"strict", []string{policyCookie, policyAppCookie}},
	{"app-cookie", []string{policyAppCookie}},
	{"header", []string{policyHeader}},
	{"query", []string{policyQuery}},
	{"load-factor", []string{policyHeader, policyQuery, policyIP}},
	{"cookie-secure", []string{policyCookie, policyAppCookie}},
	{"cookie-samesite", []string{policyCookie, policyAppCookie}},
	{"cookie-path", []string{policyCookie, policyAppCookie}},
	{"cookie-domain", []string{policyCookie, policyAppCookie}},
	{"cookie-partitioned", []string{policyCookie, policyAppCookie}},
	{"cookie-cors", []string{policyCookie, policyAppCookie}},
}

// appCookieRefuses lists the flags of policy cookie that set the affinity
// cookie's lifetime, which under appcookie is the application's.
var appCookieRefuses = []string{"cookie-ttl", "cookie-sliding"}

// config is the proxy's configuration, read from its command line and
// checked: every field is valid.
type config struct {
	listen        string
	backends      []backend.Config // empty: run the demo servers
	backendsFlag  string           // the value of -backends, for errors found once listening
	groupWeights  map[string]int   // -group-weights: weights by group name; nil: every group weighs 1
	policy        string           // one of the policy* constants
	keys          [][]byte         // cookie signing keys, the first signs, each at least minKeyLen bytes; nil for key policies
	cookieName    string           // cookie and appcookie; "": defaultCookieName
	cookieTTL     time.Duration    // cookie only; 0: a session cookie
	cookieSliding bool             // cookie only: the lifetime counts from the client's last request
	cookieMaxLife time.Duration    // cookie and appcookie: how long a binding lasts at most, however active the client; 0: no cap
	strict        bool             // cookie and appcookie: a client whose backend is down gets 503, not another backend
	appCookie     string           // appcookie: the application's session cookie
	header        string           // header: the request header holding the key
	query         string           // query: the query parameter holding the key
	trusted       []netip.Prefix   // the proxies whose forwarding headers are believed
	loadFactor    float64          // header, query, ip: bounded loads, over 1; 0: keys never spill
	picker        string           // a key of pickers
	admin         string           // the admin API's address; "": none
	adminToken    []byte           // the bearer token the admin API requires; nil: none
	// Active health checks: GET healthPath on every backend each
	// healthInterval. Both zero: no active checks.
	healthPath     string
	healthInterval time.Duration
	ejectStatus    statusList    // answers that count as their backend's failures; empty: none
	bodyTimeout    time.Duration // longest wait for the next byte of a request's body; 0: none
	writeTimeout   time.Duration // longest a write of a response may block; 0: none
	warnings       []string      // for the operator, logged at startup
	// HTTPS on -listen: the files of -tls-cert and -tls-key, reloaded on
	// SIGHUP, and the pair they held at startup. All zero: plain HTTP.
	tlsCert, tlsKey string
	cert            *tls.Certificate
	h2c             bool        // cleartext HTTP/2 with prior knowledge on -listen too; never with cert
	cookieAttrs     cookieAttrs // cookie and appcookie: the affinity cookie's attributes
	ops                         // -weights to -version

	// backendCAs is the system's roots and -backend-ca's, for https
	// backends; nil: the system's.
	backendCAs *x509.CertPool
}

// cookieAttrs is the affinity cookie's attributes, from -cookie-secure,
// -cookie-samesite, -cookie-path, -cookie-domain, -cookie-partitioned and
// -cookie-cors. The zero value is the library's defaults.
type cookieAttrs struct {
	secure      cookie.SecureMode // SecureAuto, the zero value, by default
	sameSite    http.SameSite     // 0: not given, the library's default (Lax)
	path        string            // "": not given, "/", or with appcookie the application cookie's
	domain      string            // "": none
	partitioned bool              // Partitioned (CHIPS), and so Secure
	cors        bool              // the SameSite=None twin, NAME-cors
}

// options returns the policy options a sets, none for the defaults.
func (a cookieAttrs) options() []cookie.Option {
	opts := []cookie.Option{cookie.WithSecure(a.secure)}
	if a.sameSite != 0 {
		opts = append(opts, cookie.WithSameSite(a.sameSite))
	}
	if a.path != "" {
		opts = append(opts, cookie.WithPath(a.path))
	}
	if a.domain != "" {
		opts = append(opts, cookie.WithDomain(a.domain))
	}
	return append(opts, cookie.WithPartitioned(a.partitioned), cookie.WithCORS(a.cors))
}

// The values of -cookie-secure and -cookie-samesite.
var (
	cookieSecureModes = map[string]cookie.SecureMode{"auto": cookie.SecureAuto, "always": cookie.SecureAlways, "never": cookie.SecureNever}
	cookieSameSites   = map[string]http.SameSite{"lax": http.SameSiteLaxMode, "strict": http.SameSiteStrictMode, "none": http.SameSiteNoneMode}
)

// checkCookieAttrs reads the values of -cookie-secure (secure) and
// -cookie-samesite (sameSite) into cfg.cookieAttrs, and checks them with
// -cookie-path, -cookie-domain, -cookie-partitioned and -cookie-cors,
// already there: each alone as the library would, then together, since
// SameSite=None, Partitioned and the CORS twin all need Secure cookies.
func checkCookieAttrs(cfg *config, secure, sameSite string, given map[string]bool) error {
	a := &cfg.cookieAttrs
	mode, ok := cookieSecureModes[secure]
	if !ok {
		return fmt.Errorf("invalid value %q for -cookie-secure: want auto, always or never", secure)
	}
	a.secure = mode
	if given["cookie-samesite"] {
		if a.sameSite, ok = cookieSameSites[sameSite]; !ok {
			return fmt.Errorf("invalid value %q for -cookie-samesite: want lax, strict or none", sameSite)
		}
	}
	for _, f := range []struct {
		name, value string
		opt         cookie.Option
	}{
		{"cookie-path", a.path, cookie.WithPath(a.path)},
		{"cookie-domain", a.domain, cookie.WithDomain(a.domain)},
	} {
		if !given[f.name] {
			continue
		}
		if f.value == "" {
			return fmt.Errorf(`invalid value "" for -%s: empty`, f.name)
		}
		if _, err := cookie.New([][]byte{make([]byte, minKeyLen)}, f.opt); err != nil {
			return fmt.Errorf("invalid value %q for -%s: %w", f.value, f.name, err)
		}
	}
	if a.secure == cookie.SecureNever {
		switch {
		case a.sameSite == http.SameSiteNoneMode:
			return fmt.Errorf("invalid value %q for -cookie-secure: -cookie-samesite none requires Secure cookies", secure)
		case a.partitioned:
			return fmt.Errorf("invalid value %q for -cookie-secure: -cookie-partitioned requires Secure cookies", secure)
		case a.cors:
			return fmt.Errorf("invalid value %q for -cookie-secure: the twin cookie of -cookie-cors is always Secure", secure)
		}
	}
	twin := cmp.Or(cfg.cookieName, defaultCookieName) + "-cors"
	if a.cors && cfg.policy == policyAppCookie && cfg.appCookie == twin {
		return fmt.Errorf("invalid value %q for -app-cookie: it is the name of the affinity cookie's twin (-cookie-cors) too; give the affinity cookie another with -cookie-name", cfg.appCookie)
	}
	if a.cors && a.sameSite == http.SameSiteNoneMode {
		cfg.warnings = append(cfg.warnings, "-cookie-cors with -cookie-samesite none: the affinity cookie is sent on cross-site requests already, and its twin "+twin+" only doubles it")
	}
	return nil
}

// ops is the operational settings, -weights to -version. Each zero value
// is the library's default, so that a setting not given stays unset.
type ops struct {
	keySource       string         // where keys came from: "-key", "-key-file", keyEnv or "random"; "" for key policies
	weights         map[string]int // -weights: backend name to weight; nil: every weight 1
	slowStart       time.Duration  // -slow-start; 0: off
	stallTimeout    *time.Duration // -stall-timeout; nil: the library's default
	healthTimeout   time.Duration  // -health-timeout; 0: the library's default
	healthRise      int            // -health-rise; 0: the library's default
	healthFall      int            // -health-fall; 0: the library's default
	healthMinStatus int            // -health-status; 0: the library's default
	healthMaxStatus int            // -health-status; 0: the library's default
	retries         *int           // -retries; nil: the library's default
	logLevel        slog.Level     // -log-level
	accessLog       bool           // -access-log
}

// usesCookie reports whether the policy binds clients with the proxy's
// signed cookie, and so needs keys.
func (c *config) usesCookie() bool {
	return c.policy == policyCookie || c.policy == policyAppCookie
}

// parseFlags reads the command line. It writes nothing but the usage, to
// help and only for -h, in which case it returns [flag.ErrHelp]. Any other
// error is one line naming the flag and the bad value.
func parseFlags(args []string, help io.Writer) (config, error) {
	return parseFlagsWith(args, help, nil)
}

// parseFlagsWith is parseFlags with the flags that more, if not nil,
// defines besides stickyproxy's ([Extension.Flags]).
func parseFlagsWith(args []string, help io.Writer, more func(*flag.FlagSet)) (config, error) {
	var (
		cfg       config
		backends  string
		key       string
		trusted   string
		interval  time.Duration
		eject     string
		tokenFile string
		gweights  string // -group-weights

		cookieSecure, cookieSameSite string   // -cookie-secure, -cookie-samesite
		o                            opsFlags // -weights to -version
		caFile                       string   // -backend-ca
	)
	fs := flag.NewFlagSet("stickyproxy", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are returned, not printed
	fs.StringVar(&cfg.listen, "listen", "127.0.0.1:8080", "`address` to listen on")
	fs.StringVar(&backends, "backends", "", "comma-separated `list` of backends, each URL, NAME=URL or GROUP:NAME=URL, none the proxy itself\n(-listen's or -admin's port on this machine); no GROUP: the default group.\nEmpty: start three demo servers, app1 to app3")
	fs.StringVar(&gweights, "group-weights", "", "comma-separated `list` of GROUP=W: the weight W (0 to 1000) of the group GROUP of -backends\n(=W: the default group's), the share of new clients it takes; 0: none, its bound clients stay.\nA group may have no backend yet. Others weigh 1")
	fs.StringVar(&cfg.policy, "policy", policyCookie, "`policy` that keeps a client on its backend: cookie (the proxy's signed cookie),\nappcookie (the proxy's cookie, living as long as the application's -app-cookie),\nheader (the value of the -header header), query (the value of the -query parameter)\nor ip (the client's address; see -trusted-proxies)")
	fs.StringVar(&key, "key", "", "comma-separated `secrets` signing the affinity cookie (cookie, appcookie): the first signs,\nall are accepted, for rotation; the same on every replica.\nEach at least 16 bytes; a shorter one is hashed into a key (weak).\nAbsent, as -key-file and $STICKYPROXY_KEY: a random key, so cookies die with the process.\nIgnored by the other policies")
	fs.StringVar(&cfg.cookieName, "cookie-name", "", "affinity cookie `name` (default \"affinity\", the library's); cookie, appcookie")
	fs.DurationVar(&cfg.cookieTTL, "cookie-ttl", 15*time.Minute, "affinity cookie lifetime; 0 makes it a session cookie; cookie only")
	fs.BoolVar(&cfg.cookieSliding, "cookie-sliding", true, "sliding expiry: the affinity cookie's lifetime counts from the client's last request,\nrenewed once less than half is left; false: from the binding; cookie only")
	fs.DurationVar(&cfg.cookieMaxLife, "cookie-max-life", 0, "longest a binding lasts, however active the client, before the client is placed anew;\nat least 1s and at least -cookie-ttl; 0: no cap; cookie, appcookie")
	fs.BoolVar(&cfg.strict, "strict", false, "strict bindings: a client whose backend is unhealthy or ejected gets 503 with Retry-After\nrather than another backend; one whose backend left the set is placed anew, once.\nNo retries; cookie, appcookie")
	fs.StringVar(&cfg.appCookie, "app-cookie", "", "`name` of the application's session cookie; required by and only for appcookie")
	fs.StringVar(&cfg.header, "header", "", "request header `name` holding the affinity key; required by and only for header")
	fs.StringVar(&cfg.query, "query", "", "query parameter `name` holding the affinity key; required by and only for query")
	fs.StringVar(&trusted, "trusted-proxies", "", "comma-separated `CIDRs` of the proxies in front (a TLS-terminating load balancer) whose\nforwarding headers are believed: from them X-Forwarded-For and Forwarded are appended to,\nX-Forwarded-Proto and X-Forwarded-Host kept, and X-Forwarded-Proto: https makes the cookie Secure;\nfrom anyone else all are replaced. With -policy ip, the client they report is the key.\nEmpty: no proxy is trusted")
	fs.Float64Var(&cfg.loadFactor, "load-factor", 0, "bounded loads: a backend takes a key's request only while its requests in flight stay\nwithin `F` times its share, else the key spills over to the next; F over 1.\n0: keys never spill; header, query, ip")
	fs.StringVar(&cfg.picker, "picker", "leastconn", "`picker` for new clients and requests without a key: leastconn or roundrobin")
	fs.StringVar(&cfg.admin, "admin", "", "`address` of the JSON admin API (GET /backends...), a listener of its own;\nempty: none. Without -admin-token-file it has no authentication: keep it on loopback")
	fs.StringVar(&tokenFile, "admin-token-file", "", "`file` holding a bearer token that every admin API request must then carry\n(Authorization: Bearer TOKEN); a trailing newline is trimmed. Needs -admin")
	fs.StringVar(&cfg.healthPath, "health-path", "", "`path` to GET on every backend for active health checks, such as /healthz;\nempty: no active checks")
	fs.DurationVar(&interval, "health-interval", libHealth.Interval, "time between two health checks of a backend; needs -health-path")
	fs.DurationVar(&cfg.bodyTimeout, "body-timeout", 30*time.Second, "longest wait for the next byte of a request's body: a client that sends none for that\nlong gets 408, and its backend is not blamed; 0: no limit")
	fs.DurationVar(&cfg.writeTimeout, "write-timeout", 30*time.Second, "longest a write of a response to a client may block: a client that reads nothing\nfor that long is cut off; streams that keep moving are not; 0: no limit")
	fs.StringVar(&cfg.tlsCert, "tls-cert", "", "PEM `file` of the certificate chain, the proxy's own first: serve HTTPS on -listen,\nHTTP/2 and HTTP/1.1, TLS 1.2 or later. Needs -tls-key; SIGHUP reloads both files")
	fs.StringVar(&cfg.tlsKey, "tls-key", "", "PEM `file` of the private key of -tls-cert's certificate; needs -tls-cert")
	fs.BoolVar(&cfg.h2c, "h2c", false, "accept cleartext HTTP/2 with prior knowledge (h2c) on -listen, beside HTTP/1.1;\nnot with -tls-cert")
	fs.StringVar(&caFile, "backend-ca", "", "`file` of PEM certificates of authorities trusted for https:// backends, besides the system's;\nempty: the system's only")
	fs.StringVar(&eject, "eject-status", "", "comma-separated `list` of response statuses that count as their backend's failures,\ncodes (502) or classes (5xx): 5 in a row, from at least two client addresses, eject the backend\nfor a while. Empty: only failures to reach the backend count")
	fs.StringVar(&cookieSecure, "cookie-secure", "auto", "`when` the affinity cookie is Secure: auto (when the request came over HTTPS, to the proxy\nor to a -trusted-proxies proxy saying so), always or never; cookie, appcookie")
	fs.StringVar(&cookieSameSite, "cookie-samesite", "lax", "affinity cookie's SameSite `mode`: lax, strict or none (which makes it Secure); cookie, appcookie")
	fs.StringVar(&cfg.cookieAttrs.path, "cookie-path", "", "affinity cookie's Path, a `path` starting with /; default /, or with appcookie the application cookie's;\ncookie, appcookie")
	fs.StringVar(&cfg.cookieAttrs.domain, "cookie-domain", "", "affinity cookie's Domain, a host `name` whose subdomains get the cookie too;\ndefault none, the host that set it only; cookie, appcookie")
	fs.BoolVar(&cfg.cookieAttrs.partitioned, "cookie-partitioned", false, "Partitioned affinity cookie (CHIPS), kept apart for each top-level site embedding the\nproxy's pages; makes it Secure, so not with -cookie-secure never; cookie, appcookie")
	fs.BoolVar(&cfg.cookieAttrs.cors, "cookie-cors", false, "also set a twin affinity cookie, NAME-cors, SameSite=None and always Secure (so HTTPS only),\nread when the cookie itself is absent, as on cross-site form POSTs (SAML, OIDC form_post);\nnot with -cookie-secure never; cookie, appcookie")
	o.register(fs)
	if more != nil {
		more(fs)
	}

	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(help)
			fmt.Fprint(help, "Usage: stickyproxy [flags]\n\nA sticky-session reverse proxy: each client stays on the backend it first reached.\n\nFlags:\n")
			fs.PrintDefaults()
		}
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if o.version {
		return config{}, errVersion
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })

	if _, _, err := net.SplitHostPort(cfg.listen); err != nil {
		return config{}, fmt.Errorf("invalid value %q for -listen: %w", cfg.listen, err)
	}
	if strings.TrimSpace(backends) != "" {
		bs, err := parseBackends(backends)
		if err != nil {
			return config{}, fmt.Errorf("invalid value %q for -backends: %w", backends, err)
		}
		cfg.backends, cfg.backendsFlag = bs, backends
	}
	if given["group-weights"] {
		ws, err := parseGroupWeights(gweights)
		if err != nil {
			return config{}, fmt.Errorf("invalid value %q for -group-weights: %w", gweights, err)
		}
		cfg.groupWeights = ws
		if allWeighZero(cfg.backends, ws) {
			cfg.warnings = append(cfg.warnings, "-group-weights: every group weighs 0, so none takes new clients: they go to any backend")
		}
	}
	if err := checkPolicyFlags(&cfg, given); err != nil {
		return config{}, err
	}
	if err := readKeys(&cfg, key, o.keyFile, given); err != nil {
		return config{}, err
	}
	if given["cookie-name"] && cfg.cookieName == "" {
		return config{}, errors.New(`invalid value "" for -cookie-name: empty`)
	}
	if err := checkCookieAttrs(&cfg, cookieSecure, cookieSameSite, given); err != nil {
		return config{}, err
	}
	if cfg.cookieTTL < 0 {
		return config{}, fmt.Errorf("invalid value %q for -cookie-ttl: negative", cfg.cookieTTL)
	}
	for _, f := range []struct {
		name string
		d    time.Duration
	}{{"body-timeout", cfg.bodyTimeout}, {"write-timeout", cfg.writeTimeout}} {
		if f.d < 0 {
			return config{}, fmt.Errorf("invalid value %q for -%s: negative", f.d, f.name)
		}
	}
	if err := checkMaxLife(&cfg); err != nil {
		return config{}, err
	}
	if err := checkLoadFactor(cfg.loadFactor); err != nil {
		return config{}, err
	}
	if cfg.policy == policyAppCookie && cfg.appCookie == cmp.Or(cfg.cookieName, defaultCookieName) {
		return config{}, fmt.Errorf("invalid value %q for -app-cookie: it is the affinity cookie's name too; give that another with -cookie-name", cfg.appCookie)
	}
	ps, err := policy.ParsePrefixes(trusted)
	if err != nil {
		return config{}, fmt.Errorf("invalid value %q for -trusted-proxies: %w", trusted, err)
	}
	cfg.trusted = ps
	for _, p := range ps {
		if p.Bits() == 0 {
			cfg.warnings = append(cfg.warnings, fmt.Sprintf("-trusted-proxies %s trusts every peer: any client can set X-Forwarded-For, -Proto and -Host as it likes (and its own key under -policy ip)", p))
		}
	}
	if _, ok := pickers[cfg.picker]; !ok {
		return config{}, fmt.Errorf("invalid value %q for -picker: want leastconn or roundrobin", cfg.picker)
	}
	if err := checkAdminFlags(&cfg, tokenFile, given); err != nil {
		return config{}, err
	}
	if err := checkHealthFlags(&cfg, interval, given); err != nil {
		return config{}, err
	}
	if err := checkTLSFlags(&cfg, given); err != nil {
		return config{}, err
	}
	if given["backend-ca"] {
		pool, err := readCAs(caFile)
		if err != nil {
			return config{}, fmt.Errorf("invalid value %q for -backend-ca: %w", caFile, err)
		}
		cfg.backendCAs = pool
	}
	ls, err := parseStatusList(eject)
	if err != nil {
		return config{}, fmt.Errorf("invalid value %q for -eject-status: %w", eject, err)
	}
	cfg.ejectStatus = ls
	if err := o.check(&cfg, given); err != nil {
		return config{}, err
	}
	return cfg, nil
}

// checkAdminFlags checks -admin and -admin-token-file, whose value is
// tokenFile, reads the token, and warns when the admin API is not on
// loopback.
func checkAdminFlags(cfg *config, tokenFile string, given map[string]bool) error {
	if given["admin-token-file"] && cfg.admin == "" {
		return errors.New("-admin-token-file needs -admin")
	}
	if cfg.admin == "" {
		return nil
	}
	host, _, err := net.SplitHostPort(cfg.admin)
	if err != nil {
		return fmt.Errorf("invalid value %q for -admin: %w", cfg.admin, err)
	}
	if given["admin-token-file"] {
		tok, warning, err := readToken(tokenFile)
		if err != nil {
			return fmt.Errorf("invalid value %q for -admin-token-file: %w", tokenFile, err)
		}
		cfg.adminToken = tok
		if warning != "" {
			cfg.warnings = append(cfg.warnings, warning)
		}
	}
	ip, err := netip.ParseAddr(host)
	switch {
	case host == "localhost" || err == nil && ip.IsLoopback():
	case cfg.adminToken == nil:
		cfg.warnings = append(cfg.warnings, fmt.Sprintf("-admin %s is not a loopback address: the admin API has no authentication, so whoever reaches it can change the backends", cfg.admin))
	default:
		cfg.warnings = append(cfg.warnings, fmt.Sprintf("-admin %s is not a loopback address: the admin API's token and traffic cross the network in clear text", cfg.admin))
	}
	return nil
}

// maxTokenLen is the longest bearer token -admin-token-file may hold.
const maxTokenLen = 4096

// readToken returns the bearer token held in the file at path, less one
// trailing newline (LF or CRLF), and a warning if other users may read
// the file. The token must be 1 to maxTokenLen visible ASCII characters,
// which a header carries as they are. Errors never show the token.
func readToken(path string) (token []byte, warning string, err error) {
	if path == "" {
		return nil, "", errors.New("empty")
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxTokenLen+3)) // room for CRLF, and one byte too many
	if err != nil {
		return nil, "", err
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	b = bytes.TrimSuffix(b, []byte("\r"))
	switch {
	case len(b) == 0:
		return nil, "", errors.New("the file holds no token")
	case len(b) > maxTokenLen:
		return nil, "", fmt.Errorf("the token is over %d bytes", maxTokenLen)
	case bytes.ContainsFunc(b, func(r rune) bool { return r < '!' || r > '~' }):
		return nil, "", errors.New("the token holds a space, a control or a non-ASCII character, or more than one line")
	}
	if fi, err := f.Stat(); err == nil && fi.Mode().Perm()&0o077 != 0 {
		warning = fmt.Sprintf("-admin-token-file %s may be read by other users (mode %v): make it readable by the proxy's user only", path, fi.Mode().Perm())
	}
	return b, warning, nil
}

// checkHealthFlags checks -health-path and -health-interval, whose value is
// interval, as [backend.Set.CheckHealth] will, and sets
// cfg.healthInterval when health checks are on.
func checkHealthFlags(cfg *config, interval time.Duration, given map[string]bool) error {
	if cfg.healthPath == "" {
		if given["health-interval"] {
			return errors.New("-health-interval needs -health-path")
		}
		return nil
	}
	if _, err := (backend.HealthCheck{Path: cfg.healthPath}).Effective(); err != nil {
		return fmt.Errorf("invalid value %q for -health-path: %w", cfg.healthPath, err)
	}
	if interval <= 0 {
		return fmt.Errorf("invalid value %q for -health-interval: must be positive", interval)
	}
	if _, err := (backend.HealthCheck{Interval: interval}).Effective(); err != nil {
		return fmt.Errorf("invalid value %q for -health-interval: %w", interval, err)
	}
	cfg.healthInterval = interval
	return nil
}

// checkPolicyFlags checks -policy, and that the flags given are those it
// takes: the flags it requires are given and not empty, and no flag for
// another policy is.
func checkPolicyFlags(cfg *config, given map[string]bool) error {
	switch cfg.policy {
	case policyCookie, policyAppCookie, policyHeader, policyQuery, policyIP:
	default:
		return fmt.Errorf("invalid value %q for -policy: want cookie, appcookie, header, query or ip", cfg.policy)
	}
	for _, f := range appCookieRefuses {
		if cfg.policy == policyAppCookie && given[f] {
			return fmt.Errorf("-%s does not apply to -policy appcookie: the affinity cookie lives as long as the application's", f)
		}
	}
	for _, pf := range policyFlags {
		if given[pf.flag] && !slices.Contains(pf.policies, cfg.policy) {
			return fmt.Errorf("-%s needs -policy %s", pf.flag, orList(pf.policies))
		}
	}
	for _, r := range []struct{ policy, flag, value string }{
		{policyAppCookie, "app-cookie", cfg.appCookie},
		{policyHeader, "header", cfg.header},
		{policyQuery, "query", cfg.query},
	} {
		switch {
		case r.policy != cfg.policy || r.value != "":
		case given[r.flag]:
			return fmt.Errorf(`invalid value "" for -%s: empty`, r.flag)
		default:
			return fmt.Errorf("-policy %s needs -%s NAME", r.policy, r.flag)
		}
	}
	return nil
}

// orList returns "a", "a or b", "a, b or c"...
func orList(s []string) string {
	if len(s) < 2 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}

// checkMaxLife checks -cookie-max-life against the library's bounds and,
// for policy cookie, against -cookie-ttl: a cap shorter than the cookie's
// lifetime would end bindings before their cookie expires. With -cookie-ttl
// 0, a session cookie, any cap of a second or more will do.
func checkMaxLife(cfg *config) error {
	d := cfg.cookieMaxLife
	switch {
	case d < 0:
		return fmt.Errorf("invalid value %q for -cookie-max-life: negative; 0 sets no cap", d)
	case d > 0 && d < time.Second:
		return fmt.Errorf("invalid value %q for -cookie-max-life: under a second; 0 sets no cap", d)
	case d > 0 && cfg.policy == policyCookie && d < cfg.cookieTTL:
		return fmt.Errorf("invalid value %q for -cookie-max-life: shorter than -cookie-ttl %q", d, cfg.cookieTTL)
	}
	return nil
}

// checkLoadFactor checks the value f of -load-factor: 0, off, or over 1
// and within what [balancer.WithLoadFactor] takes. 1 is refused, though
// the library takes it: at 1 a key leaves its backend as soon as that holds
// more than its share of the requests in flight.
func checkLoadFactor(f float64) error {
	if f == 0 {
		return nil
	}
	v := strconv.FormatFloat(f, 'g', -1, 64)
	if !(f > 1) { // NaN too
		return fmt.Errorf("invalid value %q for -load-factor: want over 1, or 0 for keys that never spill", v)
	}
	if _, err := balancer.NewConsistentHash(balancer.WithLoadFactor(f)); err != nil {
		return fmt.Errorf("invalid value %q for -load-factor: %w", v, err)
	}
	return nil
}

// statusList is the value of -eject-status: the response statuses that
// count as their backend's failures, as ranges of codes. Empty, it holds
// none.
type statusList []statusRange

// statusRange is the status codes from lo to hi, both included.
type statusRange struct{ lo, hi int }

// contains reports whether l holds the status code.
func (l statusList) contains(code int) bool {
	for _, r := range l {
		if r.lo <= code && code <= r.hi {
			return true
		}
	}
	return false
}

// parseStatusList reads a comma-separated list of status codes (100 to
// 599, three digits) and classes (1xx to 5xx, the x of either case).
// Spaces around an item and blank items are ignored, so a blank list is
// empty; any other item is an error naming it.
func parseStatusList(list string) (statusList, error) {
	var l statusList
	for item := range strings.SplitSeq(list, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		r, ok := parseStatus(item)
		if !ok {
			return nil, fmt.Errorf("%q is neither a status code (100 to 599) nor a class (1xx to 5xx)", item)
		}
		l = append(l, r)
	}
	return l, nil
}

// parseStatus reads one item of a status list: a code or a class.
func parseStatus(item string) (statusRange, bool) {
	if len(item) != 3 || item[0] < '1' || item[0] > '5' {
		return statusRange{}, false
	}
	if strings.EqualFold(item[1:], "xx") {
		lo := int(item[0]-'0') * 100
		return statusRange{lo, lo + 99}, true
	}
	for _, c := range item[1:] {
		if c < '0' || c > '9' {
			return statusRange{}, false
		}
	}
	code, _ := strconv.Atoi(item) // three digits
	return statusRange{code, code}, true
}

// parseBackends reads a comma-separated list of backends, each a URL,
// NAME=URL or GROUP:NAME=URL; NAME becomes the backend's ID and GROUP its
// group, else the default group "". Blank items are skipped. The backends
// are checked as [backend.NewSet] will check them: a bad URL, name or
// group, or a name used twice, is an error.
func parseBackends(list string) ([]backend.Config, error) {
	var cs []backend.Config
	for item := range strings.SplitSeq(list, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		c := backend.Config{URL: item}
		// [GROUP:]NAME has no '/' and one ':' at most; after a '/' or a
		// second ':', '=' belongs to the URL.
		if name, u, ok := strings.Cut(item, "="); ok && !strings.Contains(name, "/") && strings.Count(name, ":") <= 1 {
			group, id, grouped := strings.Cut(name, ":")
			if !grouped {
				group, id = "", name
			}
			c.Group, c.ID, c.URL = strings.TrimSpace(group), strings.TrimSpace(id), strings.TrimSpace(u)
			if c.ID == "" {
				return nil, fmt.Errorf("backend %q: empty name", item)
			}
		}
		cs = append(cs, c)
	}
	if len(cs) == 0 {
		return nil, errors.New("no backends")
	}
	if _, err := backend.NewSet(cs); err != nil {
		return nil, err
	}
	return cs, nil
}

// parseKeys turns the value of -key (or of source, named so in errors and
// warnings), a comma-separated list of secrets,
// into signing keys (the first signs, all verify), and warnings for the
// operator. Secrets are taken verbatim, spaces included. Errors and warnings
// name a secret by its position, never by its value.
func parseKeys(value, source string) (keys [][]byte, warnings []string, err error) {
	secrets := strings.Split(value, ",")
	for i, s := range secrets {
		k, weak, err := parseKey(s)
		switch {
		case err != nil && len(secrets) == 1:
			return nil, nil, fmt.Errorf("invalid value %q for %s: %w", value, source, err)
		case err != nil:
			return nil, nil, fmt.Errorf("invalid value for %s: secret %d of %d: %w", source, i+1, len(secrets), err)
		case weak && len(secrets) == 1:
			warnings = append(warnings, fmt.Sprintf("%s is shorter than %d bytes: signing with its SHA-256; a short key is weak, use 32 random bytes", source, minKeyLen))
		case weak:
			warnings = append(warnings, fmt.Sprintf("%s: secret %d of %d is shorter than %d bytes: using its SHA-256; a short key is weak, use 32 random bytes", source, i+1, len(secrets), minKeyLen))
		}
		keys = append(keys, k)
	}
	return keys, warnings, nil
}

// parseKey returns the signing key for one secret. A secret shorter than
// minKeyLen is not refused: its SHA-256 is the key, so replicas given the
// same secret still agree, and weak reports it. An empty secret is an
// error: its hash is public.
func parseKey(secret string) (key []byte, weak bool, err error) {
	switch {
	case secret == "":
		return nil, false, errors.New("empty")
	case len(secret) < minKeyLen:
		sum := sha256.Sum256([]byte(secret))
		return sum[:], true, nil
	}
	return []byte(secret), false, nil
}

// randomKey returns 32 random bytes.
func randomKey() []byte {
	k := make([]byte, 32)
	rand.Read(k) // never fails; see crypto/rand.Read
	return k
}

// The flags from -weights to -version: opsFlags holds their values as
// given, register defines them, check and readKeys check them into a
// config.

// keyEnv is the environment variable that may hold the signing secrets,
// in the format of -key, when neither -key nor -key-file is given.
const keyEnv = "STICKYPROXY_KEY"

// Defaults of the library's, shown by -h and on the status page.
const (
	defaultRetries = 2                // sticky.WithRetries's
	retryWithin    = 10 * time.Second // sticky.WithRetries's time bound, kept with -retries
	maxKeyFile     = 64 << 10         // the longest -key-file read
)

// libHealth is what backend.HealthCheck's zero fields stand for, shown by
// -h as the health flags' defaults.
var libHealth, _ = backend.HealthCheck{}.Effective()

// errVersion is returned by parseFlags for -version.
var errVersion = errors.New("version requested")

// opsFlags is the values of the flags -weights to -version, as given.
type opsFlags struct {
	keyFile       string
	weights       string
	slowStart     time.Duration
	stallTimeout  time.Duration
	healthTimeout time.Duration
	healthRise    int
	healthFall    int
	healthStatus  string
	retries       int
	logLevel      string
	accessLog     bool
	version       bool
}

// register defines the flags on fs.
func (o *opsFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&o.keyFile, "key-file", "", "`file` holding the signing secrets, one a line, the first signs; blank lines are ignored.\nEach secret as in -key (a comma is part of it). Not with -key; either overrides $"+keyEnv+",\nwhich holds secrets as -key does. Ignored by the key policies")
	fs.StringVar(&o.weights, "weights", "", "comma-separated `list` of NAME=W: the weight W (1 to 65536) of the backend NAME of -backends\n(app1 to app3 for the demo servers); others weigh 1")
	fs.DurationVar(&o.slowStart, "slow-start", 0, "a backend that joins, or becomes healthy again, is given new clients gradually over this\nlong, as if busier than it is; 0: off")
	fs.DurationVar(&o.stallTimeout, "stall-timeout", backend.DefaultStallTimeout, "a backend that answers none of its requests for this long, while at least 3 of them wait\nthat long or are given up, is ejected as hung; must exceed the slowest answer a client may wait for,\nelse that client can eject a quiet backend; 0: off")
	fs.DurationVar(&o.healthTimeout, "health-timeout", 0, "longest a health check may take, at most -health-interval; 0: 2s, or -health-interval if shorter;\nneeds -health-path")
	fs.IntVar(&o.healthRise, "health-rise", libHealth.Rise, "`N` passing health checks in a row make an unhealthy backend healthy again; needs -health-path")
	fs.IntVar(&o.healthFall, "health-fall", libHealth.Fall, "`N` failing health checks in a row make a backend unhealthy; needs -health-path")
	fs.StringVar(&o.healthStatus, "health-status", fmt.Sprintf("%d-%d", libHealth.MinStatus, libHealth.MaxStatus), "`range` of statuses that pass a health check, LO-HI or one code, 100 to 599; needs -health-path")
	fs.IntVar(&o.retries, "retries", defaultRetries, "a request that failed before any answer is tried on up to `N` other backends, within 10s\nof its first failure (one that may have reached its backend: one other at most, if idempotent); 0: none")
	fs.StringVar(&o.logLevel, "log-level", "info", "`level` of the logs on stderr: debug, info, warn or error")
	fs.BoolVar(&o.accessLog, "access-log", false, "log one line per request on stderr, whatever -log-level: method, path, status, duration,\nbytes, backend, binding, client, placement, retries, header, group")
	fs.BoolVar(&o.version, "version", false, "print the version and exit")
}

// check checks the flags in o that given holds, as parsed into cfg, and
// sets them in cfg.
func (o *opsFlags) check(cfg *config, given map[string]bool) error {
	if given["weights"] {
		ws, err := parseWeights(o.weights, backendNames(cfg))
		if err != nil {
			return fmt.Errorf("invalid value %q for -weights: %w", o.weights, err)
		}
		cfg.weights = ws
	}
	if o.slowStart < 0 {
		return fmt.Errorf("invalid value %q for -slow-start: negative; 0 turns slow start off", o.slowStart)
	}
	cfg.slowStart = o.slowStart
	if given["stall-timeout"] {
		if o.stallTimeout < 0 {
			return fmt.Errorf("invalid value %q for -stall-timeout: negative; 0 turns stall detection off", o.stallTimeout)
		}
		d := o.stallTimeout
		cfg.stallTimeout = &d
	}
	if err := o.checkHealth(cfg, given); err != nil {
		return err
	}
	if given["retries"] {
		switch {
		case o.retries < 0:
			return fmt.Errorf("invalid value \"%d\" for -retries: negative; 0 turns retries off", o.retries)
		case o.retries > 0 && cfg.strict:
			return fmt.Errorf("invalid value \"%d\" for -retries: -strict sends a request to its own backend only; 0 or no -retries", o.retries)
		}
		n := o.retries
		cfg.retries = &n
	}
	switch strings.ToLower(o.logLevel) {
	case "debug":
		cfg.logLevel = slog.LevelDebug
	case "info":
		cfg.logLevel = slog.LevelInfo
	case "warn":
		cfg.logLevel = slog.LevelWarn
	case "error":
		cfg.logLevel = slog.LevelError
	default:
		return fmt.Errorf("invalid value %q for -log-level: want debug, info, warn or error", o.logLevel)
	}
	cfg.accessLog = o.accessLog
	return nil
}

// checkHealth checks -health-timeout, -health-rise, -health-fall and
// -health-status, which need -health-path, as [backend.Set.CheckHealth]
// will. A value that is the library's default is kept as zero.
func (o *opsFlags) checkHealth(cfg *config, given map[string]bool) error {
	names := []string{"health-timeout", "health-rise", "health-fall", "health-status"}
	if cfg.healthPath == "" {
		for _, n := range names {
			if given[n] {
				return fmt.Errorf("-%s needs -health-path", n)
			}
		}
		return nil
	}
	hc := backend.HealthCheck{Path: cfg.healthPath, Interval: cfg.healthInterval}
	if o.healthTimeout < 0 {
		return fmt.Errorf("invalid value %q for -health-timeout: negative", o.healthTimeout)
	}
	hc.Timeout = o.healthTimeout
	if _, err := hc.Effective(); err != nil {
		return fmt.Errorf("invalid value %q for -health-timeout: %w", o.healthTimeout, err)
	}
	for _, f := range []struct {
		name string
		n    int
		dst  *int
	}{{"health-rise", o.healthRise, &cfg.healthRise}, {"health-fall", o.healthFall, &cfg.healthFall}} {
		if f.n < 1 {
			return fmt.Errorf("invalid value \"%d\" for -%s: want at least 1", f.n, f.name)
		}
		if given[f.name] {
			*f.dst = f.n
		}
	}
	lo, hi, err := parseStatusRange(o.healthStatus)
	if err != nil {
		return fmt.Errorf("invalid value %q for -health-status: %w", o.healthStatus, err)
	}
	hc.MinStatus, hc.MaxStatus = lo, hi
	if _, err := hc.Effective(); err != nil {
		return fmt.Errorf("invalid value %q for -health-status: %w", o.healthStatus, err)
	}
	cfg.healthTimeout = o.healthTimeout
	if given["health-status"] {
		cfg.healthMinStatus, cfg.healthMaxStatus = lo, hi
	}
	return nil
}

// parseStatusRange reads LO-HI or a single code, each three digits from
// 100 to 599, LO at most HI.
func parseStatusRange(s string) (lo, hi int, err error) {
	los, his, isRange := strings.Cut(strings.TrimSpace(s), "-")
	code := func(c string) (int, error) {
		c = strings.TrimSpace(c)
		n, err := strconv.Atoi(c)
		if err != nil || len(c) != 3 || n < 100 || n > 599 {
			return 0, fmt.Errorf("%q is not a status code (100 to 599)", c)
		}
		return n, nil
	}
	if lo, err = code(los); err != nil {
		return 0, 0, err
	}
	hi = lo
	if isRange {
		if hi, err = code(his); err != nil {
			return 0, 0, err
		}
	}
	if lo > hi {
		return 0, 0, fmt.Errorf("%d is over %d", lo, hi)
	}
	return lo, hi, nil
}

// demoNames is the names of the demo servers, as startDemo names them.
var demoNames = []string{"app1", "app2", "app3"}

// backendNames returns the names -weights may give weights to: those of
// -backends' NAME=URL items, or the demo servers' without -backends.
func backendNames(cfg *config) []string {
	if len(cfg.backends) == 0 {
		return demoNames
	}
	var names []string
	for _, b := range cfg.backends {
		if b.ID != "" {
			names = append(names, b.ID)
		}
	}
	return names
}

// parseWeights reads a comma-separated list of NAME=W, each NAME one of
// names and given once, each W from 1 to [backend.MaxWeight]. Spaces
// around items and blank items are ignored.
func parseWeights(list string, names []string) (map[string]int, error) {
	ws := map[string]int{}
	for item := range strings.SplitSeq(list, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, w, ok := strings.Cut(item, "=")
		name, w = strings.TrimSpace(name), strings.TrimSpace(w)
		if !ok || name == "" {
			return nil, fmt.Errorf("%q is not NAME=WEIGHT", item)
		}
		if !slices.Contains(names, name) {
			return nil, fmt.Errorf("no backend named %q in -backends (NAME=URL)", name)
		}
		if _, dup := ws[name]; dup {
			return nil, fmt.Errorf("%q is given twice", name)
		}
		n, err := strconv.Atoi(w)
		if err != nil || n < 1 || n > backend.MaxWeight {
			return nil, fmt.Errorf("weight %q of %q: want 1 to %d", w, name, backend.MaxWeight)
		}
		ws[name] = n
	}
	if len(ws) == 0 {
		return nil, errors.New("no weights")
	}
	return ws, nil
}

// allWeighZero reports whether every group, of the backends or of ws,
// weighs 0 by ws; a group ws does not name weighs 1.
func allWeighZero(bs []backend.Config, ws map[string]int) bool {
	for _, b := range bs {
		if w, ok := ws[b.Group]; !ok || w > 0 {
			return false
		}
	}
	for _, w := range ws {
		if w > 0 {
			return false
		}
	}
	return true
}

// parseGroupWeights reads a comma-separated list of GROUP=W, each GROUP
// a group name (empty: the default group) given once, each W from 0 to
// [backend.MaxGroupWeight]. A group need not have a backend: a canary's
// may join later, through the admin API. Spaces around items and blank
// items are ignored.
func parseGroupWeights(list string) (map[string]int, error) {
	ws := map[string]int{}
	for item := range strings.SplitSeq(list, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, w, ok := strings.Cut(item, "=")
		name, w = strings.TrimSpace(name), strings.TrimSpace(w)
		if !ok {
			return nil, fmt.Errorf("%q is not GROUP=WEIGHT", item)
		}
		if _, dup := ws[name]; dup {
			return nil, fmt.Errorf("group %q is given twice", name)
		}
		n, err := strconv.Atoi(w)
		if err != nil || n < 0 || n > backend.MaxGroupWeight {
			return nil, fmt.Errorf("weight %q of group %q: want 0 to %d", w, name, backend.MaxGroupWeight)
		}
		// The library's rules for group names.
		if _, err := backend.NewSet(nil, backend.WithGroupWeights(map[string]int{name: n})); err != nil {
			return nil, err
		}
		ws[name] = n
	}
	if len(ws) == 0 {
		return nil, errors.New("no weights")
	}
	return ws, nil
}

// readKeys sets cfg's signing keys, for the cookie policies, from -key
// (whose value is key), -key-file (keyFile) or $STICKYPROXY_KEY, else a
// random key. -key and -key-file together are an error; either overrides
// the environment, with a warning. The key policies ignore all three.
func readKeys(cfg *config, key, keyFile string, given map[string]bool) error {
	if !cfg.usesCookie() {
		return nil
	}
	env, inEnv := os.LookupEnv(keyEnv)
	var (
		ks       [][]byte
		warnings []string
		err      error
	)
	switch {
	case given["key"] && given["key-file"]:
		return errors.New("-key and -key-file both give the signing secrets: give one")
	case given["key"]:
		cfg.keySource = "-key"
		ks, warnings, err = parseKeys(key, "-key")
	case given["key-file"]:
		cfg.keySource = "-key-file"
		ks, warnings, err = readKeyFile(keyFile)
	case inEnv:
		// A secret stored in a file, as Kubernetes and Docker keep
		// them, often ends in a newline the operator did not mean.
		cfg.keySource = keyEnv
		ks, warnings, err = parseKeys(strings.TrimRight(env, "\r\n"), keyEnv)
	default:
		cfg.keySource = "random"
		cfg.keys = [][]byte{randomKey()}
		cfg.warnings = append(cfg.warnings, "no -key: signing with a random key; replicas will not agree on cookies, and cookies die with the process")
		return nil
	}
	if err != nil {
		return err
	}
	if inEnv && cfg.keySource != keyEnv {
		warnings = append(warnings, fmt.Sprintf("%s is set but %s is given: signing with %s's secrets", keyEnv, cfg.keySource, cfg.keySource))
	}
	cfg.keys, cfg.warnings = ks, append(cfg.warnings, warnings...)
	return nil
}

// readKeyFile returns the signing keys the file at path holds, one secret
// a line (less a CR before its LF), the first signs; blank lines (spaces
// only) are skipped. Each secret is taken as parseKey takes it. Errors and
// warnings name a secret by its line, never by its value, and warn if
// other users may read the file.
func readKeyFile(path string) (keys [][]byte, warnings []string, err error) {
	fail := func(err error) ([][]byte, []string, error) {
		return nil, nil, fmt.Errorf("invalid value %q for -key-file: %w", path, err)
	}
	if path == "" {
		return fail(errors.New("empty"))
	}
	f, err := os.Open(path)
	if err != nil {
		return fail(err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return fail(err)
	}
	if len(b) > maxKeyFile {
		return fail(fmt.Errorf("over %d bytes", maxKeyFile))
	}
	// A byte order mark is the editor's, not the secret's: the same
	// secret given to -key has none.
	b = bytes.TrimPrefix(b, []byte("\uFEFF"))
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSuffix(line, "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		k, weak, _ := parseKey(line) // not empty: no error
		if weak {
			warnings = append(warnings, fmt.Sprintf("-key-file %s: the secret on line %d is shorter than %d bytes: using its SHA-256; a short key is weak, use 32 random bytes", path, i+1, minKeyLen))
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return fail(errors.New("the file holds no secret"))
	}
	if fi, err := f.Stat(); err == nil && fi.Mode().Perm()&0o077 != 0 {
		warnings = append(warnings, fmt.Sprintf("-key-file %s may be read by other users (mode %v): make it readable by the proxy's user only", path, fi.Mode().Perm()))
	}
	return keys, warnings, nil
}
