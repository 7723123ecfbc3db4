package cli

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// End-to-end tests of HTTPS (-tls-cert, -tls-key, SIGHUP reloads) and of
// cleartext HTTP/2 (-h2c).

// testCA is a certificate authority made for a test, issuing certificates
// for 127.0.0.1.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool // holds cert alone
}

// newTestCA returns a new CA with an ECDSA P-256 key.
func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "stickyproxy test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// issue returns a certificate for 127.0.0.1 with the serial number given,
// signed by ca, as PEM: the chain (the certificate, then ca's) and the
// private key.
func (ca *testCA) issue(t *testing.T, serial int64) (chainPEM, keyPEM []byte) {
	t.Helper()
	return ca.issueFor(t, serial, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
}

// issueFor is issue, for a certificate valid from notBefore to notAfter.
func (ca *testCA) issueFor(t *testing.T, serial int64, notBefore, notAfter time.Time) (chainPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	require.NoError(t, err)
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	chainPEM = append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw})...)
	return chainPEM, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}

// keyFiles is a certificate file and a key file, in a test's temporary
// directory.
type keyFiles struct{ cert, key string }

// newKeyFiles returns the paths of two files in a new temporary directory.
func newKeyFiles(t *testing.T) keyFiles {
	dir := t.TempDir()
	return keyFiles{filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")}
}

// write writes a pair into f's files.
func (f keyFiles) write(t *testing.T, chainPEM, keyPEM []byte) {
	t.Helper()
	require.NoError(t, os.WriteFile(f.cert, chainPEM, 0o644))
	require.NoError(t, os.WriteFile(f.key, keyPEM, 0o600))
}

// issue writes into f's files a pair ca issues with the serial number
// given.
func (f keyFiles) issue(t *testing.T, ca *testCA, serial int64) {
	t.Helper()
	chain, key := ca.issue(t, serial)
	f.write(t, chain, key)
}

// args returns the flags that serve f's pair.
func (f keyFiles) args() []string { return []string{"-tls-cert", f.cert, "-tls-key", f.key} }

// startTLSProxy starts the proxy serving HTTPS with the pair in f, and
// args; its url is https://.
func startTLSProxy(t *testing.T, f keyFiles, args ...string) *proxy {
	t.Helper()
	p := startProxy(t, append(f.args(), args...)...)
	require.NotNil(t, p.addrs.reload, "no reload hook under TLS")
	p.url = "https://" + p.addrs.proxy
	return p
}

// httpsTransport returns a transport that trusts ca's certificates only,
// speaking HTTP/2 if h2, else HTTP/1.1.
func httpsTransport(t *testing.T, ca *testCA, h2 bool) *http.Transport {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool}, Protocols: new(http.Protocols)}
	tr.Protocols.SetHTTP1(!h2)
	tr.Protocols.SetHTTP2(h2)
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

// jarClient returns a client with a cookie jar over tr.
func jarClient(t *testing.T, tr http.RoundTripper) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &http.Client{Jar: jar, Transport: tr, Timeout: 5 * time.Second}
}

// protoResponse is what the tests read of a response over TLS or HTTP/2.
type protoResponse struct {
	response
	protoMajor int
	tls        *tls.ConnectionState // nil over cleartext
	reused     bool                 // sent on a connection used before
}

// doProto sends req with c and returns the response, its body read.
func doProto(t *testing.T, c *http.Client, req *http.Request) protoResponse {
	t.Helper()
	var reused bool
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused },
	}))
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var body bytes.Buffer
	_, err = body.ReadFrom(resp.Body)
	require.NoError(t, err)
	return protoResponse{
		response:   response{resp.StatusCode, resp.Header.Get("X-Served-By"), body.String(), resp.Cookies(), resp.Header},
		protoMajor: resp.ProtoMajor,
		tls:        resp.TLS,
		reused:     reused,
	}
}

