package metrics

import (
	"slices"
	"strings"
	"time"

	"github.com/affinitylb/affinity/backend"
)

// view is what a Recorder reports at one moment; every output is written
// from one.
type view struct {
	at        time.Time
	failOpen  bool
	backends  []backendView // sorted by ID
	rejected  [len(rejectReasons)]int64
	drainEnds [len(drainReasons)]int64
	panics    int64
	untracked int64
}

// backendView is one backend's numbers: the live ones of a member of the
// set, and the counts of its events.
type backendView struct {
	id     string
	member bool

	// Read from the backend; zero if it is not a member.
	url      string
	group    string
	state    backend.State
	weight   int64
	inflight int64
	requests int64
	health   backend.HealthInfo

	picks, boundHits, binds          int64
	redispatchesTo, redispatchesFrom int64
	retriesTo, retriesFrom           int64
	drains                           int64
	failures                         int64
	stateChanges                     [len(states)]int64
	bindsLastMinute                  int64
	latency                          latencyView
	rps                              []int64 // the last rpsWindow complete seconds, oldest first; with series only
}

// stateName is the backend's state as the status page shows it: "removed"
// for a backend that is not a member of the set.
func (b backendView) stateName() string {
	if b.member {
		return b.state.String()
	}
	return "removed"
}

// errors counts the requests that failed over from the backend: retried
// elsewhere because it could not be reached, or redispatched because it no
// longer served its clients.
func (b backendView) errors() int64 { return b.retriesFrom + b.redispatchesFrom }

// view reads the set and the counters; withSeries adds each
// backend's requests per second.
func (r *Recorder) view(withSeries bool) *view {
	now := r.clock()
	sec := now.Unix()
	r.prune(sec)
	v := &view{at: now, panics: r.panics.Load(), untracked: r.untracked.Load()}
	for i := range v.rejected {
		v.rejected[i] = r.rejected[i].Load()
	}
	for i := range v.drainEnds {
		v.drainEnds[i] = r.drainEnds[i].Load()
	}

	byID := *r.byID.Load()
	snap := r.set.Snapshot()
	v.failOpen = snap.FailOpen()
	for _, b := range snap.Backends() {
		v.backends = append(v.backends, backendView{
			id: b.ID(), member: true, url: b.URL().String(), group: b.Group(), state: b.State(),
			weight: b.Weight(), inflight: b.InFlight(), requests: b.Requests(), health: b.Health(),
		})
	}
	for id := range byID {
		if snap.Lookup(id) == nil {
			v.backends = append(v.backends, backendView{id: id})
		}
	}
	slices.SortFunc(v.backends, func(a, b backendView) int { return strings.Compare(a.id, b.id) })

	for i := range v.backends {
		bv := &v.backends[i]
		c := byID[bv.id]
		if c == nil {
			if withSeries {
				bv.rps = make([]int64, rpsWindow)
			}
			continue
		}
		bv.picks, bv.boundHits, bv.binds = c.picks.Load(), c.boundHits.Load(), c.binds.Load()
		bv.redispatchesTo, bv.redispatchesFrom = c.redispatchesTo.Load(), c.redispatchesFrom.Load()
		bv.retriesTo, bv.retriesFrom = c.retriesTo.Load(), c.retriesFrom.Load()
		bv.failures = c.failures.Load()
		bv.drains = c.drains.Load()
		for s := range bv.stateChanges {
			bv.stateChanges[s] = c.stateChanges[s].Load()
		}
		bv.bindsLastMinute = c.bindings.sum(sec-bindWindow+1, sec)
		bv.latency = c.latency.load(sec)
		if withSeries {
			bv.rps = c.requests.last(rpsWindow, sec-1)
		}
	}
	return v
}
