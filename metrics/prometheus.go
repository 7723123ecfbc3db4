package metrics

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ContentType is the media type of the Prometheus text exposition format,
// version 0.0.4, that [Recorder.Metrics] serves.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// Metrics returns a handler that serves r's numbers in the Prometheus text
// exposition format, version 0.0.4, to GET and HEAD requests: metric names
// start with affinity_, per-backend series have a backend label, and
// series come in a fixed order, backends sorted by ID. Gauges and request
// totals are read from the set as the request is served, for its members.
// The handler is safe for concurrent use.
func (r *Recorder) Metrics() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodGet && req.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
			return
		}
		v := r.view(false)
		body := appendExposition(make([]byte, 0, expositionSize(v)), v)
		w.Header().Set("Content-Type", ContentType)
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body) // an error means the client left: nothing to do
	})
}

// perBackend is a metric with one series per backend.
type perBackend struct {
	name, typ, help string
	membersOnly     bool // read from the set: only its members have it
	value           func(*backendView) int64
}

var perBackendMetrics = [...]perBackend{
	{"affinity_backend_requests_total", "counter", "Requests the backend has admitted, retries included.", true,
		func(b *backendView) int64 { return b.requests }},
	{"affinity_backend_inflight", "gauge", "Requests the backend is serving now.", true,
		func(b *backendView) int64 { return b.inflight }},
	{"affinity_backend_weight", "gauge", "The backend's configured weight.", true,
		func(b *backendView) int64 { return b.weight }},
	{"affinity_picks_total", "counter", "Unbound requests the picker placed on the backend.", false,
		func(b *backendView) int64 { return b.picks }},
	{"affinity_bound_hits_total", "counter", "Requests served by the backend they were bound to.", false,
		func(b *backendView) int64 { return b.boundHits }},
	{"affinity_bindings_total", "counter", "Bindings to the backend written on responses, new or renewed.", false,
		func(b *backendView) int64 { return b.binds }},
	{"affinity_redispatches_to_total", "counter", "Requests bound elsewhere, to a backend no longer serving, placed on this backend.", false,
		func(b *backendView) int64 { return b.redispatchesTo }},
	{"affinity_redispatches_from_total", "counter", "Requests bound to this backend, no longer serving, placed elsewhere.", false,
		func(b *backendView) int64 { return b.redispatchesFrom }},
	{"affinity_retries_to_total", "counter", "Requests retried on this backend after another could not be reached.", false,
		func(b *backendView) int64 { return b.retriesTo }},
	{"affinity_retries_from_total", "counter", "Requests retried elsewhere because this backend could not be reached.", false,
		func(b *backendView) int64 { return b.retriesFrom }},
	{"affinity_drains_total", "counter", "Drains of the backend started.", false,
		func(b *backendView) int64 { return b.drains }},
	{"affinity_failures_total", "counter", "Requests to the backend that failed, as passive health checking counts them.", false,
		func(b *backendView) int64 { return b.failures }},
}

// expositionSize estimates the length of v's exposition, so that its
// buffer is allocated once: about 2.5 KB a backend with short IDs, and
// 4 KB of global metrics.
func expositionSize(v *view) int {
	size := 4096
	for i := range v.backends {
		size += 3072 + 48*len(v.backends[i].id)
	}
	return size
}

