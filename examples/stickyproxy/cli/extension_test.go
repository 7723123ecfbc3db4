package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/internal/demoapp"
)

// listSource is a backend.Source that delivers the lists a test gives it.
type listSource struct {
	lists   chan []backend.Config
	applied chan struct{} // once the set has taken a list
	fail    chan error    // Run returns what it receives
}

func newListSource() *listSource {
	return &listSource{lists: make(chan []backend.Config), applied: make(chan struct{}), fail: make(chan error)}
}

func (s *listSource) Run(ctx context.Context, update func([]backend.Config)) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-s.fail:
			return err
		case l := <-s.lists:
			update(l) // Set.Sync's update: the set has the list when it returns
			select {
			case s.applied <- struct{}{}:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
}

// deliver gives the proxy's set l and waits until the set has it.
func (s *listSource) deliver(t *testing.T, l ...backend.Config) {
	t.Helper()
	select {
	case s.lists <- l:
	case <-time.After(10 * time.Second):
		t.Fatal("the proxy did not run the source")
	}
	<-s.applied
}

// sourceOf returns an Extension whose membership is src.
func sourceOf(src backend.Source) Extension {
	return Extension{Source: func(*slog.Logger) (backend.Source, error) { return src, nil }}
}

// demoServers starts a demo app for each name and returns their URLs by
// name.
func demoServers(t *testing.T, names ...string) map[string]string {
	t.Helper()
	urls := map[string]string{}
	for _, name := range names {
		srv := httptest.NewServer(demoapp.New(name))
		t.Cleanup(srv.Close)
		urls[name] = srv.URL
	}
	return urls
}

func TestExtensionFlagsInHelp(t *testing.T) {
	var got string
	ext := Extension{Flags: func(fs *flag.FlagSet) {
		fs.StringVar(&got, "extra-service", "", "`NAME` of the service to follow")
	}}
	var stdout, stderr bytes.Buffer
	require.Equal(t, 0, runWith(t.Context(), []string{"-h"}, &stdout, &stderr, ext, nil))
	assert.Contains(t, stdout.String(), "  -extra-service NAME\n    \tNAME of the service to follow\n")
	assert.Contains(t, stdout.String(), "  -backends list\n", "stickyproxy's own flags too")
	assert.Empty(t, stderr.String())

	// The usage is stickyproxy's, with the extension's flag added.
	var plain bytes.Buffer
	require.Equal(t, 0, run(t.Context(), []string{"-h"}, &plain, &stderr, nil))
	assert.Equal(t, plain.String(), strings.Replace(stdout.String(), "  -extra-service NAME\n    \tNAME of the service to follow\n", "", 1))
}

