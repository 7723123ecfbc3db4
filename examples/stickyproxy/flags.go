package main

import (
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/balancer"
)

// minKeyLen is the shortest signing key the cookie policy accepts.
const minKeyLen = 16

// pickers maps the values of -picker to the pickers they choose.
var pickers = map[string]func() balancer.Picker{
	"leastconn":  func() balancer.Picker { return &balancer.LeastConnections{} },
	"roundrobin": func() balancer.Picker { return &balancer.RoundRobin{} },
}

// config is the proxy's configuration, read from its command line and
// checked: every field is valid.
type config struct {
	listen     string
	backends   []backend.Config // empty: run the demo servers
	keys       [][]byte         // cookie signing keys, each at least minKeyLen bytes
	cookieName string           // "": the policy's default
	cookieTTL  time.Duration    // 0: a session cookie
	picker     string           // a key of pickers
	warnings   []string         // for the operator, logged at startup
}

// parseFlags reads the command line. It writes nothing but the usage, to
// help and only for -h, in which case it returns [flag.ErrHelp]. Any other
// error is one line naming the flag and the bad value.
func parseFlags(args []string, help io.Writer) (config, error) {
	var (
		cfg      config
		backends string
		key      string
	)
	fs := flag.NewFlagSet("stickyproxy", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are returned, not printed
	fs.StringVar(&cfg.listen, "listen", "127.0.0.1:8080", "`address` to listen on")
	fs.StringVar(&backends, "backends", "", "comma-separated `list` of backends, each URL or NAME=URL;\nempty: start three demo servers, app1 to app3")
	fs.StringVar(&key, "key", "", "`secret` that signs the affinity cookie; the same on every replica.\nAt least 16 bytes; a shorter one is hashed into a key (weak).\nAbsent: a random key, so cookies die with the process")
	fs.StringVar(&cfg.cookieName, "cookie-name", "", "affinity cookie `name` (default \"affinity\", the library's)")
	fs.DurationVar(&cfg.cookieTTL, "cookie-ttl", 15*time.Minute, "affinity cookie lifetime; 0 makes it a session cookie")
	fs.StringVar(&cfg.picker, "picker", "leastconn", "`picker` for new clients: leastconn or roundrobin")

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
		cfg.backends = bs
	}
	if given["key"] {
		ks, warnings, err := parseKeys(key)
		if err != nil {
			return config{}, err
		}
		cfg.keys, cfg.warnings = ks, append(cfg.warnings, warnings...)
	} else {
		cfg.keys = [][]byte{randomKey()}
		cfg.warnings = append(cfg.warnings, "no -key: signing with a random key; replicas will not agree on cookies, and cookies die with the process")
	}
	if given["cookie-name"] && cfg.cookieName == "" {
		return config{}, errors.New(`invalid value "" for -cookie-name: empty`)
	}
	if cfg.cookieTTL < 0 {
		return config{}, fmt.Errorf("invalid value %q for -cookie-ttl: negative", cfg.cookieTTL)
	}
	if _, ok := pickers[cfg.picker]; !ok {
		return config{}, fmt.Errorf("invalid value %q for -picker: want leastconn or roundrobin", cfg.picker)
	}
	return cfg, nil
}

// parseBackends reads a comma-separated list of backends, each a URL or
// NAME=URL; NAME becomes the backend's ID. Blank items are skipped. The
// backends are checked as [backend.NewSet] will check them: a bad URL or
// name, or a name used twice, is an error.
func parseBackends(list string) ([]backend.Config, error) {
	var cs []backend.Config
	for item := range strings.SplitSeq(list, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		c := backend.Config{URL: item}
		// A name has no ':' or '/'; before them, '=' belongs to the URL.
		if name, u, ok := strings.Cut(item, "="); ok && !strings.ContainsAny(name, ":/") {
			c.ID, c.URL = strings.TrimSpace(name), strings.TrimSpace(u)
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

// parseKeys turns the value of -key into signing keys, and warnings for the
// operator. Today the value is one key; it is a list so that key rotation
// (several keys, the first signs) can come without changing callers.
func parseKeys(value string) (keys [][]byte, warnings []string, err error) {
	k, weak, err := parseKey(value)
	if err != nil {
		return nil, nil, err
	}
	if weak {
		warnings = append(warnings, fmt.Sprintf("-key is shorter than %d bytes: signing with its SHA-256; a short key is weak, use 32 random bytes", minKeyLen))
	}
	return [][]byte{k}, warnings, nil
}

// parseKey returns the signing key for one secret. A secret shorter than
// minKeyLen is not refused: its SHA-256 is the key, so replicas given the
// same secret still agree, and weak reports it. An empty secret is an
// error: its hash is public.
func parseKey(secret string) (key []byte, weak bool, err error) {
	switch {
	case secret == "":
		return nil, false, errors.New(`invalid value "" for -key: empty`)
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
