// Package metrics observes a sticky balancer: a [Recorder] counts the
// events of a [backend.Set] and of a sticky handler, and serves them, with
// the set's live numbers, three ways:
//
//   - [Recorder.Metrics]: Prometheus text exposition format, version 0.0.4;
//   - [Recorder.Expvar]: a JSON [expvar.Var], for /debug/vars;
//   - [Recorder.Status]: a status page, HTML or JSON, with each backend's
//     state, the last minute's request durations (p50, p99) and 5xx
//     share, a totals row, and a chart of its requests per second.
//
// # Wiring
//
// A Recorder is an [event.Observer]. Events come from two places: the set
// reports what happens to backends (state changes, drains), the handler
// what happens to requests (picks, bound hits, bindings, redispatches,
// retries, rejected bindings, failures, panics, and each request's end,
// event.Done, with its status and duration). [New] adds the Recorder
// to its set's observers; give it to the handler as well:
//
//	rec, err := metrics.New(set)
//	...
//	h, err := sticky.New(set, pol, sticky.WithObserver(rec))
//	...
//	mux.Handle("GET /metrics", rec.Metrics())
//	mux.Handle("GET /status", rec.Status())
//	expvar.Publish("affinity", rec.Expvar())
//
// Each backend's state, weight, in-flight and request counts are read
// from the set's snapshot at scrape time. The set's events reach the
// Recorder from the moment New returns: changes before are not counted.
// The package publishes nothing by itself and has no package-level state:
// every number belongs to a Recorder.
//
// # Cost
//
// [Recorder.Observe] runs on the request path. It takes no lock and does
// not allocate: a backend's counters are found in a map that is copied on
// write, only when a backend ID is first seen, and are atomic integers;
// the per-second windows are rings of atomic words, advanced lazily by the
// first event of each new second, so nothing ticks in the background.
// Scrapes do the work: they read the set's snapshot, sort, and format.
//
// # Bounds
//
// Counters are kept per backend ID, and IDs come and go (a DNS source,
// autoscaling). The counters of a backend that has left the set
// are forgotten after [DefaultForgetAfter] (see [WithForgetAfter]), and at
// most [DefaultMaxBackends] IDs are tracked at once (see
// [WithMaxBackends]), about 10 KB each; events about IDs beyond the cap
// are counted only in affinity_untracked_events_total. Labels that come
// from event reasons take a fixed set of values, anything unexpected
// being "other".
//
// # Why the exposition format is written by hand
//
// The module keeps its dependencies few and small, and a load balancer
// library should not make every user compile Prometheus's client library,
// with its protobuf, procfs and common packages, to get a dozen counters.
// The text format is small (HELP and TYPE lines, then "name{labels}
// value" lines, three characters to escape), stable since 2014, and read
// by every Prometheus-compatible scraper (Prometheus, VictoriaMetrics,
// the OpenTelemetry Collector, Datadog and Grafana agents); the tests
// check the output with a parser of their own, and those of the nested
// module metrics/prometheustest with Prometheus's (expfmt), so that the
// core module does not depend on it. A program that already
// uses client_golang can scrape this endpoint alongside its own, or write
// a small [prometheus.Collector] that reads [Recorder.Expvar]'s JSON.
//
// # Metrics
//
// Per backend, with a backend label (set members only, read at scrape
// time): affinity_backend_requests_total, affinity_backend_inflight,
// affinity_backend_weight, affinity_backend_state (one series per state,
// 1 for the current one). Per backend, from events:
// affinity_picks_total, affinity_bound_hits_total,
// affinity_bindings_total, affinity_redispatches_to_total and
// affinity_redispatches_from_total (by destination and by origin),
// affinity_retries_to_total and affinity_retries_from_total,
// affinity_failures_total (failures reported for passive health checking:
// transport errors, and answers the handler counts as failures),
// affinity_state_changes_total (by the state changed to, label "to"),
// affinity_drains_total, affinity_request_duration_seconds (a histogram,
// _bucket with le, _sum and _count, of the Done events' Elapsed: from
// receiving the request to writing its response whole; buckets at
// Prometheus's defaults, .005 .01 .025 .05 .1 .25 .5 1 2.5 5 10 and
// +Inf seconds), affinity_responses_total (the Done events by status
// class, label class: 1xx to 5xx; a request whose client left before a
// response was sent, status 0, is in the histogram but in no class).
// Both count a request under the backend it was sent to last; one that
// no backend took is in neither. Global: affinity_fail_open,
// affinity_rejected_bindings_total (label reason: malformed, forged,
// expired, unknown, other; the sticky handler counts the client of a
// backend that left the set as a redispatch from nowhere, not as an
// unknown binding), affinity_drain_ends_total (label reason:
// idle, timeout, undone, removed, other), affinity_panics_total,
// affinity_untracked_events_total.
//
// [prometheus.Collector]: https://pkg.go.dev/github.com/prometheus/client_golang/prometheus#Collector
package metrics
