package sticky

import (
	"io"
	"sync"
)

// trackedBody is an outgoing request's body as the transport reads it. It
// records whether any byte was read, so that a request whose body was never
// read may be sent to another backend, and whether reading the client's
// body failed (malformed or truncated, too slow, the client gone), so that
// the client's fault is not held against the backend. It is safe for
// concurrent use: the transport reads it from its own goroutine.
//
// Its Close closes nothing: the transport closes a request's body when no
// connection could be made, and a body nothing was read from is handed to
// the next attempt. ReverseProxy closes the body it read from when the
// request is over, so a Read after that fails.
type trackedBody struct {
	rc io.ReadCloser

	mu      sync.Mutex
	started bool  // a byte was read
	err     error // the first error reading rc other than io.EOF
}

func (b *trackedBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if n > 0 || err != nil && err != io.EOF {
		b.mu.Lock()
		b.started = b.started || n > 0
		if err != nil && err != io.EOF && b.err == nil {
			b.err = err
		}
		b.mu.Unlock()
	}
	return n, err
}

func (b *trackedBody) Close() error { return nil }

// read reports whether any byte of the body was read; false for a nil b,
// a request without a body.
func (b *trackedBody) read() bool {
	if b == nil {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.started
}

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
