package event_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/affinitylb/affinity/event"
)

func TestKindString(t *testing.T) {
	for k, want := range map[event.Kind]string{
		event.Pick: "pick", event.BoundHit: "bound_hit", event.Bind: "bind",
		event.Redispatch: "redispatch", event.Rejected: "rejected", event.Retry: "retry",
		event.StateChange: "state_change", event.DrainStart: "drain_start", event.DrainEnd: "drain_end",
		event.Panic: "panic", event.Failure: "failure", event.Done: "done",
		0: "unknown", event.Done + 1: "unknown",
	} {
		assert.Equal(t, want, k.String(), "Kind(%d)", k)
	}
}

func TestPlacementString(t *testing.T) {
	for p, want := range map[event.Placement]string{
		event.Bound: "bound", event.Picked: "picked", event.Keyed: "keyed",
		event.Redispatched: "redispatched", event.Unplaced: "unplaced",
		0: "", event.Unplaced + 1: "other",
	} {
		assert.Equal(t, want, p.String(), "Placement(%d)", p)
	}
}

func TestStateString(t *testing.T) {
	for s, want := range map[event.State]string{
		event.Healthy: "healthy", event.Unhealthy: "unhealthy", event.Draining: "draining",
		7: "State(7)", -1: "State(-1)",
	} {
		assert.Equal(t, want, s.String())
	}
}

func TestReasonString(t *testing.T) {
	for r, want := range map[event.Reason]string{
		0:                       "",
		event.Malformed:         "malformed",
		event.Forged:            "forged",
		event.Expired:           "expired",
		event.Unknown:           "unknown",
		event.DrainIdle:         "idle",
		event.DrainTimeout:      "timeout",
		event.DrainUndone:       "undone",
		event.DrainRemoved:      "removed",
		event.TransportFailure:  "transport",
		event.StatusFailure:     "status",
		event.StatusFailure + 1: "other",
	} {
		assert.Equal(t, want, r.String(), "Reason(%d)", r)
	}
}
