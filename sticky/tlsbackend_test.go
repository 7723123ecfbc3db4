package sticky_test

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/event"
	"github.com/affinitylb/affinity/sticky"
)

// tlsFault is an https:// backend whose TLS handshake fails, and the
// transport that fails to make it.
type tlsFault struct {
	name  string
	start func(t *testing.T) (url string, tr *http.Transport)
}

// tlsServer starts an https backend configured by cfg and returns its URL
// and a transport that trusts its certificate.
func tlsServer(t *testing.T, cfg func(*tls.Config)) (string, *http.Transport) {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Served-By", "tls")
	}))
	srv.Config.ErrorLog = quiet // the handshake errors the test makes
	srv.TLS = &tls.Config{}
	cfg(srv.TLS)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	tr := sticky.DefaultTransport()
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	tr.TLSClientConfig = &tls.Config{RootCAs: roots}
	return srv.URL, tr
}

// quiet is the error log of servers whose handshakes fail on purpose.
var quiet = log.New(io.Discard, "", 0)

var tlsFaults = []tlsFault{
	{"certificate of an unknown authority", func(t *testing.T) (string, *http.Transport) {
		u, _ := tlsServer(t, func(*tls.Config) {})
		return u, sticky.DefaultTransport() // the system roots only
	}},
	{"certificate for another name", func(t *testing.T) (string, *http.Transport) {
		u, tr := tlsServer(t, func(*tls.Config) {})
		return strings.Replace(u, "127.0.0.1", "localhost", 1), tr // the test certificate names 127.0.0.1 and example.com
	}},
	{"not TLS", func(t *testing.T) (string, *http.Transport) {
		srv := httptest.NewServer(http.NotFoundHandler())
		t.Cleanup(srv.Close)
		return "https://" + srv.Listener.Addr().String(), sticky.DefaultTransport()
	}},
	// In TLS 1.3 a server refuses a client's certificate after the client
	// has finished its part of the handshake and sent its request, whose
	// body is then gone: not a case for this test.
	{"client certificate required, TLS 1.2", func(t *testing.T) (string, *http.Transport) {
		return tlsServer(t, func(c *tls.Config) {
			c.ClientAuth, c.MaxVersion = tls.RequireAnyClientCert, tls.VersionTLS12
		})
	}},
	{"handshake timeout", func(t *testing.T) (string, *http.Transport) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		var mu sync.Mutex
		var conns []net.Conn
		go func() { // accepts, and says nothing
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
			}
		}()
		t.Cleanup(func() {
			ln.Close()
			mu.Lock()
			defer mu.Unlock()
			for _, c := range conns {
				c.Close()
			}
		})
		tr := sticky.DefaultTransport()
		tr.TLSHandshakeTimeout = 50 * time.Millisecond
		return "https://" + ln.Addr().String(), tr
	}},
}

// failures counts the transport failures reported for each backend.
type failures struct {
	mu sync.Mutex
	n  map[string]int
}

func (f *failures) Observe(e event.Event) {
	if e.Kind == event.Failure && e.Reason == event.TransportFailure {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.n[e.Backend]++
	}
}

func (f *failures) of(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n[id]
}

// TestTLSHandshakeFailureIsRetriedElsewhere checks that a request whose
// TLS handshake with its backend fails is sent to another backend, as one
// whose connection was refused is, even a POST with a body: it never
// reached the first. The failure counts against that backend, and alone
// it is a 502 saying the backend could not be reached.
func TestTLSHandshakeFailureIsRetriedElsewhere(t *testing.T) {
	for _, tf := range tlsFaults {
		t.Run(tf.name, func(t *testing.T) {
			badURL, tr := tf.start(t)
			good := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				w.Header().Set("X-Served-By", "good")
				w.Write(body)
			}))
			t.Cleanup(good.Close)

			t.Run("retried", func(t *testing.T) {
				set, err := backend.NewSet([]backend.Config{{ID: "bad", URL: badURL}, {ID: "good", URL: good.URL}},
					backend.WithEjection(backend.Ejection{})) // no ejection: requests keep meeting the bad one
				require.NoError(t, err)
				f := &failures{n: map[string]int{}}
				h, err := sticky.New(set, newCookie(t), sticky.WithTransport(tr), sticky.WithObserver(f))
				require.NoError(t, err)
				base := front(t, h)
				for range 4 { // least connections alternates: half go to bad first
					resp, err := http.Post(base+"/", "text/plain", strings.NewReader("payload"))
					require.NoError(t, err)
					body, err := io.ReadAll(resp.Body)
					require.NoError(t, err)
					resp.Body.Close()
					assert.Equal(t, http.StatusOK, resp.StatusCode, string(body))
					assert.Equal(t, "good", resp.Header.Get("X-Served-By"))
					assert.Equal(t, "payload", string(body), "the body, sent whole to the second backend")
				}
				assert.Equal(t, 2, f.of("bad"), "failures counted against the bad backend")
				assert.Zero(t, f.of("good"), "failures counted against the good backend")
			})
			t.Run("alone", func(t *testing.T) {
				set, err := backend.NewSet([]backend.Config{{ID: "bad", URL: badURL}}, backend.WithEjection(backend.Ejection{}))
				require.NoError(t, err)
				h, err := sticky.New(set, newCookie(t), sticky.WithTransport(tr))
				require.NoError(t, err)
				resp, err := http.Get(front(t, h) + "/")
				require.NoError(t, err)
				body, err := io.ReadAll(resp.Body)
				require.NoError(t, err)
				resp.Body.Close()
				assert.Equal(t, http.StatusBadGateway, resp.StatusCode)
				assert.Equal(t, "502 bad gateway: the backend could not be reached\n", string(body))
			})
		})
	}
}
