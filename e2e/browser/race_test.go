//go:build race

package browser

// raceEnabled reports whether the tests run under the race detector, so
// that the stickyproxy they start is built with it too.
const raceEnabled = true
