package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/affinitylb/affinity/examples/stickyproxy/cli"
)

const (
	testKey   = "0123456789abcdef0123456789abcdef" // -key
	testToken = "t0ken-of-the-proxy"               // the kubeconfig's bearer token
	slicePath = "/apis/discovery.k8s.io/v1/namespaces/shop/endpointslices"
)

// syncBuffer is a bytes.Buffer safe for the proxy's goroutines to write
// while a test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// fakeAPIServer is an HTTPS server that answers, as the API server would,
// the list of namespace shop's EndpointSlices with slices, and a watch of
// them with no event until the test ends. It refuses a watch that would
// send the initial list as events, so that client-go falls back to list
// and watch.
type fakeAPIServer struct {
	url string
	ca  []byte // PEM of its certificate

	mu     sync.Mutex
	auth   []string // the Authorization header of each request
	query  []string // the label selector of each request
	slices []discoveryv1.EndpointSlice
}

func startFakeAPIServer(t *testing.T, slices ...discoveryv1.EndpointSlice) *fakeAPIServer {
	t.Helper()
	f := &fakeAPIServer{slices: slices}
	done := make(chan struct{})
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.auth = append(f.auth, r.Header.Get("Authorization"))
		f.query = append(f.query, r.URL.Query().Get("labelSelector"))
		f.mu.Unlock()
		if r.URL.Path != slicePath {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		switch q := r.URL.Query(); {
		case q.Get("watch") == "true" && q.Get("sendInitialEvents") == "true":
			w.WriteHeader(http.StatusBadRequest)
			json.NewEncoder(w).Encode(metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusFailure, Reason: metav1.StatusReasonBadRequest, Code: http.StatusBadRequest, Message: "no watch-list here"})
		case q.Get("watch") == "true":
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
			case <-done:
			}
		default:
			list := discoveryv1.EndpointSliceList{
				TypeMeta: metav1.TypeMeta{Kind: "EndpointSliceList", APIVersion: "discovery.k8s.io/v1"},
				ListMeta: metav1.ListMeta{ResourceVersion: "7"},
				Items:    f.slices,
			}
			json.NewEncoder(w).Encode(list)
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(done) }) // before srv.Close: it waits for the watches
	f.url = srv.URL
	f.ca = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	return f
}

// seen returns the Authorization headers and label selectors of the
// requests so far.
func (f *fakeAPIServer) seen() (auth, selectors []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.auth...), append([]string(nil), f.query...)
}

// writeKubeconfig writes a kubeconfig whose current context reaches api
// with testToken, and returns its path.
func writeKubeconfig(t *testing.T, api *fakeAPIServer) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: fake
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: proxy
  user:
    token: %s
contexts:
- name: fake
  context:
    cluster: fake
    user: proxy
