package cli

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
)

// maxCAFileSize bounds the file -backend-ca may name: a bundle of every
// public authority is about 200 KB.
const maxCAFileSize = 4 << 20

// readCAs returns the system's certificate pool plus the PEM certificates
// in the file at path. A file that cannot be read, or holds no
// certificate, is an error.
func readCAs(path string) (*x509.CertPool, error) {
	if path == "" {
		return nil, errors.New("empty")
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Size() > maxCAFileSize {
		return nil, errors.New("the file is over 4 MiB")
	}
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool() // no system roots on this machine
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, errors.New("the file holds no PEM certificate")
	}
	return pool, nil
}

// backendTLS returns the TLS configuration of connections to https
// backends: nil, net/http's default, without -backend-ca.
func backendTLS(cfg config) *tls.Config {
	if cfg.backendCAs == nil {
		return nil
	}
	return &tls.Config{RootCAs: cfg.backendCAs}
}
