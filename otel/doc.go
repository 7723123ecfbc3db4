// Package otel connects a sticky handler to OpenTelemetry: attributes on
// the server span saying which backend took a request and what became of
// its binding, a client span per attempt to a backend, and a per-backend
// request duration histogram following the HTTP client semantic
// conventions.
//
// It is a module of its own (github.com/affinitylb/affinity/otel), so the
// core module does not depend on OpenTelemetry. One [Telemetry], made by
// [New], gives the three parts:
//
//   - [Telemetry.Handler] wraps the sticky handler, inside the embedder's
//     server instrumentation (such as otelhttp.NewHandler), and sets
//     affinity.backend.id, affinity.binding, affinity.placement and
//     affinity.retries on the span in the request's context.
//   - [Telemetry.Transport] wraps the round tripper given to
//     sticky.WithTransport and starts a client span per attempt, so a
//     retried request shows one client span per backend tried.
//   - Telemetry is an event.Observer, for sticky.WithObserver: it records
//     http.client.request.duration per backend from the handler's Done
//     events.
package otel
