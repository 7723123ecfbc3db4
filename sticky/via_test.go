package sticky_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/sticky"
)

// maxHops is how many requests a hop takes before it stops forwarding.
const maxHops = 10

// hop is a sticky handler served on 127.0.0.1 whose backend is given after
// its listener exists, so that handlers can be pointed at each other or at
// themselves. It counts the requests that reach it.
type hop struct {
	srv  *httptest.Server
	seen atomic.Int64
	rec  recorder
}

func newHop(t *testing.T) *hop {
	t.Helper()
	hp := &hop{srv: httptest.NewUnstartedServer(nil)}
	t.Cleanup(hp.srv.Close)
	return hp
}

func (hp *hop) url() string { return "http://" + hp.srv.Listener.Addr().String() }

// forwardTo starts hp with a handler whose only backend is next.
func (hp *hop) forwardTo(t *testing.T, next *hop, opts ...sticky.Option) {
	t.Helper()
	set, err := backend.NewSet([]backend.Config{{ID: "next", URL: next.url()}})
	require.NoError(t, err)
	h, err := sticky.New(set, newCookie(t), append(opts, sticky.WithObserver(&hp.rec))...)
	require.NoError(t, err)
	hp.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hp.seen.Add(1) > maxHops {
			// The loop went unnoticed: end it here, rather than when the
			// machine runs out of file descriptors.
			http.Error(w, "runaway loop", http.StatusInternalServerError)
			return
		}
		h.ServeHTTP(w, r)
	})
	hp.srv.Start()
}

// picks returns how many requests hp placed on a backend.
func (hp *hop) picks() int {
	n := 0
	for _, e := range hp.rec.take() {
		if strings.HasPrefix(e, "pick") || strings.HasPrefix(e, "boundhit") {
			n++
		}
	}
	return n
}

func TestLoopsAnswer508(t *testing.T) {
	for _, tc := range []struct {
		name string
		// build returns the hops in the order a request meets them, the
		// first one last again: A → A, or A → B → A.
		build func(t *testing.T) []*hop
	}{
		{"the backend is the handler itself", func(t *testing.T) []*hop {
			a := newHop(t)
			a.forwardTo(t, a)
			return []*hop{a}
		}},
		{"through another handler", func(t *testing.T) []*hop {
			a, b := newHop(t), newHop(t)
			a.forwardTo(t, b)
			b.forwardTo(t, a)
			return []*hop{a, b}
		}},
		{"through another handler, named", func(t *testing.T) []*hop {
			a, b := newHop(t), newHop(t)
			a.forwardTo(t, b, sticky.WithVia("edge-a"))
			b.forwardTo(t, a, sticky.WithVia("edge-b"))
			return []*hop{a, b}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hops := tc.build(t)
			resp, err := http.Get(hops[0].url() + "/")
			require.NoError(t, err)
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			require.NoError(t, resp.Body.Close())

			assert.Equal(t, http.StatusLoopDetected, resp.StatusCode)
			assert.Contains(t, string(body), "loop detected")
			assert.NotContains(t, string(body), "affinity-", "the answer names the handler")
			assert.EqualValues(t, 2, hops[0].seen.Load(), "requests reaching the first handler")
			assert.Equal(t, 1, hops[0].picks(), "the request that came back was forwarded")
			for _, hp := range hops[1:] {
				assert.EqualValues(t, 1, hp.seen.Load(), "requests reaching a handler in the loop")
				assert.Equal(t, 1, hp.picks())
			}
		})
	}
}

// viaEcho is a backend that remembers the Via header of the last request.
type viaEcho struct {
	mu  sync.Mutex
	via []string
}

func (e *viaEcho) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	e.via = r.Header.Values("Via")
	e.mu.Unlock()
}

func (e *viaEcho) take() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	v := e.via
	e.via = nil
	return v
}

// viaFront serves, on 127.0.0.1, a handler named edge in front of a
// viaEcho, and returns the handler's server unstarted.
func viaFront(t *testing.T) (*httptest.Server, *viaEcho) {
	t.Helper()
	e := &viaEcho{}
	back := httptest.NewServer(e)
	t.Cleanup(back.Close)
	set, err := backend.NewSet([]backend.Config{{ID: "echo", URL: back.URL}})
	require.NoError(t, err)
	h, err := sticky.New(set, newCookie(t), sticky.WithVia("edge"))
	require.NoError(t, err)
	srv := httptest.NewUnstartedServer(h)
	t.Cleanup(srv.Close)
	return srv, e
}

func TestViaIsExtended(t *testing.T) {
	srv, e := viaFront(t)
	srv.Start()
	for _, tc := range []struct {
		name string
		via  []string // the client's Via lines
		want []string // the backend's
	}{
		{"no Via", nil, []string{"1.1 edge"}},
		{"a foreign entry", []string{"1.0 upstream"}, []string{"1.0 upstream, 1.1 edge"}},
		{"foreign entries on two lines", []string{"1.0 a (Squid)", "HTTP/1.1 b:8080"}, []string{"1.0 a (Squid), HTTP/1.1 b:8080, 1.1 edge"}},
		{"a name that contains ours", []string{"1.1 edge2, 1.1 xedge, 1.1edge"}, []string{"1.1 edge2, 1.1 xedge, 1.1edge, 1.1 edge"}},
		{"ours as a protocol", []string{"edge 1.1"}, []string{"edge 1.1, 1.1 edge"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, srv.URL+"/", nil)
			require.NoError(t, err)
			for _, v := range tc.via {
				req.Header.Add("Via", v)
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			require.NoError(t, resp.Body.Close())
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, tc.want, e.take())
			assert.Empty(t, resp.Header.Values("Via"), "the response names the handler")
		})
	}
}

