package sticky

import (
	"errors"
	"net"
	"net/http"
	"os"
	"time"
)

// The body and write timeouts are idle timeouts: a read of the client's
// body, or a write of the response, may block for the timeout d, and each
// one that starts pushes the connection's deadline forward again. Setting a
// deadline is not free (under HTTP/2 it is a message to the connection's
// goroutine), so a deadline is pushed only when a quarter of d has passed
// since it last was, and then to d and a quarter from now: every read or
// write still has at least d, and at most d and a quarter, to make progress.
const defaultIOTimeout = 30 * time.Second

// slack is how long after a deadline was last pushed it is pushed again.
func slack(d time.Duration) time.Duration { return d / 4 }

// next returns the deadline to push to at now for the timeout d: d and a
// quarter from now, but no later than limit unless it is zero.
func next(now time.Time, d time.Duration, limit time.Time) time.Time {
	dl := now.Add(d + slack(d))
	if !limit.IsZero() && limit.Before(dl) {
		return limit
	}
	return dl
}

// serverLimits returns the deadlines the server's own ReadTimeout and
// WriteTimeout put on r, counted from now, about when the server read r's
// header; zero for those the server has not set, or if r came from no
// [http.Server]. The body and write timeouts never push a deadline past
// them: a server's whole-request timeouts still hold.
func serverLimits(r *http.Request, now time.Time) (read, write time.Time) {
	srv, _ := r.Context().Value(http.ServerContextKey).(*http.Server)
	if srv == nil {
		return time.Time{}, time.Time{}
	}
	if srv.ReadTimeout > 0 {
		read = now.Add(srv.ReadTimeout)
	}
	if srv.WriteTimeout > 0 {
		write = now.Add(srv.WriteTimeout)
	}
	return read, write
}

// readDeadliner and writeDeadliner are what [http.ResponseController] uses
// to set a request's deadlines, found without it: its errors allocate.
type (
	readDeadliner  interface{ SetReadDeadline(time.Time) error }
	writeDeadliner interface{ SetWriteDeadline(time.Time) error }
	unwrapper      interface{ Unwrap() http.ResponseWriter }
)

// unwrapTo returns what, of w and the ResponseWriters it unwraps to (as
// [http.ResponseController] looks through Unwrap), implements T first; the
// zero T if none does. T is readDeadliner or writeDeadliner.
func unwrapTo[T any](w http.ResponseWriter) T {
	for {
		if t, ok := w.(T); ok {
			return t
		}
		u, ok := w.(unwrapper)
		if !ok {
			var none T
			return none
		}
		w = u.Unwrap()
	}
}

// timeout reports whether err is a read or write that ran out of time.
func timeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// timed prepares x's body and write timeouts for r, answered on w, and
// returns the ResponseWriter to proxy the response to: w itself without a
// write timeout, or when w takes no deadlines (a test's recorder), else
// x's timedWriter over it. The body timeout is armed in rewrite, on the
// outgoing body.
func (x *exchange) timed(w http.ResponseWriter, r *http.Request) http.ResponseWriter {
	h := x.h
	if h.bodyTimeout > 0 && r.Body != nil && r.Body != http.NoBody {
		x.rd = unwrapTo[readDeadliner](w)
	}
	var wd writeDeadliner
	if h.writeTimeout > 0 {
		wd = unwrapTo[writeDeadliner](w)
	}
	if x.rd == nil && wd == nil {
		return x.recorded(w)
	}
	var wlimit time.Time
	x.rlimit, wlimit = serverLimits(r, x.sent) // ServeHTTP read the clock just before
	if wd == nil {
		return x.recorded(w)
	}
	x.tw = timedWriter{ResponseWriter: w, dl: wd, d: h.writeTimeout, limit: wlimit}
	return &x.tw
}

// recorded returns w, or for a tracked or observed request x's timedWriter
// over w without a deadline, which records the status sent.
func (x *exchange) recorded(w http.ResponseWriter) http.ResponseWriter {
	if !x.track {
		return w
	}
	x.tw = timedWriter{ResponseWriter: w}
	return &x.tw
}

// timedWriter is the ResponseWriter the proxy writes a response to when
// the handler has a write timeout: each Write, WriteHeader and Flush
// pushes the connection's write deadline forward first (see slack), so a
// client that stops reading is cut off once a write has been blocked for
// the timeout, while one that keeps reading, however long the response,
// is not. A backend that is slow to answer, or quiet between two events
// of a stream, counts for nothing: the deadline is pushed when the proxy
// writes, not while it waits. Hijack and the rest are reached through
// Unwrap by [http.ResponseController]. It records the status it sends.
// It lives in its exchange and is used only by the goroutine serving the
// request.
type timedWriter struct {
	http.ResponseWriter
	dl     writeDeadliner
	d      time.Duration
	limit  time.Time // the server's WriteTimeout; zero: none
	pushed time.Time // when the deadline was last pushed; zero: never
	status int       // the final status sent; 0: none yet
}

// progress pushes the write deadline forward if a quarter of the timeout
// has passed since it last was.
func (t *timedWriter) progress() {
	if t.d <= 0 {
		return
	}
	now := time.Now()
	if !t.pushed.IsZero() && now.Sub(t.pushed) < slack(t.d) {
		return
	}
	t.pushed = now
	if t.dl.SetWriteDeadline(next(now, t.d, t.limit)) != nil {
		t.d = 0 // not supported after all: stop trying
	}
}

func (t *timedWriter) WriteHeader(code int) {
	if t.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		t.status = code // the other 1xx are interim
	}
	t.progress()
	t.ResponseWriter.WriteHeader(code)
}

func (t *timedWriter) Write(p []byte) (int, error) {
	if t.status == 0 {
		t.status = http.StatusOK
	}
	t.progress()
	return t.ResponseWriter.Write(p)
}

// FlushError flushes the response, as [http.ResponseController.Flush] does.
func (t *timedWriter) FlushError() error {
	t.progress()
	return http.NewResponseController(t.ResponseWriter).Flush()
}

// Unwrap returns the ResponseWriter t writes to.
func (t *timedWriter) Unwrap() http.ResponseWriter { return t.ResponseWriter }

// stop clears the write deadline if t set one, and sets no other: the
// connection is being handed over (an upgrade), or the request is over.
func (t *timedWriter) stop() {
	if t.d > 0 && !t.pushed.IsZero() {
		t.dl.SetWriteDeadline(time.Time{})
	}
	t.d = 0
}
