package sticky

import (
	"net"
	"net/http"
	"sync"
	"time"
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
func DefaultTransport() *http.Transport {
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                 stopReplays,
		DialContext:           dialer.DialContext,
		MaxIdleConns:          4096,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
		ExpectContinueTimeout: 1 * time.Second,
	}
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
