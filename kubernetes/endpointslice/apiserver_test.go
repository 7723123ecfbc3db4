package endpointslice

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/kubernetes/internal/apiservertest"
)

// TestAPIServer runs a Source against a real API server into a backend
// set, and checks that the set follows the Service's slice: a pod that
// becomes terminating is draining, and once the slice drops it, it is
// removed while the others stay as they were. The slice is FQDN, as the
// API server refuses loopback IPs; nothing dials the backends.
func TestAPIServer(t *testing.T) {
	srv := apiservertest.Start(t)
	client := srv.Client()
	ctx := t.Context()
	const ns, name = "smoke", "web"

	_, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = client.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	pod := func(n string, terminating bool) discoveryv1.Endpoint {
		return discoveryv1.Endpoint{
			Addresses:  []string{n + ".test.example"},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(!terminating), Serving: ptr.To(true), Terminating: ptr.To(terminating)},
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: n},
		}
	}
	sl, err := client.DiscoveryV1().EndpointSlices(ns).Create(ctx, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: name + "-1", Labels: map[string]string{discoveryv1.LabelServiceName: name}},
		AddressType: discoveryv1.AddressTypeFQDN,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080), Protocol: ptr.To(corev1.ProtocolTCP)}},
		Endpoints:   []discoveryv1.Endpoint{pod("web-0", false), pod("web-1", false), pod("web-2", false)},
	}, metav1.CreateOptions{})
	require.NoError(t, err)

	src, err := New(Config{Client: client, Service: Service{Namespace: ns, Name: name, Port: "http"}, Logger: testLogger(t)})
	require.NoError(t, err)
	set, err := backend.NewSet(nil)
	require.NoError(t, err)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- set.Sync(runCtx, src) }()
	t.Cleanup(func() { cancel(); assert.ErrorIs(t, <-done, context.Canceled) })

	state := func() map[string]backend.State {
		m := map[string]backend.State{}
		for _, b := range set.Snapshot().Backends() {
			m[b.ID()] = b.State()
		}
		return m
	}
	// waitState waits for the set to be want, and returns how long after
	// since it was.
	waitState := func(want map[string]backend.State, since time.Time) time.Duration {
		t.Helper()
		require.EventuallyWithT(t, func(c *assert.CollectT) { assert.Equal(c, want, state()) }, time.Minute, 5*time.Millisecond)
		return time.Since(since)
	}
	waitState(map[string]backend.State{"web-0": backend.Healthy, "web-1": backend.Healthy, "web-2": backend.Healthy}, time.Now())
	urls := map[string]string{}
	for _, b := range set.Snapshot().Backends() {
		urls[b.ID()] = b.URL().String()
	}
	assert.Equal(t, map[string]string{
		"web-0": "http://web-0.test.example:8080",
		"web-1": "http://web-1.test.example:8080",
		"web-2": "http://web-2.test.example:8080",
	}, urls)

	sl.Endpoints[1] = pod("web-1", true)
	begin := time.Now()
	sl, err = client.DiscoveryV1().EndpointSlices(ns).Update(ctx, sl, metav1.UpdateOptions{})
	require.NoError(t, err)
	d := waitState(map[string]backend.State{"web-0": backend.Healthy, "web-1": backend.Draining, "web-2": backend.Healthy}, begin)
	t.Logf("terminating to draining: %v", d.Round(time.Millisecond))

	sl.Endpoints = []discoveryv1.Endpoint{sl.Endpoints[0], sl.Endpoints[2]}
	begin = time.Now()
	_, err = client.DiscoveryV1().EndpointSlices(ns).Update(ctx, sl, metav1.UpdateOptions{})
	require.NoError(t, err)
	d = waitState(map[string]backend.State{"web-0": backend.Healthy, "web-2": backend.Healthy}, begin)
	t.Logf("dropped from the slice to removed: %v (RemoveDelay %v)", d.Round(time.Millisecond), defaultRemoveDelay)
}
