package h2c_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/internal/h2c"
)

func TestRegister(t *testing.T) {
	type got struct {
		proto            int
		host             string
		upgrade, connect string
	}
	seen := make(chan got, 1)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- got{r.ProtoMajor, r.Host, r.Header.Get("Upgrade"), r.Header.Get("Connection")}
	}))
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	t.Cleanup(srv.Close)
	addr := strings.TrimPrefix(srv.URL, "http://")

	tr := &http.Transport{}
	h2c.Register(tr)
	for _, tc := range []struct {
		name    string
		header  http.Header
		upgrade bool
	}{
		{"a request", http.Header{"X-A": {"1"}}, false},
		{"an upgrade, declined", http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, "h2c://"+addr+"/x", nil)
			require.NoError(t, err)
			req.Header = tc.header.Clone()
			resp, err := tr.RoundTrip(req)
			require.NoError(t, err)
			require.NoError(t, resp.Body.Close())
			g := <-seen
			assert.Equal(t, 2, g.proto)
			assert.Equal(t, addr, g.host, "the :authority")
			assert.Empty(t, g.upgrade, "Upgrade, which HTTP/2 cannot carry")
			assert.Empty(t, g.connect)
			assert.Same(t, req, resp.Request, "the response's request")
			assert.Equal(t, "h2c", req.URL.Scheme, "the caller's URL, left as it was")
			assert.Equal(t, tc.header, req.Header, "the caller's header, left as it was")
		})
	}
	tr.CloseIdleConnections()
}