func TestViaKeepsTheProtocolVersion(t *testing.T) {
	srv, e := viaFront(t)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	resp, err := srv.Client().Get(srv.URL + "/")
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, 2, resp.ProtoMajor, "not an HTTP/2 request")
	assert.Equal(t, []string{"2 edge"}, e.take())
}

func TestHostileViaHeaders(t *testing.T) {
	srv, e := viaFront(t)
	srv.Start()
	huge := strings.Repeat("1.1 x, ", 100_000/7) + "1.1 x"
	for _, tc := range []struct {
		name   string
		via    string
		looped bool
		want   string // the backend's Via, if not the client's and ours
	}{
		{"huge", huge, false, ""},
		{"huge, then ours", huge + ", 1.1 edge", true, ""},
		{"many commas", strings.Repeat(",", 50_000), false, ""},
		{"many commas around ours", strings.Repeat(",", 20_000) + "1.1 edge" + strings.Repeat(",", 20_000), true, ""},
		{"no protocol", "edge", false, ""},
		{"blanks only", " \t ", false, "1.1 edge"},
		{"ours with a comment", "1.1 edge (affinity)", true, ""},
		{"ours with tabs", "1.0 x,\t1.1\t\tedge\t, 1.0 y", true, ""},
		{"ours after an unclosed comment", "1.1 a (oops, 1.1 edge", true, ""},
		{"ours after a stray quote", `1.1 a "oops, 1.1 edge`, true, ""},
		{"a long name that starts as ours", "1.1 edge" + strings.Repeat("e", 10_000), false, ""},
		{"non-ASCII", "1.1 édge, 1.1 \u00a0edge", false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, srv.URL+"/", nil)
			require.NoError(t, err)
			req.Header.Set("Via", tc.via)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			require.NoError(t, resp.Body.Close())
			got := e.take()
			if tc.looped {
				assert.Equal(t, http.StatusLoopDetected, resp.StatusCode)
				assert.Nil(t, got, "the request reached the backend")
				return
			}
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			want := tc.via + ", 1.1 edge"
			if tc.want != "" {
				want = tc.want
			}
			if assert.Len(t, got, 1) {
				assert.True(t, want == got[0], "the backend's Via (%d bytes) is not the client's and ours (%d)", len(got[0]), len(want))
			}
		})
	}
}

// lastRequest is a transport that answers every request at once and keeps
// the last one.
type lastRequest struct {
	mu  sync.Mutex
	req *http.Request
}

func (l *lastRequest) RoundTrip(req *http.Request) (*http.Response, error) {
	l.mu.Lock()
	l.req = req
	l.mu.Unlock()
	return answer{}.RoundTrip(req)
}

func (l *lastRequest) take() *http.Request {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.req
	l.req = nil
	return r
}

// carriesEntry is the specification of a Via line that carries the entry
// of the handler named name: one of its comma-separated parts is, split at
// spaces and tabs, a protocol and the name, and maybe more.
func carriesEntry(line, name string) bool {
	for _, part := range strings.Split(line, ",") {
		f := strings.FieldsFunc(part, func(r rune) bool { return r == ' ' || r == '\t' })
		if len(f) >= 2 && f[1] == name {
			return true
		}
	}
	return false
}

// FuzzVia holds the handler's reading of a Via line to its specification
// (carriesEntry): a line that carries the handler's entry is answered 508
// and not forwarded; any other is forwarded with the entry appended. And
// whatever comes before it, the entry the handler appends is found again.
func FuzzVia(f *testing.F) {
	for _, s := range []string{
		"", "1.1 edge", "1.0 a, 1.1 edge", "1.1 a (x, 1.1 edge)", "edge", "1.1edge", " \t1.1\t edge\t(c)",
		"1.1 edgee", "(, 1.1 edge", ",,,,", "2 edge,", "HTTP/2 edge:80", "1.1 \u00a0edge",
	} {
		f.Add(s)
	}
	set, err := backend.NewSet([]backend.Config{{ID: "app1", URL: "http://127.0.0.1:1"}})
	require.NoError(f, err)
	tr := &lastRequest{}
	h, err := sticky.New(set, newCookie(f), sticky.WithVia("edge"), sticky.WithTransport(tr))
	require.NoError(f, err)
	serve := func(line string) (int, *http.Request) {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Header["Via"] = []string{line}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code, tr.take()
	}
	f.Fuzz(func(t *testing.T, line string) {
		code, out := serve(line)
		if carriesEntry(line, "edge") {
			assert.Equal(t, http.StatusLoopDetected, code)
			assert.Nil(t, out, "a request that came back was forwarded")
		} else {
			assert.Equal(t, http.StatusOK, code)
			want := "1.1 edge"
			if line != "" {
				want = line + ", " + want
			}
			if assert.NotNil(t, out, "not forwarded") {
				assert.Equal(t, []string{want}, out.Header["Via"])
			}
		}
		code, out = serve(line + ", 1.1 edge")
		assert.Equal(t, http.StatusLoopDetected, code, "the handler's own entry went unseen")
		assert.Nil(t, out)
	})
}
