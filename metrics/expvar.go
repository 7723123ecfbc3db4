package metrics

import (
	"expvar"
	"time"
)

// Expvar returns r's numbers as an [expvar.Var] whose value is a JSON
// object, computed each time it is read, holding the same numbers as
// [Recorder.Metrics]: per backend (by ID) its URL, state, weight,
// in-flight and request counts, and its picks, bound hits, bindings,
// redispatches to and from it, retries to and from it, failures, drains,
// state changes (by the state changed to), its request duration
// histogram (request_duration_seconds: cumulative buckets by upper
// bound in seconds, sum in seconds, count) and its responses by status
// class (responses: "1xx" to "5xx"); and globally whether the
// set fails open, rejected bindings and drain ends (by reason), panics
// and untracked events. It is not published: the caller does that, once,
// under a name of its choice:
//
//	expvar.Publish("affinity", rec.Expvar())
func (r *Recorder) Expvar() expvar.Var {
	return expvar.Func(func() any { return r.expvarValue() })
}

// expvarBackend is one backend in the expvar's JSON.
type expvarBackend struct {
	URL              string           `json:"url,omitempty"`
	State            string           `json:"state"`
	Weight           int64            `json:"weight"`
	InFlight         int64            `json:"inflight"`
	Requests         int64            `json:"requests"`
	Picks            int64            `json:"picks"`
	BoundHits        int64            `json:"bound_hits"`
	Bindings         int64            `json:"bindings"`
	RedispatchesTo   int64            `json:"redispatches_to"`
	RedispatchesFrom int64            `json:"redispatches_from"`
	RetriesTo        int64            `json:"retries_to"`
	RetriesFrom      int64            `json:"retries_from"`
	Failures         int64            `json:"failures"`
	Drains           int64            `json:"drains"`
	StateChanges     map[string]int64 `json:"state_changes"`
	Duration         expvarHistogram  `json:"request_duration_seconds"`
	Responses        map[string]int64 `json:"responses"`
}

// expvarHistogram is a request duration histogram in the expvar's JSON:
// cumulative counts by upper bound in seconds, as the le label, "+Inf"
// last; the sum in seconds; the count.
type expvarHistogram struct {
	Buckets map[string]int64 `json:"buckets"`
	Sum     float64          `json:"sum"`
	Count   int64            `json:"count"`
}

// expvarValue is the expvar's JSON.
type expvarValue struct {
	Backends         map[string]expvarBackend `json:"backends"`
	FailOpen         bool                     `json:"fail_open"`
	RejectedBindings map[string]int64         `json:"rejected_bindings"`
	DrainEnds        map[string]int64         `json:"drain_ends"`
	Panics           int64                    `json:"panics"`
	UntrackedEvents  int64                    `json:"untracked_events"`
}

func (r *Recorder) expvarValue() expvarValue {
	v := r.view(false)
	out := expvarValue{
		Backends:         make(map[string]expvarBackend, len(v.backends)),
		FailOpen:         v.failOpen,
		RejectedBindings: make(map[string]int64, len(v.rejected)),
		DrainEnds:        make(map[string]int64, len(v.drainEnds)),
		Panics:           v.panics,
		UntrackedEvents:  v.untracked,
	}
	for i, n := range v.rejected {
		out.RejectedBindings[reasonLabel(rejectReasons[i])] = n
	}
	for i, n := range v.drainEnds {
		out.DrainEnds[reasonLabel(drainReasons[i])] = n
	}
	for i := range v.backends {
		b := &v.backends[i]
		eb := expvarBackend{
			URL: b.url, State: b.stateName(), Weight: b.weight, InFlight: b.inflight,
			Requests: b.requests, Picks: b.picks, BoundHits: b.boundHits, Bindings: b.binds,
			RedispatchesTo: b.redispatchesTo, RedispatchesFrom: b.redispatchesFrom,
			RetriesTo: b.retriesTo, RetriesFrom: b.retriesFrom, Failures: b.failures, Drains: b.drains,
			StateChanges: make(map[string]int64, len(states)),
		}
		for s, n := range b.stateChanges {
			eb.StateChanges[states[s].String()] = n
		}
		eb.Duration = expvarHistogram{
			Buckets: make(map[string]int64, numBuckets),
			Sum:     time.Duration(b.latency.sumNanos).Seconds(),
		}
		for k, n := range b.latency.buckets {
			eb.Duration.Count += n
			eb.Duration.Buckets[bucketLabels[k]] = eb.Duration.Count
		}
		eb.Responses = make(map[string]int64, len(statusClasses))
		for k, n := range b.latency.classes {
			eb.Responses[statusClasses[k]] = n
		}
		out.Backends[b.id] = eb
	}
	return out
}
