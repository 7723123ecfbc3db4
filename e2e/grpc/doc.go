// Package grpc holds end-to-end tests of gRPC through the affinity
// library: real grpc-go servers, the standard health service
// (google.golang.org/grpc/health), behind a [sticky.Handler] whose
// backends are h2c:// URLs, and a grpc-go client that reaches the handler
// over HTTP/2 without TLS. They check that calls carrying one affinity key
// in their metadata reach one backend, that trailers and gRPC error
// statuses arrive intact, and that a server stream flows as it is sent.
//
// It is a module of its own, so that the library's go.mod does not carry
// grpc-go. The package has no code but its tests: run them with
// `go test -race ./...` from this directory.
//
// [sticky.Handler]: https://pkg.go.dev/github.com/affinitylb/affinity/sticky#Handler
package grpc
