//go:build linux

package apiservertest

import (
	"fmt"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
)

// waitTimeout bounds each wait for an event: generous, as the machine may
// be loaded; a working server delivers in well under a second.
const waitTimeout = time.Minute

// TestServer runs the control plane, writes an EndpointSlice of the shape
// the kubernetes/ module's tests use, reads it back through an informer,
// and checks that the informer keeps it while the API server is stopped
// and sees a change made after Restart. Once the test is over, neither process is
// left running.
func TestServer(t *testing.T) {
	var pids []int
	t.Run("control plane", func(t *testing.T) {
		begin := time.Now()
		s := Start(t)
		t.Logf("Start took %v", time.Since(begin).Round(time.Millisecond))
		pids = []int{s.etcd.cmd.Process.Pid, s.api.cmd.Process.Pid}
		testServer(t, s)
	})
	for _, pid := range pids {
		assert.ErrorIs(t, syscall.Kill(pid, 0), syscall.ESRCH, "process %d still exists after the test", pid)
	}
}

func testServer(t *testing.T, s *Server) {
	ctx := t.Context()
	client := s.Client()
	const ns, svc = "apiservertest", "web"

	_, err := client.CoreV1().Namespaces().Create(ctx,
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = client.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: svc},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{
			Name: "http", Port: 80, Protocol: corev1.ProtocolTCP,
		}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)

	want := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name:   svc + "-1",
			Labels: map[string]string{discoveryv1.LabelServiceName: svc},
		},
		AddressType: discoveryv1.AddressTypeFQDN,
		Endpoints: []discoveryv1.Endpoint{
			endpoint("web-0", true, true, false),
			endpoint("web-1", false, true, true),
		},
		Ports: []discoveryv1.EndpointPort{{
			Name: ptr.To("http"), Port: ptr.To[int32](8080), Protocol: ptr.To(corev1.ProtocolTCP),
		}},
	}
	_, err = client.DiscoveryV1().EndpointSlices(ns).Create(ctx, want, metav1.CreateOptions{})
	require.NoError(t, err)

	// An informer, as a membership source runs one. It resumes after the
	// restart by listing again: a bare watch from a resource version
	// before the stop would end with 410 Gone, as the new server's watch
	// cache starts at the newest resource version.
	slices := make(chan *discoveryv1.EndpointSlice, 100)
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(ns))
	informer := factory.Discovery().V1().EndpointSlices()
	_, err = informer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { slices <- obj.(*discoveryv1.EndpointSlice) },
		UpdateFunc: func(_, obj any) { slices <- obj.(*discoveryv1.EndpointSlice) },
	})
	require.NoError(t, err)
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop); factory.Shutdown() })
	factory.Start(stop)

	got := waitSlice(t, slices, func(*discoveryv1.EndpointSlice) bool { return true })
	assert.Equal(t, want.Name, got.Name)
	assert.Equal(t, want.AddressType, got.AddressType)
	assert.Equal(t, want.Endpoints, got.Endpoints)
	assert.Equal(t, want.Ports, got.Ports)

	begin := time.Now()
	s.Stop()
	t.Logf("Stop took %v", time.Since(begin).Round(time.Millisecond))
	_, err = client.DiscoveryV1().EndpointSlices(ns).Get(ctx, want.Name, metav1.GetOptions{})
	require.Error(t, err, "a request to a stopped API server")
	cached, err := informer.Lister().EndpointSlices(ns).Get(want.Name)
	require.NoError(t, err, "the informer's cache keeps the slice while the server is away")
	assert.Equal(t, want.Endpoints, cached.Endpoints)

	begin = time.Now()
	s.Restart()
	t.Logf("Restart took %v", time.Since(begin).Round(time.Millisecond))
	stored, err := client.DiscoveryV1().EndpointSlices(ns).Get(ctx, want.Name, metav1.GetOptions{})
	require.NoError(t, err, "the slice survives a restart, etcd being kept")
	assert.Equal(t, want.Endpoints, stored.Endpoints)

	stored.Endpoints[0] = endpoint("web-0", false, true, true)
	stored.Endpoints = append(stored.Endpoints, endpoint("web-2", true, true, false))
	updated, err := client.DiscoveryV1().EndpointSlices(ns).Update(ctx, stored, metav1.UpdateOptions{})
	require.NoError(t, err)

	seen := waitSlice(t, slices, func(s *discoveryv1.EndpointSlice) bool {
		return s.ResourceVersion == updated.ResourceVersion
	})
	assert.Equal(t, updated.Endpoints, seen.Endpoints, "the informer resumed after the restart")
}

// endpoint returns an endpoint web-N.test.example of pod web-N with the
// given conditions.
func endpoint(pod string, ready, serving, terminating bool) discoveryv1.Endpoint {
	return discoveryv1.Endpoint{
		Addresses: []string{pod + ".test.example"},
		Conditions: discoveryv1.EndpointConditions{
			Ready: &ready, Serving: &serving, Terminating: &terminating,
		},
		TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: "apiservertest", Name: pod},
	}
}

// waitSlice returns the first slice from ch that match accepts.
func waitSlice(t *testing.T, ch <-chan *discoveryv1.EndpointSlice, match func(*discoveryv1.EndpointSlice) bool) *discoveryv1.EndpointSlice {
	t.Helper()
	deadline := time.After(waitTimeout)
	for {
		select {
		case s := <-ch:
			if match(s) {
				return s
			}
		case <-deadline:
			t.Fatalf("no matching EndpointSlice from the informer within %v", waitTimeout)
			return nil
		}
	}
}

// recorder is a testing.TB that records Skipf and Fatalf instead of
// acting on the test; both end the goroutine that calls them, as the real
// ones do.
type recorder struct {
	testing.TB
	skipped, failed bool
	msg             string
}

func (r *recorder) Skipf(format string, args ...any) {
	r.skipped = true
	r.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = true
	r.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// TestStartWithoutBinaries checks that Start skips a test when etcd and
// kube-apiserver are missing, saying how to get them, and fails it instead
// when AFFINITY_REQUIRE_K8S=1.
func TestStartWithoutBinaries(t *testing.T) {
	for _, tc := range []struct {
		require              string
		wantSkip, wantFailed bool
	}{
		{require: "", wantSkip: true},
		{require: "0", wantSkip: true},
		{require: "1", wantFailed: true},
	} {
		t.Run("AFFINITY_REQUIRE_K8S="+tc.require, func(t *testing.T) {
			empty := t.TempDir()
			t.Setenv("PATH", empty)
			t.Setenv("KUBE_APISERVER", "")
			t.Setenv("GOPATH", empty)
			t.Setenv(requireEnv, tc.require)
			r := &recorder{TB: t}
			done := make(chan struct{})
			go func() {
				defer close(done)
				Start(r)
				r.msg = "Start returned"
			}()
			<-done
			assert.Equal(t, tc.wantSkip, r.skipped, r.msg)
			assert.Equal(t, tc.wantFailed, r.failed, r.msg)
			assert.Contains(t, r.msg, "apt-get install etcd-server")
			assert.Contains(t, r.msg, ".ci/kube-apiserver")
		})
	}
}
