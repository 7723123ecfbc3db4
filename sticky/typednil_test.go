package sticky_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/balancer"
	"github.com/affinitylb/affinity/cookie"
	"github.com/affinitylb/affinity/policy"
	"github.com/affinitylb/affinity/sticky"
)

// TestNilPointers checks that New refuses a nil pointer given as the
// policy, a picker, the transport or an observer, as it refuses a nil
// interface, and as policy.NewChain refuses a nil pointer member: such a
// value, left by a constructor whose error was not checked, would
// otherwise make every request panic.
func TestNilPointers(t *testing.T) {
	set, err := backend.NewSet(nil)
	require.NoError(t, err)
	tests := []struct {
		name string
		pol  policy.Policy
		opt  sticky.Option
		want string
	}{
		{"policy", (*cookie.Policy)(nil), nil, "sticky: nil policy (*cookie.Policy)(nil)"},
		{"picker", nil, sticky.WithPicker((*balancer.RoundRobin)(nil)), "sticky: WithPicker((*balancer.RoundRobin)(nil)): nil picker"},
		{"key picker", nil, sticky.WithKeyPicker((*balancer.ConsistentHash)(nil)), "sticky: WithKeyPicker((*balancer.ConsistentHash)(nil)): nil picker"},
		{"transport", nil, sticky.WithTransport((*http.Transport)(nil)), "sticky: WithTransport((*http.Transport)(nil)): nil transport"},
		{"observer", nil, sticky.WithObserver((*recorder)(nil)), "sticky: WithObserver((*sticky_test.recorder)(nil)): nil observer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pol, opts := tt.pol, []sticky.Option{}
			if pol == nil {
				pol = newCookie(t)
			}
			if tt.opt != nil {
				opts = append(opts, tt.opt)
			}
			h, err := sticky.New(set, pol, opts...)
			assert.Nil(t, h)
			assert.EqualError(t, err, tt.want)
		})
	}
}