// sticksTo sends n requests for /whoami with c, checks that each is
// served over HTTP/protoMajor by the same backend, and returns the first
// response.
func sticksTo(t *testing.T, c *http.Client, base string, protoMajor, n int) protoResponse {
	t.Helper()
	var first protoResponse
	for i := range n {
		r := doProto(t, c, get(t, base+"/whoami"))
		require.Equal(t, http.StatusOK, r.status, "request %d", i+1)
		require.Equal(t, protoMajor, r.protoMajor, "request %d", i+1)
		if i == 0 {
			first = r
			require.NotEmpty(t, r.server)
			continue
		}
		assert.Equal(t, first.server, r.server, "request %d moved", i+1)
	}
	return first
}

// servedSerial returns the serial number of the certificate a response
// came under.
func servedSerial(t *testing.T, r protoResponse) int64 {
	t.Helper()
	require.NotNil(t, r.tls)
	require.NotEmpty(t, r.tls.PeerCertificates)
	return r.tls.PeerCertificates[0].SerialNumber.Int64()
}

func TestEndToEndTLS(t *testing.T) {
	ca := newTestCA(t)
	files := newKeyFiles(t)
	files.issue(t, ca, 100)
	// Round robin places every request without a cookie on the next
	// backend: only the cookie keeps a client on its own.
	p := startTLSProxy(t, files, "-key", testKey, "-backends", demoBackends(t, "one", "two"), "-picker", "roundrobin")

	for _, tt := range []struct {
		name       string
		h2         bool
		protoMajor int
	}{
		{"HTTP/2", true, 2},
		{"HTTP/1.1", false, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := jarClient(t, httpsTransport(t, ca, tt.h2))
			first := sticksTo(t, c, p.url, tt.protoMajor, 6)
			bound := findCookie(first.cookies, "affinity")
			require.NotNil(t, bound, "no affinity cookie")
			assert.True(t, bound.Secure, "the affinity cookie is not Secure over HTTPS")
			assert.Equal(t, int64(100), servedSerial(t, first))
			assert.Len(t, first.tls.PeerCertificates, 2, "the chain of -tls-cert is served whole")
			assert.GreaterOrEqual(t, first.tls.Version, uint16(tls.VersionTLS12))
		})
	}

	t.Run("TLS 1.1 refused", func(t *testing.T) {
		conn, err := tls.Dial("tcp", p.addrs.proxy, &tls.Config{RootCAs: ca.pool, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11})
		if err == nil {
			conn.Close()
		}
		require.Error(t, err)
		assert.Contains(t, err.Error(), "protocol version not supported", "refused by the proxy")
	})
	t.Run("plain HTTP on the HTTPS port", func(t *testing.T) {
		r := do(t, newPlainClient(t), get(t, "http://"+p.addrs.proxy+"/whoami"))
		assert.Equal(t, http.StatusBadRequest, r.status)
		assert.Empty(t, r.server, "a cleartext request reached a backend")
	})

	out := p.stdout.String()
	assert.Contains(t, out, "stickyproxy listening on "+p.url+"\n")
	assert.Contains(t, out, "curl -c jar -b jar "+p.url+"/")
	assert.NotContains(t, out, "http://"+p.addrs.proxy)
	assert.Contains(t, out, "--cacert")
}

// recorder is a backend that records the requests it is sent.
type recorder struct {
	mu   sync.Mutex
	reqs []*http.Request // their headers and Host; bodies unread
	url  string
}

// newRecorder starts a recording backend.
func newRecorder(t *testing.T) *recorder {
	t.Helper()
	rec := &recorder{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.mu.Lock()
		rec.reqs = append(rec.reqs, r.Clone(context.Background()))
		rec.mu.Unlock()
		w.Header().Set("X-Served-By", "recorder")
		fmt.Fprintln(w, "ok")
	}))
	t.Cleanup(srv.Close)
	rec.url = srv.URL
	return rec
}

// last returns the last request rec was sent.
func (rec *recorder) last(t *testing.T) *http.Request {
	t.Helper()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	require.NotEmpty(t, rec.reqs, "the backend was sent nothing")
	return rec.reqs[len(rec.reqs)-1]
}

