package sticky

import (
	"io"
	"sync"
)

// trackedBody is an outgoing request's body as the transport reads it. It
// records whether reading the client's body failed (malformed or
// truncated, too slow, the client gone), so that the client's fault is not
// held against the backend. It is safe for concurrent use: the transport
// reads it from its own goroutine.
//
// Its Close closes nothing, as ReverseProxy's own wrapper; ReverseProxy
// closes the body it read from when the request is over, so a Read after
// that fails.
type trackedBody struct {
	rc io.ReadCloser

	mu  sync.Mutex
	err error // the first error reading rc other than io.EOF
}

func (b *trackedBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err != nil && err != io.EOF {
		b.mu.Lock()
		if b.err == nil {
			b.err = err
		}
		b.mu.Unlock()
	}
	return n, err
}

func (b *trackedBody) Close() error { return nil }

// failed returns the error reading the client's body failed with, the
// client's fault; nil if it did not fail or b is nil.
func (b *trackedBody) failed() error {
	if b == nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}
