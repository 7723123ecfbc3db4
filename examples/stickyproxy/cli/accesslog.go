package cli

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/event"
	"github.com/affinitylb/affinity/policy"
	"github.com/affinitylb/affinity/sticky"
)

// newLoggers returns the proxy's logger, which writes the records of level
// at least level to w as text, and the access logger, which writes every
// record it is given to w in the same format, whatever level: an operator
// who asks for -access-log wants its lines with -log-level warn too. Both
// share one handler, so their lines never interleave.
func newLoggers(w io.Writer, level slog.Level) (logger, access *slog.Logger) {
	h := slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug})
	return slog.New(levelFilter{h, level}), slog.New(h)
}

// levelFilter passes on the records of at least min.
type levelFilter struct {
	slog.Handler
	min slog.Level
}

func (f levelFilter) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= f.min && f.Handler.Enabled(ctx, l)
}

func (f levelFilter) WithAttrs(as []slog.Attr) slog.Handler {
	return levelFilter{f.Handler.WithAttrs(as), f.min}
}

func (f levelFilter) WithGroup(name string) slog.Handler {
	return levelFilter{f.Handler.WithGroup(name), f.min}
}

// accessLog writes one line per request to its logger, at Info:
//
//	msg=request method=GET path=/whoami status=200 duration=1.2ms bytes=27
//	backend=app2 binding=valid route=bound_hit bind=false attempts=1
//	client=127.0.0.1:50312 placement=bound retries=0 header=1ms group=blue
//
// The handler's decision (the backend, how the request was placed, its
// retries, the time to the backend's header) comes from [sticky.Track].
// What the policy read from the request, and whether it wrote its binding
// on the response, the decision does not say: accessLog learns them by
// wrapping the policy it hands the handler, which reports to a record in
// the request's context, on the request's goroutine.
type accessLog struct {
	logger *slog.Logger
	set    *backend.Set // for the backend's group
}

// accessKey is the context key of a request's *accessRecord.
type accessKey struct{}

// accessRecord is what the wrapped policy learns of a request.
type accessRecord struct {
	binding policy.Binding // what the policy read; Status None if Lookup did not run
	looked  bool           // Lookup ran
	bind    bool           // the policy wrote its binding on the response
}

// recordOf returns the record in ctx, or nil.
func recordOf(ctx context.Context) *accessRecord {
	rec, _ := ctx.Value(accessKey{}).(*accessRecord)
	return rec
}

// handler returns next, logging each request it serves once it is over.
func (a *accessLog) handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &accessRecord{}
		lw := &loggedWriter{ResponseWriter: w}
		r = r.WithContext(context.WithValue(r.Context(), accessKey{}, rec))
		r, d := sticky.Track(r)
		defer func() { a.write(r, lw, rec, d, time.Since(start)) }() // a panic aborting the response too
		next.ServeHTTP(lw, r)
	})
}

// write logs r, answered through w, as rec and the handler's decision d
// saw it.
func (a *accessLog) write(r *http.Request, w *loggedWriter, rec *accessRecord, d *sticky.Decision, dur time.Duration) {
	var route, binding string
	attempts := 0
	if d.Backend != "" {
		attempts = d.Retries + 1
		switch {
		case d.Placement == event.Bound && d.Retries == 0:
			route = "bound_hit"
		case d.Placement == event.Bound || d.Placement == event.Redispatched:
			route = "redispatch" // its bound backend was down or gone, or failed it
		default:
			route = "pick"
		}
	}
	if rec.looked {
		binding = rec.binding.Status.String()
	}
	group := ""
	if d.Backend != "" {
		if b := a.set.Snapshot().Lookup(d.Backend); b != nil {
			group = b.Group()
		}
	}
	status := w.status
	if status == 0 && w.bytes == 0 && !w.hijacked {
		status = http.StatusOK // what net/http sends for a handler that wrote nothing
	}
	a.logger.LogAttrs(context.Background(), slog.LevelInfo, "request",
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.Int("status", status),
		slog.Duration("duration", dur),
		slog.Int64("bytes", w.bytes),
		slog.String("backend", d.Backend),
		slog.String("binding", binding),
		slog.String("route", route),
		slog.Bool("bind", rec.bind),
		slog.Int("attempts", attempts),
		slog.String("client", r.RemoteAddr),
		slog.String("placement", d.Placement.String()),
		slog.Int("retries", d.Retries),
		slog.Duration("header", d.Header),
		slog.String("group", group),
	)
}

// policy returns p, reporting to the request's record what it reads and
// whether it binds. It implements [policy.Stripper] if p does.
func (a *accessLog) policy(p policy.Policy) policy.Policy {
	lp := loggedPolicy{p}
	if s, ok := p.(policy.Stripper); ok {
		return loggedStripper{lp, s}
	}
	return lp
}

// loggedPolicy is a policy that reports to the request's accessRecord.
type loggedPolicy struct{ policy.Policy }

func (p loggedPolicy) Lookup(r *http.Request, s *backend.Snapshot) policy.Binding {
	b := p.Policy.Lookup(r, s)
	if rec := recordOf(r.Context()); rec != nil {
		rec.binding, rec.looked = b, true
	}
	return b
}

func (p loggedPolicy) Save(r *http.Request, resp *http.Response, b *backend.Backend, prev policy.Binding) {
	n := len(resp.Header["Set-Cookie"])
	p.Policy.Save(r, resp, b, prev)
	if rec := recordOf(r.Context()); rec != nil {
		rec.bind = len(resp.Header["Set-Cookie"]) > n
	}
}

// loggedStripper is a loggedPolicy over a policy that strips its binding.
type loggedStripper struct {
	loggedPolicy
	s policy.Stripper
}

func (p loggedStripper) Strip(h http.Header) { p.s.Strip(h) }

// loggedWriter is a ResponseWriter that records the status and the
// number of body bytes written. Flush and the deadlines are reached
// through Unwrap by [http.ResponseController]; Hijack is its own, to
// record the 101 that a proxied upgrade writes to the connection.
type loggedWriter struct {
	http.ResponseWriter
	status   int   // the final status; 0: none yet
	bytes    int64 // body bytes written
	hijacked bool
}

func (w *loggedWriter) WriteHeader(code int) {
	if w.status == 0 && (code < 100 || code > 199 || code == http.StatusSwitchingProtocols) {
		w.status = code // 1xx but 101 are interim
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *loggedWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

// Hijack hijacks the connection, as [http.ResponseController.Hijack]
// does, and records a 101: only an upgrade is hijacked.
func (w *loggedWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil {
		w.hijacked = true
		if w.status == 0 {
			w.status = http.StatusSwitchingProtocols
		}
	}
	return c, rw, err
}

// Unwrap returns the ResponseWriter w writes to.
func (w *loggedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
