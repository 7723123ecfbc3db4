package main

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/examples/internal/demotest"
)

// peerCertificate fetches the certificate the program serves, without
// verifying it: the test verifies it itself.
func peerCertificate(t *testing.T, rawURL string) *x509.Certificate {
	t.Helper()
	u, err := url.Parse(rawURL)
	require.NoError(t, err)
	d := &tls.Dialer{Config: &tls.Config{InsecureSkipVerify: true}}
	conn, err := d.DialContext(t.Context(), "tcp", u.Host)
	require.NoError(t, err)
	defer conn.Close()
	return conn.(*tls.Conn).ConnectionState().PeerCertificates[0]
}

// The program serves HTTP/2 over TLS with the certificate it printed, and
// binds clients with a Secure cookie.
func TestHTTPS(t *testing.T) {
	p := demotest.Start(t, run)

	// The certificate is the one whose fingerprint was printed, is valid
	// now for the names it claims, and expires within a day.
	cert := peerCertificate(t, p.URL)
	assert.Contains(t, p.Stdout(), "SHA-256 fingerprint: "+fingerprint(cert)+"\n")
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	for _, name := range []string{"localhost", "127.0.0.1", "::1"} {
		_, err := cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: name})
		assert.NoError(t, err, name)
	}
	assert.WithinDuration(t, time.Now().Add(24*time.Hour), cert.NotAfter, time.Minute)

	// From here on the client trusts that certificate, and it alone.
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	c := &http.Client{
		Jar: jar,
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: roots},
			ForceAttemptHTTP2: true, // a custom TLS config turns HTTP/2 off unless asked
		},
	}
	t.Cleanup(c.CloseIdleConnections)

	resp, _ := demotest.Get(t, c, p.URL+"/")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, 2, resp.ProtoMajor, "not HTTP/2: %s", resp.Proto)
	server := resp.Header.Get("X-Served-By")
	cookie := demotest.Cookie(resp, "affinity")
	require.NotNil(t, cookie, "no sticky cookie")
	assert.True(t, cookie.Secure, "the cookie is not Secure")
	assert.True(t, cookie.HttpOnly, "the cookie is not HttpOnly")
	assert.Equal(t, http.SameSiteLaxMode, cookie.SameSite)

	resp, err = c.PostForm(p.URL+"/login", url.Values{"name": {"alice"}})
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	for range 10 {
		resp, body := demotest.Get(t, c, p.URL+"/whoami")
		assert.Equal(t, 2, resp.ProtoMajor)
		assert.Equal(t, "server="+server+" user=alice", strings.TrimSpace(body))
	}
}
