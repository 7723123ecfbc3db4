package cli

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// checkTLSFlags checks -tls-cert, -tls-key and -h2c, and loads the
// certificate and key: both files or neither, and -h2c only without them.
func checkTLSFlags(cfg *config, given map[string]bool) error {
	switch {
	case given["tls-cert"] && cfg.tlsCert == "":
		return errors.New(`invalid value "" for -tls-cert: empty`)
	case given["tls-key"] && cfg.tlsKey == "":
		return errors.New(`invalid value "" for -tls-key: empty`)
	case cfg.tlsCert != "" && cfg.tlsKey == "":
		return errors.New("-tls-cert needs -tls-key FILE")
	case cfg.tlsKey != "" && cfg.tlsCert == "":
		return errors.New("-tls-key needs -tls-cert FILE")
	case cfg.tlsCert == "":
		return nil
	case cfg.h2c:
		return errors.New("-h2c does not apply with -tls-cert: h2c is HTTP/2 in clear text, and HTTPS serves HTTP/2 already")
	}
	cert, err := loadKeyPair(cfg.tlsCert, cfg.tlsKey)
	if err != nil {
		return err
	}
	cfg.cert = cert
	if w := validityWarning(cert.Leaf, time.Now()); w != "" {
		cfg.warnings = append(cfg.warnings, "-tls-cert "+cfg.tlsCert+": "+w)
	}
	return nil
}

// loadKeyPair reads a certificate chain, the server's certificate first,
// from the PEM file certFile, and its private key from the PEM file
// keyFile. Its errors name the flag, -tls-cert or -tls-key, and the file
// at fault; a key that is not the certificate's is -tls-key's.
func loadKeyPair(certFile, keyFile string) (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("invalid value %q for -tls-cert: %w", certFile, err)
	}
	if err := checkChain(certPEM); err != nil {
		return nil, fmt.Errorf("invalid value %q for -tls-cert: %w", certFile, err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("invalid value %q for -tls-key: %w", keyFile, err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("invalid value %q for -tls-key: %w", keyFile, err)
	}
	return &cert, nil
}

// checkChain returns nil if b, the content of -tls-cert, holds one PEM
// certificate or more, all of which parse, and why not otherwise. Blocks
// of other types are skipped, as [tls.X509KeyPair] skips them.
func checkChain(b []byte) error {
	n := 0
	for rest := b; ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue // a key too, say, in a file given to both flags
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return fmt.Errorf("certificate %d: %w", n+1, err)
		}
		n++
	}
	if n == 0 {
		return errors.New("no PEM certificate in the file")
	}
	return nil
}

// validityWarning returns why the certificate c is not valid at now, or ""
// if it is. Clients refuse such a certificate, but the proxy serves it:
// a clock may be wrong, and a renewal is one SIGHUP away.
func validityWarning(c *x509.Certificate, now time.Time) string {
	switch {
	case now.After(c.NotAfter):
		return fmt.Sprintf("the certificate expired at %s", c.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(c.NotBefore):
		return fmt.Sprintf("the certificate is not valid before %s", c.NotBefore.UTC().Format(time.RFC3339))
	}
	return ""
}

// certStore holds the certificate the proxy serves, and reloads it from
// its files. Its methods are safe for concurrent use; a handshake loads
// the certificate without a lock.
type certStore struct {
	certFile, keyFile string
	logger            *slog.Logger
	mu                sync.Mutex // serializes reloads, so their logs come in the order they were stored
	cert              atomic.Pointer[tls.Certificate]
}

// newCertStore returns a store serving cert, reloaded from certFile and
// keyFile.
func newCertStore(cert *tls.Certificate, certFile, keyFile string, logger *slog.Logger) *certStore {
	s := &certStore{certFile: certFile, keyFile: keyFile, logger: logger}
	s.cert.Store(cert)
	return s
}

// getCertificate returns the certificate to serve, as
// [tls.Config.GetCertificate]: whatever the client asks for, the one
// pair the proxy has.
func (s *certStore) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return s.cert.Load(), nil
}

// reload reads the certificate and key files again. A good pair is served
// on the handshakes that follow, and logged at Info; connections already
// open keep theirs. A bad one is logged at Error, returned, and the pair
// served so far is kept.
func (s *certStore) reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cert, err := loadKeyPair(s.certFile, s.keyFile)
	if err != nil {
		s.logger.Error("TLS certificate not reloaded; still serving the previous one", "err", err)
		return err
	}
	s.cert.Store(cert)
	attrs := append([]any{"cert", s.certFile}, certAttrs(cert.Leaf)...)
	if w := validityWarning(cert.Leaf, time.Now()); w != "" {
		attrs = append(attrs, "warning", w)
	}
	s.logger.Info("TLS certificate reloaded", attrs...)
	return nil
}

// certAttrs returns what identifies the certificate c to an operator, as
// log attributes.
func certAttrs(c *x509.Certificate) []any {
	return []any{"subject", c.Subject.String(), "serial", c.SerialNumber.Text(16), "not-after", c.NotAfter.UTC().Format(time.RFC3339)}
}

// watch reloads the pair on each SIGHUP until stop is called; stop
// returns once no reload runs. The signal is caught from when watch
// returns.
func (s *certStore) watch() (stop func()) {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGHUP)
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case <-c:
				s.reload() // logged
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(c)
		close(done)
		<-stopped
	}
}

// tlsConfig returns the TLS configuration of the proxy's listener: TLS 1.2
// or later, HTTP/2 (ALPN "h2") or HTTP/1.1, the certificate from s.
func tlsConfig(s *certStore) *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     []string{"h2", "http/1.1"},
		GetCertificate: s.getCertificate,
	}
}

// protocols returns the protocols the proxy's listener serves: HTTP/1.1,
// and HTTP/2 over TLS if overTLS, or in clear text with prior knowledge if
// h2c.
func protocols(overTLS, h2c bool) *http.Protocols {
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetHTTP2(overTLS)
	p.SetUnencryptedHTTP2(h2c)
	return p
}
