// Package scenarios holds no code: its tests run the whole chain against a
// real API server, as a user deploys it. An EndpointSlice source feeds a
// backend set, a sticky handler with a cookie policy serves clients with
// cookie jars of their own, and the backends are HTTP servers on
// 127.0.0.1 that answer with their pod's name. Each test plays a change a
// Kubernetes cluster makes (a pod terminating, a pod replaced at the same
// address, a scale-out and scale-in under load, the API server away) and
// checks who serves which client through it.
//
// The tests skip without etcd and kube-apiserver, unless
// AFFINITY_REQUIRE_K8S=1; see the apiservertest package.
package scenarios