current-context: fake
`, api.url, base64.StdEncoding.EncodeToString(api.ca), testToken)
	require.NoError(t, os.WriteFile(path, []byte(cfg), 0o600))
	return path
}

// slice returns an EndpointSlice of Service web, port http, with one
// ready endpoint: pod at ip:port.
func slice(pod, ip string, port int32) discoveryv1.EndpointSlice {
	yes, no := true, false
	name := "http"
	return discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name: "web-" + pod, Namespace: "shop", ResourceVersion: "7",
			Labels: map[string]string{discoveryv1.LabelServiceName: "web"},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{
			Addresses:  []string{ip},
			Conditions: discoveryv1.EndpointConditions{Ready: &yes, Serving: &yes, Terminating: &no},
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: "shop", Name: pod},
		}},
		Ports: []discoveryv1.EndpointPort{{Name: &name, Port: &port}},
	}
}

func TestFlags(t *testing.T) {
	kubeconfig := writeKubeconfig(t, startFakeAPIServer(t))
	garbage := filepath.Join(t.TempDir(), "garbage")
	require.NoError(t, os.WriteFile(garbage, []byte("clusters: [[[\n"), 0o600))
	t.Setenv("KUBERNETES_SERVICE_HOST", "") // not in a cluster
	t.Setenv("KUBERNETES_SERVICE_PORT", "")

	tests := []struct {
		name   string
		args   []string
		status int
		stderr string // contains
	}{
		{"no -k8s-service", []string{"-kubeconfig", kubeconfig}, 2, "-k8s-service NAMESPACE/NAME:PORT is required"},
		{"-k8s-service without a namespace", []string{"-k8s-service", "web:http"}, 2, `invalid value "web:http" for flag -k8s-service`},
		{"-k8s-service without a port", []string{"-k8s-service", "shop/web"}, 2, `invalid value "shop/web" for flag -k8s-service`},
		{"-k8s-service with port 0", []string{"-k8s-service", "shop/web:0"}, 2, `invalid value "shop/web:0" for flag -k8s-service`},
		{"-k8s-service empty", []string{"-k8s-service", ""}, 2, `invalid value "" for flag -k8s-service`},
		{"-kubeconfig missing", []string{"-k8s-service", "shop/web:http", "-kubeconfig", "/nonexistent/kubeconfig"}, 2, `invalid value "/nonexistent/kubeconfig" for -kubeconfig`},
		{"-kubeconfig not a kubeconfig", []string{"-k8s-service", "shop/web:http", "-kubeconfig", garbage}, 2, `invalid value "` + garbage + `" for -kubeconfig`},
		{"no -kubeconfig outside a cluster", []string{"-k8s-service", "shop/web:http"}, 2, "no -kubeconfig, and not in a cluster"},
		{"-backends too", []string{"-k8s-service", "shop/web:http", "-kubeconfig", kubeconfig, "-backends", "http://127.0.0.1:1"}, 2, `invalid value "http://127.0.0.1:1" for -backends: the membership source gives the backends`},
		{"-weights too", []string{"-k8s-service", "shop/web:http", "-kubeconfig", kubeconfig, "-weights", "app1=2"}, 2, "-weights names backends of -backends or the demo servers"},
		{"stickyproxy's own flags checked", []string{"-k8s-service", "shop/web:http", "-kubeconfig", kubeconfig, "-picker", "fastest"}, 2, `invalid value "fastest" for -picker`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			var f k8sFlags
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			status := cli.Main(ctx, append([]string{"-listen", "127.0.0.1:0"}, tt.args...), &stdout, &stderr, f.extension())
			assert.Equal(t, tt.status, status)
			assert.Contains(t, stderr.String(), tt.stderr)
			assert.True(t, strings.HasPrefix(stderr.String(), "stickyproxy: "), stderr.String())
			assert.Equal(t, 1, strings.Count(stderr.String(), "\n"), "one line: %q", stderr.String())
			assert.Empty(t, stdout.String(), "it did not start")
		})
	}
}

func TestHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	var f k8sFlags
	require.Equal(t, 0, cli.Main(t.Context(), []string{"-h"}, &stdout, &stderr, f.extension()))
	for _, want := range []string{"  -k8s-service NAMESPACE/NAME:PORT\n", "  -kubeconfig file\n", "  -listen address\n", "  -policy policy\n"} {
		assert.Contains(t, stdout.String(), want)
	}
	assert.Empty(t, stderr.String())
}

// listeningOn matches the proxy's and the admin API's addresses in its
// startup summary.
var (
	listeningOn = regexp.MustCompile(`stickyproxy listening on (http://\S+)`)
	adminOn     = regexp.MustCompile(`admin API on (http://\S+) `)
)

func TestFollowsTheService(t *testing.T) {
	pod := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "served by web-0\n")
	}))
	t.Cleanup(pod.Close)
	u, err := url.Parse(pod.URL)
	require.NoError(t, err)
	port, err := strconv.Atoi(u.Port())
	require.NoError(t, err)
	api := startFakeAPIServer(t, slice("web-0", "127.0.0.1", int32(port)))

	ctx, cancel := context.WithCancel(t.Context())
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	done := make(chan int, 1)
	var f k8sFlags
	go func() {
		done <- cli.Main(ctx, []string{"-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0", "-key", testKey,
			"-k8s-service", "shop/web:http", "-kubeconfig", writeKubeconfig(t, api)}, stdout, stderr, f.extension())
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			t.Error("the proxy did not stop")
		}
	})

	var proxyURL, adminURL string
	require.Eventually(t, func() bool {
		out := stdout.String()
		p, a := listeningOn.FindStringSubmatch(out), adminOn.FindStringSubmatch(out)
		if p == nil || a == nil {
			return false
		}
		proxyURL, adminURL = p[1], a[1]
		return true
	}, 10*time.Second, 10*time.Millisecond, "stdout:\n%s\nstderr:\n%s", stdout, stderr)

	// Once the source has listed the slice, the pod is the backend, named
	// after it.
	client := &http.Client{Timeout: 5 * time.Second}
	var body string
	require.Eventually(t, func() bool {
		resp, err := client.Get(proxyURL + "/")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		body = string(b)
		return resp.StatusCode == http.StatusOK
	}, 10*time.Second, 10*time.Millisecond, "stderr:\n%s", stderr)
	assert.Equal(t, "served by web-0\n", body)

	resp, err := client.Get(adminURL + "/backends")
	require.NoError(t, err)
	defer resp.Body.Close()
	var bs []struct {
		ID  string `json:"id"`
		URL string `json:"url"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&bs))
	require.Len(t, bs, 1)
	assert.Equal(t, "web-0", bs[0].ID)
	assert.Equal(t, pod.URL, bs[0].URL)

	// The proxy reached the API server as the kubeconfig says, for the
	// Service's slices only.
	auth, selectors := api.seen()
	require.NotEmpty(t, auth)
	for i := range auth {
		assert.Equal(t, "Bearer "+testToken, auth[i])
		assert.Equal(t, discoveryv1.LabelServiceName+"=web", selectors[i])
	}

	cancel()
	select {
	case code := <-done:
		done <- code // for the cleanup
		assert.Equal(t, 0, code, "stderr:\n%s", stderr)
	case <-time.After(15 * time.Second):
		t.Fatal("the proxy did not stop")
	}
}
