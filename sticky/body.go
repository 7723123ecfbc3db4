package sticky

import (
	"io"
	"sync"
	"time"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/internal/accounting"
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
//
// A body of known length ends (io.EOF) once that many bytes are read,
// without reading rc again: the transport reads once more past a
// Content-Length to check the body holds no more, and by then the server
// may have closed rc, as it does once the response header is written
// (having read the rest itself); a Read of the closed rc would fail the
// request's write and cut the backend's answer short.
//
// With a body timeout d (dl is not nil), each Read first pushes the
// client connection's read deadline forward (see slack), so that a client
// that sends nothing for d fails the Read with a timeout; the deadline is
// cleared at the end of the body, and never touched once the request is
// over (done), when the connection may be serving another.
type trackedBody struct {
	rc     io.ReadCloser
	size   int64         // the body's Content-Length; 0: unknown
	dl     readDeadliner // nil: no body timeout
	d      time.Duration
	limit  time.Time // the server's ReadTimeout; zero: none
	client uint64    // the request's client, for the waits it counts (see clientID)

	mu      sync.Mutex
	started bool             // a byte was read
	n       int64            // bytes read
	err     error            // the first error reading rc other than io.EOF
	pushed  time.Time        // when the read deadline was last pushed; zero: never
	done    bool             // the request is over: leave the deadline alone
	to      *backend.Backend // the backend it is being sent to; nil: none now
	waiting bool             // counted waiting on to: the transport is not reading from the client
	resumed time.Time        // when it last started waiting on to
	waited  time.Duration    // how long the last attempt had waited on its backend when it ended
}

func (b *trackedBody) Read(p []byte) (int, error) {
	n, err := 0, io.EOF
	if b.beforeRead() {
		n, err = b.rc.Read(p)
	}
	b.mu.Lock()
	b.n += int64(n)
	b.started = b.started || n > 0
	if err != nil && err != io.EOF && b.err == nil {
		b.err = err
	}
	if err == io.EOF && b.dl != nil && !b.done && !b.pushed.IsZero() {
		b.dl.SetReadDeadline(time.Time{})
		b.pushed = time.Time{}
	}
	b.resume()
	b.mu.Unlock()
	return n, err
}

// beforeRead, with a body timeout, pushes the read deadline forward (see
// push), and stops counting the request as waiting on its backend while
// the transport waits for the client's body: that is the client's time.
// The time the transport spends between reads, writing to the backend
// (which may not be reading), and after the last one, waiting for the
// answer, is the backend's. It reports whether rc is to be read: false once
// a body of known length has been read to its end.
func (b *trackedBody) beforeRead() bool {
	var now time.Time
	if b.dl != nil {
		now = time.Now() // outside the lock
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.dl != nil {
		b.push(now)
	}
	if b.waiting {
		b.waiting = false
		accounting.WaitEnded(b.to, b.client)
	}
	return b.size <= 0 || b.n < b.size
}

// resume counts the request as waiting on its backend again, if it is
// being sent to one. b.mu is held.
func (b *trackedBody) resume() {
	if b.to != nil && !b.waiting {
		b.waiting, b.resumed = true, time.Now()
		accounting.WaitStarted(b.to, b.client)
	}
}

// push pushes the read deadline forward if a quarter of the timeout has
// passed, at now, since it last was. b.mu is held.
func (b *trackedBody) push(now time.Time) {
	if b.done || b.err != nil || !b.pushed.IsZero() && now.Sub(b.pushed) < slack(b.d) {
		return
	}
	b.pushed = now
	b.dl.SetReadDeadline(next(now, b.d, b.limit))
}

// stop leaves the read deadline as it is from now on, clearing it first
// if clear is set and b set one; nil b does nothing.
func (b *trackedBody) stop(clear bool) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if clear && b.dl != nil && !b.done && !b.pushed.IsZero() {
		b.dl.SetReadDeadline(time.Time{})
	}
	b.done = true
}

func (b *trackedBody) Close() error { return nil }

// sendTo marks the start of the request's attempt on be: it waits on be
// (see [backend.WithStallTimeout]) but while the transport reads the
// client's body.
func (b *trackedBody) sendTo(be *backend.Backend) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.to, b.waiting = be, false
	b.resume()
}

// sent ends what sendTo began: the request's attempt is over.
func (b *trackedBody) sent() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.waited = 0
	if b.waiting {
		b.waited = time.Since(b.resumed)
		accounting.WaitEnded(b.to, b.client)
	}
	b.to, b.waiting = nil, false
}

// lastWait returns how long the last attempt had waited on its backend,
// the client's time apart, when it ended; 0 for a nil b.
func (b *trackedBody) lastWait() time.Duration {
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.waited
}

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
