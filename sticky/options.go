package sticky

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/affinitylb/affinity/balancer"
)

// Option configures a [Handler]. Options are validated by [New].
type Option func(*options)

type options struct {
	picker    balancer.Picker
	transport http.RoundTripper
	logger    *slog.Logger
	errs      []error
}

// WithPicker sets the picker that places requests not bound to a backend.
// The default is a zero [balancer.ConsistentHash]: requests that carry an
// affinity key (a policy binding whose Status is Keyed) are placed by consistent hashing with
// bounded loads, the others by least connections. A picker that ignores
// [balancer.Info.Key] places keyed requests like any other.
func WithPicker(p balancer.Picker) Option {
	return func(o *options) {
		if p == nil {
			o.errs = append(o.errs, errors.New("sticky: WithPicker: nil picker"))
			return
		}
		o.picker = p
	}
}

// WithTransport sets the round tripper that carries requests to backends.
// The default is [DefaultTransport]().
func WithTransport(rt http.RoundTripper) Option {
	return func(o *options) {
		if rt == nil {
			o.errs = append(o.errs, errors.New("sticky: WithTransport: nil transport"))
			return
		}
		o.transport = rt
	}
}

// WithLogger sets the logger. Backend failures are logged at Warn,
// per-request detail at Debug. A nil logger, like the default, discards
// everything.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.logger = l }
}
