package backend

import (
	"time"

	"github.com/affinitylb/affinity/event"
)

// SetDrainTicks makes the drain watchers of s look at their backends when,
// and only when, the test sends a time on ticks: that time is their now.
// Call it before the first Drain.
func SetDrainTicks(s *Set, ticks <-chan time.Time) {
	s.drainTicks = func(time.Duration) (<-chan time.Time, func()) { return ticks, func() {} }
}

// SetCheckTicks makes the health checks of s look for due probes when,
// and only when, the test sends a time on ticks: that time is their now.
// Call it before CheckHealth.
func SetCheckTicks(s *Set, ticks <-chan time.Time) { s.checkTicks = ticks }

// Emit hands e to the observers of s, as the set does its own events.
func Emit(s *Set, e event.Event) { s.emit(e) }
