package main

import (
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/cookie"
	"github.com/affinitylb/affinity/sticky"
)

// newBaseline returns the best bare httputil.ReverseProxy: Rewrite with
// SetURL and SetXForwarded, the sticky package's default transport (256
// idle connections per backend) and a pool of copy buffers, spreading
// requests over backends in turn by an atomic counter.
func newBaseline(backends []string) (http.Handler, error) {
	targets := make([]*url.URL, len(backends))
	for i, b := range backends {
		u, err := url.Parse(b)
		if err != nil {
			return nil, fmt.Errorf("backend %q: %w", b, err)
		}
		targets[i] = u
	}
	var next atomic.Uint64
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(targets[next.Add(1)%uint64(len(targets))])
			pr.SetXForwarded()
		},
		Transport:  sticky.DefaultTransport(),
		BufferPool: &bufferPool{},
		ErrorLog:   newServer(nil).ErrorLog,
	}, nil
}

// newSticky returns sticky.New's handler with its defaults over backends,
// app1 to appN, binding clients with a cookie signed with key.
func newSticky(backends []string, key []byte) (http.Handler, error) {
	cfgs := make([]backend.Config, len(backends))
	for i, b := range backends {
		cfgs[i] = backend.Config{ID: backendName(i), URL: b}
	}
	set, err := backend.NewSet(cfgs)
	if err != nil {
		return nil, err
	}
	pol, err := cookie.New([][]byte{key})
	if err != nil {
		return nil, err
	}
	return sticky.New(set, pol)
}

// cookieName is the sticky cookie's name: cookie.New's default.
const cookieName = "affinity"

// copyBufferSize is httputil.ReverseProxy's own copy buffer size.
const copyBufferSize = 32 << 10

// bufferPool recycles the buffers ReverseProxy copies response bodies
// through, as sticky.Handler's does.
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