func TestEndToEndTLSForwardedHeaders(t *testing.T) {
	ca := newTestCA(t)
	files := newKeyFiles(t)
	files.issue(t, ca, 7)
	rec := newRecorder(t)
	p := startTLSProxy(t, files, "-key", testKey, "-backends", "rec="+rec.url)

	for _, tt := range []struct {
		name string
		h2   bool
	}{{"HTTP/2", true}, {"HTTP/1.1", false}} {
		t.Run(tt.name, func(t *testing.T) {
			req := get(t, p.url+"/whoami")
			req.Host = "shop.example"
			r := doProto(t, jarClient(t, httpsTransport(t, ca, tt.h2)), req)
			require.Equal(t, http.StatusOK, r.status)
			got := rec.last(t)
			assert.Equal(t, "https", got.Header.Get("X-Forwarded-Proto"))
			assert.Equal(t, "shop.example", got.Host, "the client's Host is not kept")
		})
	}
}

func TestEndToEndTLSReload(t *testing.T) {
	ca := newTestCA(t)
	files := newKeyFiles(t)
	files.issue(t, ca, 1)
	p := startTLSProxy(t, files, "-key", testKey, "-backends", demoBackends(t, "one", "two"))

	// An HTTP/1.1 client keeps its connection open across the reloads.
	old := jarClient(t, httpsTransport(t, ca, false))
	r := doProto(t, old, get(t, p.url+"/whoami"))
	require.Equal(t, http.StatusOK, r.status)
	require.Equal(t, int64(1), servedSerial(t, r))
	server := r.server

	// newConn returns the serial served to a new connection, over HTTP/2.
	newConn := func() int64 {
		r := doProto(t, &http.Client{Transport: httpsTransport(t, ca, true), Timeout: 5 * time.Second}, get(t, p.url+"/whoami"))
		require.Equal(t, http.StatusOK, r.status)
		require.False(t, r.reused)
		return servedSerial(t, r)
	}
	// oldConnWorks checks that old's connection still serves it, under
	// the first certificate, on its backend.
	oldConnWorks := func() {
		r := doProto(t, old, get(t, p.url+"/whoami"))
		require.Equal(t, http.StatusOK, r.status)
		assert.True(t, r.reused, "the keep-alive connection was dropped")
		assert.Equal(t, int64(1), servedSerial(t, r))
		assert.Equal(t, server, r.server, "the client moved")
	}

	files.issue(t, ca, 2)
	require.NoError(t, p.addrs.reload())
	assert.Equal(t, int64(2), newConn(), "the reloaded certificate is not served")
	oldConnWorks()
	assert.Contains(t, p.stderr.String(), "TLS certificate reloaded")
	assert.Contains(t, p.stderr.String(), "serial=2")

	other := newTestCA(t)
	otherChain, otherKey := other.issue(t, 3)
	chain2, _ := ca.issue(t, 4)
	for _, tt := range []struct {
		name         string
		chain, key   []byte
		err, flagged string
	}{
		{"key of another certificate", chain2, otherKey, "private key does not match public key", "-tls-key"},
		{"garbage certificate", []byte("not PEM"), otherKey, "no PEM certificate", "-tls-cert"},
		{"empty key file", otherChain, nil, "failed to find any PEM data in key input", "-tls-key"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			files.write(t, tt.chain, tt.key)
			err := p.addrs.reload()
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.err)
			assert.Contains(t, err.Error(), tt.flagged)
			assert.Contains(t, p.stderr.String(), "level=ERROR msg=\"TLS certificate not reloaded; still serving the previous one\"")
			assert.Equal(t, int64(2), newConn(), "the bad pair replaced the good one")
			oldConnWorks()
		})
	}

	// Every reload left every connection and every request alone.
	require.Equal(t, 0, p.stop(t), "stderr:\n%s", p.stderr)
}

