package backend

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultStallTimeout is the stall window a [Set] uses unless
// [WithStallTimeout] says otherwise. With it, a hung backend under
// traffic is ejected within 15 seconds of hanging: within about 10 if its
// clients wait for it, and within their patience plus 5 if they give up.
const DefaultStallTimeout = 5 * time.Second

// stallAfter is how many requests a stall needs, abandoned or still
// waiting: one or two slow requests do not eject a backend.
const stallAfter = 3

// WithStallTimeout sets the stall window w of passive health checking; 0
// turns stall detection off. A backend is stalled when, for w, it has
// answered none of its requests (no request reported a success) while at
// least 3 of them went unanswered for w: either still waiting for their
// response header after waiting all of w, or given
// up by their clients each within w of the one
// before and each after waiting at least w/4; and those requests came
// from at least two clients (by a hash of their address, as for
// [Ejection]). It takes requests and answers none, as a deadlocked server
// does. One client's requests alone, however slow, never stall a
// backend; behind a proxy the handler does not trust, all clients are
// one, and no backend is ever stalled. For requests still waiting, the
// clients are told apart by 4 bits of their hash: two clients whose bits
// agree (1 pair in 16) look like one while only they wait, and their
// stall is seen only when a third client's request waits too, or as
// their requests are given up. A stalled backend is ejected
// as by [Ejection.After] consecutive failures, with the same back-off and
// half-open trials; with passive ejection off (Ejection{}), stalls are not
// detected either.
//
// A backend that answers anything within w is never stalled, however many
// clients wait on its slow requests, nor is one streaming long responses:
// a response whose header has arrived is answered. A client cannot stall
// a backend that answers it within w/4, by hanging up or by waiting. So w
// must exceed the longest a backend may take to answer, when that is all
// it is doing: an endpoint slower than w that several clients wait on, or
// long polling that holds the response header longer than w, with few
// users, needs a longer w. The default is [DefaultStallTimeout]; a
// negative w is an error.
func WithStallTimeout(w time.Duration) Option {
	return func(o *options) { o.stallTimeout = w }
}

// stall is a backend's current run of abandoned requests with no answer in
// between; reportSuccess ends it by zeroing Backend.abandoned, lock-free.
type stall struct {
	mu     sync.Mutex // orders the abandonments of a run
	first  time.Time  // the run's first abandonment
	last   time.Time  // its latest
	client uint64     // the client of the run's first abandonment
	mixed  bool       // another client abandoned one of the run's requests
}

// reportAbandoned records that a request to b from client ended before b
// answered it, after waiting for b as long as waited, because its client
// stopped waiting (it went away, or timed out). It is not a failure: the
// client may be impatient. But a backend that answers none of its
// requests while at least two clients give up on them is stalled (see [WithStallTimeout]) and
// is ejected; and the trial of a half-open backend, abandoned after
// waiting the stall window, has failed. It is safe for concurrent use, and
// is not on the path of an answered request.
func (b *Backend) reportAbandoned(waited time.Duration, client uint64) {
	s := b.set
	w := s.stallTimeout
	if w <= 0 || s.ejection.After <= 0 || waited < w/4 {
		return
	}
	now := time.Now()
	if t := b.trial.Load(); t > trialOpen {
		// Half-open, a trial out: it fails if it hung for the window.
		// One abandoned sooner expires as usual (see Ejection), so a
		// client cannot fail trials by hanging up.
		if waited >= w && now.Sub(time.Unix(0, t)) >= w {
			s.trialFailed(b)
		}
		return
	}
	st := &b.stall
	st.mu.Lock()
	n := b.abandoned.Add(1)
	if n == 1 || now.Sub(st.last) > w {
		// A new run: after an answer, or after a quiet spell.
		n = 1
		b.abandoned.Store(1)
		st.first, st.client, st.mixed = now, client, false
	} else if client != st.client {
		st.mixed = true
	}
	st.last = now
	span := now.Sub(st.first)
	stalled := n >= stallAfter && span >= w && st.mixed
	if stalled {
		b.abandoned.Store(0) // the next run starts afresh
	}
	st.mu.Unlock()
	if stalled {
		s.stalled(b, "unanswered", n, "during", span.Round(time.Millisecond))
	}
}

// stalled ejects b, which answered none of its requests while args (how
// many went unanswered, and for how long) say it was stalled, unless
// something else already holds it out of rotation.
func (s *Set) stalled(b *Backend, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h := &b.health; h.ejected || h.down || b.Removed() {
		return
	}
	s.ejectLocked(b, "stalled: requests unanswered", "backend stalled: requests unanswered; ejected", args...)
}

