// Package browser holds end-to-end tests that drive a real browser,
// Chromium through the DevTools protocol, against the affinity library: a
// login conversation through examples/stickyproxy, WebSockets through a
// [sticky.Handler], and the proxy's status page.
//
// It is a module of its own, so that the library's go.mod does not carry
// the browser driver. The package has no code but its tests; see README.md
// for how to run them.
//
// [sticky.Handler]: https://pkg.go.dev/github.com/affinitylb/affinity/sticky#Handler
package browser