func TestEndToEndTLSReloadOnSIGHUP(t *testing.T) {
	ca := newTestCA(t)
	files := newKeyFiles(t)
	files.issue(t, ca, 10)
	p := startTLSProxy(t, files, "-key", testKey, "-backends", demoBackends(t, "one"))

	files.issue(t, ca, 11)
	// The proxy catches SIGHUP while it runs, so the signal cannot kill
	// the test process.
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGHUP))
	require.Eventually(t, func() bool {
		return strings.Contains(p.stderr.String(), "TLS certificate reloaded")
	}, 10*time.Second, 10*time.Millisecond, "SIGHUP did not reload")
	r := doProto(t, &http.Client{Transport: httpsTransport(t, ca, true), Timeout: 5 * time.Second}, get(t, p.url+"/whoami"))
	require.Equal(t, http.StatusOK, r.status)
	assert.Equal(t, int64(11), servedSerial(t, r))
}

// h2cTransport returns a transport that speaks HTTP/2 in clear text with
// prior knowledge, and nothing else.
func h2cTransport(t *testing.T) *http.Transport {
	t.Helper()
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	t.Cleanup(tr.CloseIdleConnections)
	return tr
}

func TestEndToEndH2C(t *testing.T) {
	backends := demoBackends(t, "one", "two")
	p := startProxy(t, "-h2c", "-key", testKey, "-backends", backends, "-picker", "roundrobin")

	t.Run("prior knowledge sticks by cookie", func(t *testing.T) {
		first := sticksTo(t, jarClient(t, h2cTransport(t)), p.url, 2, 6)
		bound := findCookie(first.cookies, "affinity")
		require.NotNil(t, bound, "no affinity cookie")
		assert.False(t, bound.Secure, "Secure over clear text: the browser would never send it back")
	})
	t.Run("HTTP/1.1 beside it", func(t *testing.T) {
		sticksTo(t, jarClient(t, &http.Transport{}), p.url, 1, 3)
	})
	t.Run("without -h2c, no HTTP/2", func(t *testing.T) {
		plain := startProxy(t, "-key", testKey, "-backends", backends)
		_, err := (&http.Client{Transport: h2cTransport(t), Timeout: 5 * time.Second}).Get(plain.url + "/whoami")
		assert.Error(t, err)
	})
	assert.Contains(t, p.stdout.String(), "curl --http2-prior-knowledge "+p.url+"/")
}

func TestEndToEndH2CUpgradeNotForwarded(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
	}{{"-h2c", []string{"-h2c"}}, {"without -h2c", nil}} {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecorder(t)
			p := startProxy(t, append([]string{"-key", testKey, "-backends", "rec=" + rec.url}, tt.args...)...)

			// The HTTP/1.1 upgrade to h2c (RFC 7540, 3.2), which the proxy
			// does not take: it answers over HTTP/1.1.
			conn, err := net.Dial("tcp", p.addrs.proxy)
			require.NoError(t, err)
			t.Cleanup(func() { conn.Close() })
			require.NoError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
			_, err = io.WriteString(conn, "GET /whoami HTTP/1.1\r\nHost: "+p.addrs.proxy+"\r\n"+
				"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n")
			require.NoError(t, err)
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, 1, resp.ProtoMajor)

			got := rec.last(t)
			assert.Empty(t, got.Header.Values("HTTP2-Settings"))
			assert.Empty(t, got.Header.Values("Upgrade"), "the backend was asked to upgrade to h2c")
		})
	}
}

