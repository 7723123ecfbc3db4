package sticky_test

import (
	"net/http"
	"net/http/httputil"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/balancer"
	"github.com/affinitylb/affinity/sticky"
)

// firstPicker is a DonePicker that places every request on its
// snapshot's first routable backend and keeps what it is told.
type firstPicker struct {
	mu    sync.Mutex
	picks int
	dones []balancer.DoneInfo
}

func (p *firstPicker) Pick(info balancer.Info) (*backend.Backend, error) {
	p.mu.Lock()
	p.picks++
	p.mu.Unlock()
	return info.Snapshot.Routable()[0], nil
}

func (p *firstPicker) Done(d balancer.DoneInfo) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dones = append(p.dones, d)
}

// TestDonePickerHookPanics checks that a placement whose request a hook's
// panic ends is still reported to its DonePicker, once: with an error if
// the backend had not answered (a panic in Rewrite, or in the error
// handler of an unreachable backend), with the backend's status if it had
// (a panic in ModifyResponse).
func TestDonePickerHookPanics(t *testing.T) {
	boom := func() { panic("the test's hook") }
	for _, tc := range []struct {
		name       string
		dead       bool
		opt        sticky.Option
		wantStatus int // 0: an error
	}{
		{"Rewrite", false, sticky.WithRewrite(func(*httputil.ProxyRequest) { boom() }), 0},
		{"ModifyResponse", false, sticky.WithModifyResponse(func(*http.Response) error { boom(); return nil }), http.StatusOK},
		{"ErrorHandler", true, sticky.WithErrorHandler(func(http.ResponseWriter, *http.Request, error) { boom() }), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, _ := recordingBackend(t, "app1", http.StatusOK)
			if tc.dead {
				cfg.URL = deadURL(t)
			}
			set, err := backend.NewSet([]backend.Config{cfg}, backend.WithEjection(backend.Ejection{}))
			require.NoError(t, err)
			p := &firstPicker{}
			h, err := sticky.New(set, newCookie(t), tc.opt, sticky.WithPicker(p), sticky.WithRetries(0, 0)) // one placement each
			require.NoError(t, err)
			w := get(t, newClient(t, false), front(t, h)+"/")
			require.Equal(t, http.StatusInternalServerError, w.status)

			p.mu.Lock()
			defer p.mu.Unlock()
			assert.Equal(t, 1, p.picks)
			require.Len(t, p.dones, 1, "a placement was not reported once")
			d := p.dones[0]
			assert.Equal(t, "app1", d.Backend.ID())
			assert.Equal(t, tc.wantStatus, d.StatusCode)
			if tc.wantStatus == 0 {
				assert.Error(t, d.Err)
			} else {
				assert.NoError(t, d.Err)
			}
		})
	}
}
