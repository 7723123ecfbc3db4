package backend

import (
	"sync/atomic"
	"time"
)

// ramp is a backend's slow start, from start to end in Unix nanoseconds;
// end is 0 when the backend is not ramping, so that only ramping backends
// cost a clock read.
type ramp struct {
	startNs atomic.Int64
	endNs   atomic.Int64
}

func (r *ramp) start(window time.Duration) {
	if window <= 0 {
		return
	}
	now := time.Now().UnixNano()
	r.endNs.Store(0)
	r.startNs.Store(now)
	r.endNs.Store(now + int64(window))
}

// remaining returns how much of the ramp is left, in thousandths: 1000 at
// its start, 0 once it is over or when there is none.
func (r *ramp) remaining() int64 {
	end := r.endNs.Load()
	if end == 0 {
		return 0
	}
	now, start := time.Now().UnixNano(), r.startNs.Load()
	if now >= end || start >= end {
		r.endNs.CompareAndSwap(end, 0)
		return 0
	}
	return 1000 * (end - max(now, start)) / (end - start)
}