func TestRunTLSFlags(t *testing.T) {
	ca := newTestCA(t)
	good := newKeyFiles(t)
	good.issue(t, ca, 1)
	chain, _ := ca.issue(t, 2)
	_, otherKey := ca.issue(t, 3)
	mismatched := newKeyFiles(t)
	mismatched.write(t, chain, otherKey)
	garbage := newKeyFiles(t)
	garbage.write(t, []byte("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n"), otherKey)
	missing := filepath.Join(t.TempDir(), "missing.pem")

	tests := []struct {
		name   string
		args   []string
		stderr string // contains
	}{
		{"-tls-cert alone", []string{"-tls-cert", good.cert}, "-tls-cert needs -tls-key FILE"},
		{"-tls-key alone", []string{"-tls-key", good.key}, "-tls-key needs -tls-cert FILE"},
		{"empty -tls-cert", []string{"-tls-cert", "", "-tls-key", good.key}, `invalid value "" for -tls-cert: empty`},
		{"empty -tls-key", []string{"-tls-cert", good.cert, "-tls-key", ""}, `invalid value "" for -tls-key: empty`},
		{"-h2c with -tls-cert", append(good.args(), "-h2c"), "-h2c does not apply with -tls-cert"},
		{"missing certificate file", []string{"-tls-cert", missing, "-tls-key", good.key}, fmt.Sprintf("invalid value %q for -tls-cert: open", missing)},
		{"missing key file", []string{"-tls-cert", good.cert, "-tls-key", missing}, fmt.Sprintf("invalid value %q for -tls-key: open", missing)},
		{"key file as the certificate", []string{"-tls-cert", good.key, "-tls-key", good.key}, fmt.Sprintf("invalid value %q for -tls-cert: no PEM certificate", good.key)},
		{"certificate that does not parse", garbage.args(), fmt.Sprintf("invalid value %q for -tls-cert: certificate 1: x509:", garbage.cert)},
		{"key of another certificate", mismatched.args(), fmt.Sprintf("invalid value %q for -tls-key: tls: private key does not match public key", mismatched.key)},
		{"certificate as the key", []string{"-tls-cert", good.cert, "-tls-key", good.cert}, fmt.Sprintf("invalid value %q for -tls-key:", good.cert)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			status := run(ctx, tt.args, &stdout, &stderr, func(listening) { t.Error("proxy started") })
			assert.Equal(t, 2, status)
			assert.Contains(t, stderr.String(), tt.stderr)
			assert.Equal(t, 1, strings.Count(stderr.String(), "\n"), "one line: %q", stderr.String())
		})
	}
}

func TestParseFlagsTLS(t *testing.T) {
	ca := newTestCA(t)
	good := newKeyFiles(t)
	good.issue(t, ca, 42)
	chain, key := ca.issue(t, 43)
	combined := filepath.Join(t.TempDir(), "combined.pem")
	require.NoError(t, os.WriteFile(combined, append(chain, key...), 0o600))
	expired, early := newKeyFiles(t), newKeyFiles(t)
	chain, key = ca.issueFor(t, 44, time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour))
	expired.write(t, chain, key)
	chain, key = ca.issueFor(t, 45, time.Now().Add(time.Hour), time.Now().Add(2*time.Hour))
	early.write(t, chain, key)

	tests := []struct {
		name    string
		args    []string
		serial  int64
		warning string // "": none
	}{
		{"a chain and its key", good.args(), 42, ""},
		{"one file holding both", []string{"-tls-cert", combined, "-tls-key", combined}, 43, ""},
		{"expired: served, with a warning", expired.args(), 44, "the certificate expired at"},
		{"not yet valid: served, with a warning", early.args(), 45, "the certificate is not valid before"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseFlags(append([]string{"-key", testKey}, tt.args...), nil)
			require.NoError(t, err)
			require.NotNil(t, cfg.cert)
			assert.Equal(t, tt.serial, cfg.cert.Leaf.SerialNumber.Int64())
			assert.Len(t, cfg.cert.Certificate, 2, "the chain is kept")
			if tt.warning == "" {
				assert.Empty(t, cfg.warnings)
				return
			}
			require.Len(t, cfg.warnings, 1)
			assert.Contains(t, cfg.warnings[0], "-tls-cert "+tt.args[1]+": "+tt.warning)
		})
	}
}

// TestServerLogLevels checks that the servers log their own errors at
// Warn, but failed TLS handshakes at Debug.
func TestServerLogLevels(t *testing.T) {
	var buf bytes.Buffer
	l := log.New(serverLog{slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))}, "", 0)
	l.Print("http: TLS handshake error from 127.0.0.1:5555: EOF")
	l.Print("http: Accept error: too many open files")
	assert.Contains(t, buf.String(), `level=DEBUG msg="http: TLS handshake error from 127.0.0.1:5555: EOF"`)
	assert.Contains(t, buf.String(), `level=WARN msg="http: Accept error: too many open files"`)
}