// appendExposition appends v in the text exposition format to buf.
func appendExposition(buf []byte, v *view) []byte {
	e := exposition{buf: buf}
	for _, m := range perBackendMetrics[:3] { // the set's own numbers first
		e.perBackend(v, m)
	}
	e.header("affinity_backend_state", "gauge", "1 for the backend's current state, 0 for the others.")
	for i := range v.backends {
		b := &v.backends[i]
		if !b.member {
			continue
		}
		for _, s := range states {
			e.sample("affinity_backend_state", boolInt(b.state == s), "backend", b.id, "state", s.String())
		}
	}
	e.header("affinity_fail_open", "gauge", "1 when no backend is healthy and the set routes to unhealthy ones.")
	e.sample("affinity_fail_open", boolInt(v.failOpen))
	for _, m := range perBackendMetrics[3:] {
		e.perBackend(v, m)
	}
	e.header("affinity_request_duration_seconds", "histogram", "Time from receiving a request to writing its response whole, by the backend that served it last.")
	for i := range v.backends {
		b := &v.backends[i]
		var cum int64
		for k, n := range b.latency.buckets {
			cum += n
			e.sample("affinity_request_duration_seconds_bucket", cum, "backend", b.id, "le", bucketLabels[k])
		}
		e.sampleFloat("affinity_request_duration_seconds_sum", time.Duration(b.latency.sumNanos).Seconds(), "backend", b.id)
		e.sample("affinity_request_duration_seconds_count", cum, "backend", b.id)
	}
	e.header("affinity_responses_total", "counter", "Responses sent to clients, by the backend that served the request last and the status class.")
	for i := range v.backends {
		b := &v.backends[i]
		for k, n := range b.latency.classes {
			e.sample("affinity_responses_total", n, "backend", b.id, "class", statusClasses[k])
		}
	}
	e.header("affinity_state_changes_total", "counter", "State changes of the backend, by the state it changed to.")
	for i := range v.backends {
		b := &v.backends[i]
		for s, n := range b.stateChanges {
			e.sample("affinity_state_changes_total", n, "backend", b.id, "to", states[s].String())
		}
	}
	e.header("affinity_drain_ends_total", "counter", "Drains ended, by why: idle, timeout, undone or removed.")
	for i, n := range v.drainEnds {
		e.sample("affinity_drain_ends_total", n, "reason", reasonLabel(drainReasons[i]))
	}
	e.header("affinity_rejected_bindings_total", "counter", "Bindings carried by requests that the policy would not honour, by why.")
	for i, n := range v.rejected {
		e.sample("affinity_rejected_bindings_total", n, "reason", reasonLabel(rejectReasons[i]))
	}
	e.header("affinity_panics_total", "counter", "Panics of a policy or picker recovered while serving a request.")
	e.sample("affinity_panics_total", v.panics)
	e.header("affinity_untracked_events_total", "counter", "Events not counted per backend because the cap on tracked backends was reached.")
	e.sample("affinity_untracked_events_total", v.untracked)
	return e.buf
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// exposition appends metrics in the text format.
type exposition struct {
	buf []byte
}

func (e *exposition) perBackend(v *view, m perBackend) {
	e.header(m.name, m.typ, m.help)
	for i := range v.backends {
		b := &v.backends[i]
		if b.member || !m.membersOnly {
			e.sample(m.name, m.value(b), "backend", b.id)
		}
	}
}

// header appends a metric family's HELP and TYPE lines.
func (e *exposition) header(name, typ, help string) {
	e.buf = append(e.buf, "# HELP "...)
	e.buf = append(e.buf, name...)
	e.buf = append(e.buf, ' ')
	e.buf = append(e.buf, helpEscaper.Replace(help)...)
	e.buf = append(e.buf, "\n# TYPE "...)
	e.buf = append(e.buf, name...)
	e.buf = append(e.buf, ' ')
	e.buf = append(e.buf, typ...)
	e.buf = append(e.buf, '\n')
}

// sample appends a sample line; labels are name, value pairs.
func (e *exposition) sample(name string, value int64, labels ...string) {
	e.series(name, labels)
	e.buf = strconv.AppendInt(e.buf, value, 10)
	e.buf = append(e.buf, '\n')
}

// sampleFloat appends a sample line with a floating-point value.
func (e *exposition) sampleFloat(name string, value float64, labels ...string) {
	e.series(name, labels)
	e.buf = strconv.AppendFloat(e.buf, value, 'g', -1, 64)
	e.buf = append(e.buf, '\n')
}

// series appends a sample line's name and labels, and the space before
// its value.
func (e *exposition) series(name string, labels []string) {
	e.buf = append(e.buf, name...)
	for i := 0; i+1 < len(labels); i += 2 {
		if i == 0 {
			e.buf = append(e.buf, '{')
		} else {
			e.buf = append(e.buf, ',')
		}
		e.buf = append(e.buf, labels[i]...)
		e.buf = append(e.buf, `="`...)
		e.buf = append(e.buf, labelEscaper.Replace(labels[i+1])...)
		e.buf = append(e.buf, '"')
	}
	if len(labels) > 0 {
		e.buf = append(e.buf, '}')
	}
	e.buf = append(e.buf, ' ')
}

// Escaping of the text format: label values escape backslash, double
// quote and line feed; HELP text, backslash and line feed.
var (
	labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
)
