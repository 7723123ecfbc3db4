//go:build race

package sticky_test

// raceEnabled: the race detector is on, under which sync.Pool drops
// items at random, so allocation counts vary.
const raceEnabled = true
