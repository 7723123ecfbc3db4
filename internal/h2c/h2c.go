// Package h2c carries requests for h2c:// URLs: HTTP/2 without TLS, with
// prior knowledge (RFC 9113, section 3.3), as gRPC servers speak it. It
// serves the backend set's health checks and the sticky handler's
// transport, so both reach an h2c backend the same way.
package h2c

import (
	"net/http"
	"sync"
)

// Scheme is the URL scheme of a backend that speaks HTTP/2 without TLS.
const Scheme = "h2c"

// Register registers Scheme on t: t then sends a request for an h2c:// URL
// as the same request for http://, over HTTP/2 with prior knowledge,
// through a transport of its own. That transport is a copy of t as it is
// when the first such request is sent (its dialer, time limits and pool
// sizes), that speaks only unencrypted HTTP/2 and uses no HTTP proxy; later
// changes to t do not reach it, and t.CloseIdleConnections does not close
// its idle connections, which close after its IdleConnTimeout. Register
// panics if Scheme is registered on t already.
//
// The copy has no Proxy, whatever t's: HTTP/2 with prior knowledge cannot
// go through an HTTP proxy, and a Proxy that counts the connections a
// request is sent on, to stop net/http's HTTP/1 replays, would fail the
// requests net/http carries on another connection when the one it picked
// had no room for them or had closed before they were sent. net/http's
// HTTP/2 code sends a request again on its own, with no Proxy to ask,
// when the server refused its stream, sent GOAWAY below its ID, or reset
// it with PROTOCOL_ERROR; only the last may follow a request the server
// processed.
func Register(t *http.Transport) {
	t.RegisterProtocol(Scheme, &roundTripper{outer: t})
}

// roundTripper sends h2c:// requests through a copy of outer.
type roundTripper struct {
	outer *http.Transport
	once  sync.Once
	inner *http.Transport
}

// RoundTrip sends req as an http:// request, and returns its response,
// whose Request is req. It leaves req as it is. HTTP/2 has no Upgrade
// (RFC 9113, section 8.2.2), and net/http refuses to send a request that
// asks for one: such a request (a WebSocket's handshake) goes without its
// Upgrade and Connection headers, as if the backend declined the upgrade,
// and gets the backend's answer to it, rather than an error that would
// count against a backend that did nothing wrong.
func (rt *roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	rt.once.Do(func() {
		t := rt.outer.Clone()
		t.Proxy = nil
		t.Protocols = new(http.Protocols)
		t.Protocols.SetUnencryptedHTTP2(true)
		rt.inner = t
	})
	out := *req // a shallow copy, as Request.WithContext makes
	u := *req.URL
	u.Scheme = "http"
	out.URL = &u
	if _, ok := req.Header["Upgrade"]; ok {
		out.Header = req.Header.Clone()
		delete(out.Header, "Upgrade")
		delete(out.Header, "Connection")
	}
	resp, err := rt.inner.RoundTrip(&out)
	if resp != nil {
		resp.Request = req
	}
	return resp, err
}
