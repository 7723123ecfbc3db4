package cli

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// h2cBackend is a backend that speaks only HTTP/2 without TLS, as a gRPC
// server does, and counts what reaches it.
type h2cBackend struct {
	url              string // h2c://
	requests, overH2 atomic.Int64
	probes           atomic.Int64
}

func startH2CBackend(t *testing.T, name string) *h2cBackend {
	t.Helper()
	b := &h2cBackend{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			b.probes.Add(1)
			return
		}
		b.requests.Add(1)
		if r.ProtoMajor == 2 {
			b.overH2.Add(1)
		}
		w.Header().Set("X-Served-By", name)
		w.Header().Set("Trailer", "X-Done")
		fmt.Fprint(w, "streamed")
		w.Header().Set("X-Done", name)
	}))
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	t.Cleanup(srv.Close)
	b.url = "h2c://" + srv.Listener.Addr().String()
	return b
}

// TestEndToEndH2CBackends runs the proxy with -h2c in front of two
// backends that speak only HTTP/2 without TLS: clients' requests reach
// them over HTTP/2, stick by their key, keep their trailers, and the
// health checks reach them too, with the library's probe client or, with
// -backend-ca, the proxy's own.
func TestEndToEndH2CBackends(t *testing.T) {
	ca := newTestCA(t)
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"the library's probes", nil},
		{"the probes of -backend-ca", []string{"-backend-ca", caFile(t, ca, t.TempDir())}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bs := map[string]*h2cBackend{"one": startH2CBackend(t, "one"), "two": startH2CBackend(t, "two")}
			args := append([]string{"-h2c", "-policy", "header", "-header", "X-Key",
				"-backends", "one=" + bs["one"].url + ",two=" + bs["two"].url,
				"-health-path", "/health", "-health-interval", "20ms"}, tc.args...)
			p := startProxy(t, args...)
			assert.Contains(t, p.stdout.String(), bs["one"].url, "the backends at startup")
			c := &http.Client{Transport: h2cTransport(t), Timeout: 5 * time.Second}

			seen := map[string]bool{}
			for i := range 8 {
				key := fmt.Sprintf("k%d", i)
				var first string
				for j := range 3 {
					req, err := http.NewRequest(http.MethodGet, p.url+"/", nil)
					require.NoError(t, err)
					req.Header.Set("X-Key", key)
					resp, err := c.Do(req)
					require.NoError(t, err)
					body, err := io.ReadAll(resp.Body)
					require.NoError(t, err)
					resp.Body.Close()
					require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
					assert.Equal(t, 2, resp.ProtoMajor, "the client's side")
					by := resp.Header.Get("X-Served-By")
					assert.Equal(t, "streamed", string(body))
					assert.Equal(t, by, resp.Trailer.Get("X-Done"), "the backend's trailer")
					if j == 0 {
						first, seen[by] = by, true
					}
					assert.Equal(t, first, by, "key %s, request %d", key, j)
				}
			}
			assert.Len(t, seen, 2, "backends the keys went to")
			for name, b := range bs {
				assert.Equal(t, b.requests.Load(), b.overH2.Load(), "%s: requests over HTTP/2, of all it served", name)
				require.Eventually(t, func() bool { return b.probes.Load() >= 3 }, 10*time.Second, 10*time.Millisecond, "%s: health checks", name)
			}
			assert.NotContains(t, p.stderr.String(), "level=WARN msg=\"backend failed\"")
			assert.False(t, strings.Contains(p.stderr.String(), "failed health checks"), "stderr:\n%s", p.stderr)
		})
	}
}