func TestExtensionExitStatus(t *testing.T) {
	failing := Extension{Source: func(*slog.Logger) (backend.Source, error) { return nil, errors.New("no such service") }}
	refusing := Extension{Flags: func(fs *flag.FlagSet) {
		fs.Func("extra-service", "a `NAME`", func(s string) error {
			if s == "" {
				return errors.New("empty")
			}
			return nil
		})
	}}
	tests := []struct {
		name   string
		ext    Extension
		args   []string
		status int
		stderr string // contains
	}{
		{"-backends with a source", sourceOf(newListSource()), []string{"-backends", "http://127.0.0.1:1"}, 2, `invalid value "http://127.0.0.1:1" for -backends: the membership source gives the backends; not both`},
		{"-weights with a source", sourceOf(newListSource()), []string{"-weights", "app1=2"}, 2, "-weights names backends of -backends or the demo servers; not with a membership source"},
		{"the source's error", failing, nil, 2, "stickyproxy: no such service"},
		{"a value the extension's flag refuses", refusing, []string{"-extra-service="}, 2, `invalid value "" for flag -extra-service: empty`},
		{"stickyproxy's own checks first", sourceOf(newListSource()), []string{"-picker", "fastest"}, 2, `"fastest"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			status := runWith(ctx, tt.args, &stdout, &stderr, tt.ext, func(listening) { t.Error("proxy started") })
			assert.Equal(t, tt.status, status)
			assert.Contains(t, stderr.String(), tt.stderr)
			assert.Equal(t, 1, strings.Count(stderr.String(), "\n"), "one line: %q", stderr.String())
		})
	}
}

func TestExtensionNilSourceKeepsTheDemo(t *testing.T) {
	var called bool
	ext := Extension{Source: func(*slog.Logger) (backend.Source, error) { called = true; return nil, nil }}
	p := startProxyWith(t, ext, "-key", testKey)
	assert.True(t, called)
	for _, want := range []string{"app1", "app2", "app3"} {
		assert.Contains(t, p.stdout.String(), want)
	}
	_, server, _ := send(t, newClient(t), p.url+"/whoami", nil)
	assert.Contains(t, []string{"app1", "app2", "app3"}, server)
	assert.Equal(t, 0, p.stop(t))
}

func TestExtensionSourceDrivesTheSet(t *testing.T) {
	urls := demoServers(t, "one", "two", "three")
	src := newListSource()
	var flagValue string
	ext := sourceOf(src)
	ext.Flags = func(fs *flag.FlagSet) { fs.StringVar(&flagValue, "extra-service", "", "a `NAME`") }
	p := startProxyWith(t, ext, "-key", testKey, "-admin", "127.0.0.1:0", "-extra-service", "web")
	assert.Equal(t, "web", flagValue)
	assert.Contains(t, p.stdout.String(), "backends:\n  none yet: the membership source gives them\n")

	// The set starts empty: no demo servers.
	status, _, _ := send(t, newClient(t), p.url+"/whoami", nil)
	assert.Equal(t, http.StatusServiceUnavailable, status)
	assert.Empty(t, listBackends(t, p))

	src.deliver(t, backend.Config{ID: "one", URL: urls["one"]}, backend.Config{ID: "two", URL: urls["two"]})
	assert.Equal(t, []string{"one", "two"}, ids(listBackends(t, p)))
	alice := newClient(t)
	_, home, _ := send(t, alice, p.url+"/", nil)
	require.Contains(t, []string{"one", "two"}, home)
	send(t, alice, p.url+"/login", url.Values{"name": {"alice"}})
	other := map[string]string{"one": "two", "two": "one"}[home]

	// The source says alice's backend is draining: she stays, new clients
	// go elsewhere, to the others, the new one included.
	src.deliver(t,
		backend.Config{ID: home, URL: urls[home], Draining: true},
		backend.Config{ID: other, URL: urls[other]},
		backend.Config{ID: "three", URL: urls["three"]})
	assert.Equal(t, "draining", stateOf(t, p, home))
	for i := range 5 {
		_, server, body := send(t, alice, p.url+"/whoami", nil)
		assert.Equal(t, "server="+home+" user=alice\n", body, "request %d", i)
		assert.Equal(t, home, server)
	}
	newcomers := newClientsReach(t, p, "/whoami", 10)
	assert.NotContains(t, newcomers, home)
	assert.Subset(t, []string{other, "three"}, newcomers)

	// The admin API leaves the membership to the source, but drains.
	for _, req := range [][2]string{{http.MethodPost, "/backends"}, {http.MethodDelete, "/backends/" + other}} {
		status, body := callAdmin(t, p, req[0], req[1], fmt.Sprintf(`{"url": %q, "id": "four"}`, urls["three"]))
		assert.Equal(t, http.StatusConflict, status, "%s %s", req[0], req[1])
		assert.Contains(t, body, "the backends are the membership source's", "%s %s", req[0], req[1])
	}
	status, body := callAdmin(t, p, http.MethodPost, "/backends/three/drain", `{"timeout": "1h"}`)
	assert.Equal(t, http.StatusAccepted, status, body)
	assert.Equal(t, "draining", stateOf(t, p, "three"))

	// The source drops alice's backend: she is placed anew, on the backend
	// that takes new clients.
	src.deliver(t, backend.Config{ID: other, URL: urls[other]}, backend.Config{ID: "three", URL: urls["three"]})
	assert.Equal(t, []string{other, "three"}, ids(listBackends(t, p)))
	_, server, body := send(t, alice, p.url+"/whoami", nil)
	assert.Equal(t, other, server)
	assert.Equal(t, "server="+other+" user=\n", body)

	assert.Equal(t, 0, p.stop(t), "stderr:\n%s", p.stderr)
}

func TestExtensionSourceFailure(t *testing.T) {
	src := newListSource()
	p := startProxyWith(t, sourceOf(src), "-key", testKey)
	src.fail <- errors.New("watch refused")
	select {
	case code := <-p.done:
		close(p.done) // for p.stop in the cleanup
		assert.Equal(t, 1, code)
	case <-time.After(15 * time.Second):
		t.Fatal("the proxy did not stop when its source failed")
	}
	assert.Contains(t, p.stderr.String(), "membership source: watch refused")
}
