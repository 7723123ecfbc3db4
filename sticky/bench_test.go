package sticky_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/metrics"
	"github.com/affinitylb/affinity/sticky"
)

// discardWriter is a ResponseWriter that throws the response away, so the
// benchmarks measure the proxy rather than a recorder. It takes deadlines,
// as a server's ResponseWriter does, so that the write timeout is paid for.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header              { return w.h }
func (w *discardWriter) Write(p []byte) (int, error)      { return len(p), nil }
func (w *discardWriter) WriteHeader(int)                  {}
func (w *discardWriter) SetReadDeadline(time.Time) error  { return nil }
func (w *discardWriter) SetWriteDeadline(time.Time) error { return nil }

// testPool is the buffer pool the best-configured bare ReverseProxy has.
type testPool struct{ p sync.Pool }

func (tp *testPool) Get() []byte {
	if b, ok := tp.p.Get().(*[]byte); ok {
		return *b
	}
	return make([]byte, 32<<10)
}

func (tp *testPool) Put(b []byte) { tp.p.Put(&b) }

// BenchmarkRequestPath compares the handler's whole request path with bare
// httputil.ReverseProxy over the same transport, with and without a buffer
// pool, against an in-process
// backend on 127.0.0.1 answering 128 bytes.
func BenchmarkRequestPath(b *testing.B) {
	payload := strings.Repeat("x", 128)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, payload)
	}))
	b.Cleanup(srv.Close)
	target, err := url.Parse(srv.URL)
	require.NoError(b, err)

	set, err := backend.NewSet([]backend.Config{{ID: "app1", URL: srv.URL}})
	require.NoError(b, err)
	pol := newCookie(b)
	transport := sticky.DefaultTransport()
	h, err := sticky.New(set, pol, sticky.WithTransport(transport))
	require.NoError(b, err)
	// The same handler with metrics on, as examples/stickyproxy runs.
	recorder, err := metrics.New(set)
	require.NoError(b, err)
	hm, err := sticky.New(set, pol, sticky.WithTransport(transport), sticky.WithObserver(recorder))
	require.NoError(b, err)

	rewrite := func(pr *httputil.ProxyRequest) { pr.SetURL(target); pr.SetXForwarded() }
	bare := &httputil.ReverseProxy{Rewrite: rewrite, Transport: transport}
	barePooled := &httputil.ReverseProxy{Rewrite: rewrite, Transport: transport, BufferPool: &testPool{}}

	// A valid cookie, from one pass through the handler. The bare proxies
	// get it too, so that every run forwards the same request.
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	ck := balancerCookie(rec.Header(), pol.Name())
	require.NotNil(b, ck)

	for _, bc := range []struct {
		name    string
		handler http.Handler
		cookie  *http.Cookie
	}{
		{"bare-reverseproxy", bare, ck},
		{"bare-reverseproxy-bufferpool", barePooled, ck},
		{"sticky-bound", h, ck},
		{"sticky-new-session", h, nil},
		{"sticky-bound-metrics", hm, ck},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				w := &discardWriter{h: http.Header{}}
				for pb.Next() {
					req := httptest.NewRequest(http.MethodGet, "/", nil)
					if bc.cookie != nil {
						req.AddCookie(bc.cookie)
					}
					clear(w.h)
					bc.handler.ServeHTTP(w, req)
				}
			})
		})
	}
}

// BenchmarkHandlerAlone measures the handler's own work per request,
// without sockets: the transport answers at once from memory. In
// BenchmarkRequestPath the backend runs in the same process, so its
// allocations (one per header line it parses) count too.
func BenchmarkHandlerAlone(b *testing.B) {
	set, err := backend.NewSet([]backend.Config{{ID: "app1", URL: "http://127.0.0.1:1"}})
	require.NoError(b, err)
	pol := newCookie(b)
	h, err := sticky.New(set, pol, sticky.WithTransport(answer{}))
	require.NoError(b, err)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	ck := balancerCookie(rec.Header(), pol.Name())
	require.NotNil(b, ck)

	for _, bc := range []struct {
		name   string
		cookie *http.Cookie
	}{
		{"bound", ck},
		{"new-session", nil},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				w := &discardWriter{h: http.Header{}}
				for pb.Next() {
					req := httptest.NewRequest(http.MethodGet, "/", nil)
					if bc.cookie != nil {
						req.AddCookie(bc.cookie)
					}
					clear(w.h)
					h.ServeHTTP(w, req)
				}
			})
		})
	}
}
