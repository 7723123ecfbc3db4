// Package otel connects a sticky handler to OpenTelemetry: attributes on
// the server span saying which backend took a request and what became of
// its binding, and for each attempt to a backend a client span and a
// point on the http.client.request.duration histogram, following the
// HTTP client semantic conventions and naming the attempt's backend.
//
// It is a module of its own (github.com/affinitylb/affinity/otel), so the
// core module does not depend on OpenTelemetry. One [Telemetry], made by
// [New], gives the two parts:
//
//   - [Telemetry.Handler] wraps the sticky handler, inside the embedder's
//     server instrumentation (such as otelhttp.NewHandler), tracks each
//     request (sticky.Track), and sets affinity.backend.id,
//     affinity.binding, affinity.placement and affinity.retries on the
//     span in the request's context.
//   - [Telemetry.Transport] wraps the round tripper given to
//     sticky.WithTransport: per attempt it starts a client span and
//     records the attempt's duration, so a retried request shows one
//     span and one point per backend tried. For a request the Handler
//     tracks, both carry affinity.backend.id of the attempt's backend.
package otel