// watch samples a backend's requests awaiting their response header, every
// half stall window while there are any, for the stall rule on requests
// that are still waiting. The goroutine that turned on from false to
// true owns the other fields until it stores false again.
type watch struct {
	on    atomic.Bool
	timer *time.Timer
	waits [2]int64                // Backend.waits at the last two ticks, the older first
	by    [2][clientBits][2]int64 // Backend.waitsBy at the same ticks
	ticks int                     // since the watch was armed
}

// clientBits is how many bits of a client's hash sort the waiting
// requests into classes, for the stall rule's distinct clients: a client
// falls in class [i][bit i of its hash] for each i. Requests waiting in
// both classes of one bit come from two clients; two clients whose bits
// all agree look like one (1 pair in 16), so a stall they alone wait on is
// not seen while it lasts.
const clientBits = 4

// byClient counts requests by class of their client (see clientBits).
type byClient [clientBits][2]atomic.Int64

// add adds d to the count of each of client's classes.
func (c *byClient) add(client uint64, d int64) {
	for i := range c {
		c[i][client>>i&1].Add(d)
	}
}

// waitStarted records that a request sent to b now waits on b: for its
// response header, or for b to take more of its body (the time a proxy
// waits for its own client is not b's); waitEnded must follow it exactly
// once, when the wait is over, however it ended (the header arrived, the request
// failed, the client left), with the same client. A backend that has
// answered nothing for the stall window while at least 3 requests, from
// at least two clients, have waited for it all that time is stalled (see
// [WithStallTimeout]). It is safe for concurrent use, lock-free and
// allocation-free; while requests wait, b is sampled every half window.
func (b *Backend) waitStarted(client uint64) {
	// Each count of waits before its count of waiting: tick reads them in
	// the other order, so that it never counts a wait as long that began
	// since its older sample.
	b.waits.Add(1)
	b.waitsBy.add(client, 1)
	b.waiting.Add(1)
	b.waitingBy.add(client, 1)
	s := b.set
	if s.stallTimeout > 0 && s.ejection.After > 0 && !b.watch.on.Load() && b.watch.on.CompareAndSwap(false, true) {
		s.arm(b)
	}
}

// waitEnded ends a wait that waitStarted began for client.
func (b *Backend) waitEnded(client uint64) {
	b.waiting.Add(-1)
	b.waitingBy.add(client, -1)
}

// arm starts b's watch, which the caller has turned on.
func (s *Set) arm(b *Backend) {
	wt := &b.watch
	wt.ticks = 0
	b.quiet.Store(0) // nothing waited before: count from now
	if wt.timer == nil {
		// Stored before it is started: its first tick reads it.
		wt.timer = time.AfterFunc(time.Duration(math.MaxInt64), func() { s.tick(b) })
	}
	wt.timer.Reset(s.stallTimeout / 2)
}

// tick samples b's waiting requests: b is stalled if it answered nothing
// since before the tick two before this one, a stall window ago, while
// at least stallAfter requests have waited since then (those waiting now
// less those whose wait began since then), from at least two clients:
// counted so in the two classes of one client bit (see clientBits). The
// counts are never more than the requests that waited so long: a
// client's requests alone never look like two clients'. The watch stops
// when nothing waits.
func (s *Set) tick(b *Backend) {
	wt := &b.watch
	waiting := b.waiting.Load()
	if waiting <= 0 {
		wt.on.Store(false)
		// A wait that started since the load found the watch still on.
		if b.waiting.Load() > 0 && wt.on.CompareAndSwap(false, true) {
			s.arm(b)
		}
		return
	}
	quiet := b.quiet.Add(1) // ticks since the last answer, this one included
	var waitingBy, by [clientBits][2]int64
	for i := range by {
		for v := range by[i] {
			waitingBy[i][v] = b.waitingBy[i][v].Load()
		}
	}
	n := b.waits.Load()
	for i := range by {
		for v := range by[i] {
			by[i][v] = b.waitsBy[i][v].Load()
		}
	}
	old, oldBy := wt.waits[0], wt.by[0]
	wt.waits[0], wt.waits[1] = wt.waits[1], n
	wt.by[0], wt.by[1] = wt.by[1], by
	if wt.ticks++; wt.ticks >= 3 && quiet >= 3 {
		if long := waiting - (n - old); long >= stallAfter && twoClients(&waitingBy, &by, &oldBy) {
			s.stalled(b, "waiting", long, "window", s.stallTimeout)
		}
	}
	wt.timer.Reset(s.stallTimeout / 2)
}

// twoClients reports whether, by the counts of a tick (waiting, and waits
// begun, by class) and those of the tick two before (old), both classes of
// some client bit have a request that has waited since then.
func twoClients(waiting, waits, old *[clientBits][2]int64) bool {
	for i := range waiting {
		if waiting[i][0]-(waits[i][0]-old[i][0]) >= 1 && waiting[i][1]-(waits[i][1]-old[i][1]) >= 1 {
			return true
		}
	}
	return false
}
