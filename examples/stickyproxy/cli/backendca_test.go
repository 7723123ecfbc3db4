package cli

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// caFile writes the certificate of ca (see tls_e2e_test.go) to a file
// of dir, as PEM, and returns its path.
func caFile(t *testing.T, ca *testCA, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "ca.pem")
	require.NoError(t, os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw}), 0o644))
	return p
}

// serverCert returns a certificate for 127.0.0.1 that ca signed.
func serverCert(t *testing.T, ca *testCA) tls.Certificate {
	t.Helper()
	chain, key := ca.issue(t, 2)
	cert, err := tls.X509KeyPair(chain, key)
	require.NoError(t, err)
	return cert
}

func TestParseFlagsBackendCA(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t)
	caPath := caFile(t, ca, dir)
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
		return p
	}
	keyDER, err := x509.MarshalECPrivateKey(ca.key)
	require.NoError(t, err)
	keyOnly := write("key.pem", string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})))
	missing := filepath.Join(dir, "missing")

	t.Run("a CA file", func(t *testing.T) {
		cfg, err := parseFlags([]string{"-policy", "ip", "-backend-ca", caPath}, nil)
		require.NoError(t, err)
		require.NotNil(t, cfg.backendCAs)
		want, err := x509.SystemCertPool()
		require.NoError(t, err)
		want.AddCert(ca.cert)
		assert.True(t, want.Equal(cfg.backendCAs), "the system's roots and the file's")
	})
	t.Run("not given", func(t *testing.T) {
		cfg, err := parseFlags([]string{"-policy", "ip"}, nil)
		require.NoError(t, err)
		assert.Nil(t, cfg.backendCAs, "the system's roots only")
		assert.Nil(t, backendTLS(cfg))
	})
	for _, tt := range []struct {
		name, value, why string
	}{
		{"empty", "", "empty"},
		{"a missing file", missing, "stat"},
		{"a directory", dir, "read"},
		{"not PEM", write("text", "hello\n"), "the file holds no PEM certificate"},
		{"a key, no certificate", keyOnly, "the file holds no PEM certificate"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			code := run(t.Context(), []string{"-policy", "ip", "-backend-ca", tt.value}, &bytes.Buffer{}, &stderr, nil)
			assert.Equal(t, 2, code, "exit status")
			assert.Contains(t, stderr.String(), `stickyproxy: invalid value "`+tt.value+`" for -backend-ca: `+tt.why)
			assert.Equal(t, 1, bytes.Count(stderr.Bytes(), []byte("\n")), "one line: %s", stderr.String())
		})
	}
	t.Run("help", func(t *testing.T) {
		var help bytes.Buffer
		_, err := parseFlags([]string{"-h"}, &help)
		require.True(t, errors.Is(err, flag.ErrHelp), "got %v", err)
		assert.Contains(t, help.String(), "-backend-ca file")
	})
}
