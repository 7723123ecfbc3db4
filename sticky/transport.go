package sticky

import (
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/affinitylb/affinity/internal/h2c"
)

// DefaultTransport returns the transport a [Handler] uses unless
// [WithTransport] gives another. Unlike [http.DefaultTransport] it keeps up
// to 256 idle connections per backend (Go's default keeps 2, so a busy
// proxy opens and closes a connection for most requests), never routes
// backend traffic through an HTTP proxy from the environment, speaks
// HTTP/1.1 to backends, https:// ones included (as nginx and HAProxy do
// by default), and never sends a request a second time on its own: an
// http.Transport otherwise sends an idempotent request again when a
// reused connection fails under it, as often as its pool has idle
// connections to that backend, and its HTTP/2 resends some requests a
// backend may have processed. Its Proxy field is what stops the first, for
// the handler's requests, and must be kept; the handler decides what is
// sent again, and where (see [WithRetries]). Its time limits: 5 seconds to
// connect, 10 for a TLS handshake, 60 for a backend's response header once
// the request is sent (as nginx's proxy_read_timeout; a streamed body may
// take longer; the client then gets 504), 90 before an idle connection is
// closed. Each call returns a new transport.
//
// It reaches backends at http:// and https:// URLs, and at h2c:// ones
// (HTTP/2 without TLS, as gRPC servers speak it: the one case it speaks
// HTTP/2) through a copy of itself, made when the first request for an h2c
// backend is sent, that speaks only that and has no Proxy; changes to the
// transport's fields after then do not reach the copy, and
// CloseIdleConnections leaves the copy's idle connections, which close
// after the idle timeout. Over HTTP/2, net/http resends a request without
// asking a Proxy: when the backend refused its stream or sent GOAWAY below
// its ID, so never processed it, but also when it reset the stream with
// PROTOCOL_ERROR, after which it may have; such a request to an h2c
// backend may be executed more than twice. To trust certificate
// authorities of its own for https backends, set TLSClientConfig's RootCAs
// before the first request.
func DefaultTransport() *http.Transport {
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	t := &http.Transport{
		Proxy:                 stopReplays,
		DialContext:           dialer.DialContext,
		MaxIdleConns:          4096,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
		ExpectContinueTimeout: 1 * time.Second,
	}
	h2c.Register(t)
	return t
}

// handshakeTimeout is the text of net/http's error for a TLS handshake
// that took longer than the transport's TLSHandshakeTimeout; its type is
// unexported.
const handshakeTimeout = "net/http: TLS handshake timeout"

// handshakeAlerts are the TLS alerts a server sends to refuse a
// connection in the handshake, before any request is read: no shared
// version or cipher suite, a name it does not serve, a client certificate
// it refuses or wanted (in TLS 1.3 that one comes after the client's part
// of the handshake, still before the server reads any request).
var handshakeAlerts = func() map[string]bool {
	m := map[string]bool{}
	for _, a := range []tls.AlertError{
		40,  // handshake_failure
		42,  // bad_certificate
		43,  // unsupported_certificate
		44,  // certificate_revoked
		45,  // certificate_expired
		46,  // certificate_unknown
		47,  // illegal_parameter
		48,  // unknown_ca
		49,  // access_denied
		70,  // protocol_version
		71,  // insufficient_security
		86,  // inappropriate_fallback
		109, // missing_extension
		110, // unsupported_extension
		112, // unrecognized_name
		116, // certificate_required
		120, // no_application_protocol
	} {
		m[a.Error()] = true
	}
	return m
}()

// unreached reports whether err, a request's error from the transport,
// says the request never reached its backend: no connection could be
// made (the dial failed), or its TLS handshake failed.
func unreached(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial" || handshakeFailed(err)
}

// handshakeFailed reports whether err, the error of a request to a
// backend, says the TLS handshake with it failed: its certificate could
// not be verified (an unknown authority, another name, expired), it does
// not speak TLS, it refused the connection with a handshake alert, or the
// handshake timed out. A request whose handshake failed never reached the
// backend. A handshake error that says none of these (one the client
// raised from a server hello it did not accept, say) is not told apart
// from an error after the handshake, and is not reported.
func handshakeFailed(err error) bool {
	var verify *tls.CertificateVerificationError
	var ech *tls.ECHRejectionError
	if errors.As(err, &verify) || errors.As(err, &ech) {
		return true
	}
	var rh tls.RecordHeaderError
	if errors.As(err, &rh) && rh.Conn != nil {
		return true // the backend's first record: no handshake was made
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "remote error" && op.Err != nil && handshakeAlerts[op.Err.Error()] {
		return true
	}
	for e := err; e != nil; e = errors.Unwrap(e) {
		if e.Error() == handshakeTimeout {
			return true
		}
	}
	return false
}

// copyBufferSize is httputil.ReverseProxy's own copy buffer size.
const copyBufferSize = 32 << 10

// bufferPool recycles the buffers ReverseProxy copies response bodies
// through; without one it allocates 32 KiB per response.
type bufferPool struct{ pool sync.Pool }

func (p *bufferPool) Get() []byte {
	if b, ok := p.pool.Get().(*[]byte); ok {
		return *b
	}
	return make([]byte, copyBufferSize)
}

func (p *bufferPool) Put(b []byte) {
	if cap(b) == copyBufferSize {
		b = b[:copyBufferSize]
		p.pool.Put(&b)
	}
}
