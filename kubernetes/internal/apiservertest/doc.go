// Package apiservertest runs a real Kubernetes control plane for tests: an
// etcd and a kube-apiserver, each a child process listening on free
// 127.0.0.1 ports, with their data, certificates and logs in the test's
// temporary directory.
//
// [Start] returns once the API server's /readyz answers, and stops both
// processes when the test ends. [Server.Config] and [Server.Client] reach it
// as a cluster administrator. [Server.Stop] and [Server.Restart] take the
// API server away and bring it back on the same address and serving
// certificate, with etcd and its data kept, so that clients and informers
// built before the stop reconnect by themselves.
//
// Only the API server runs: no controller manager, scheduler or kubelet.
// Nothing writes EndpointSlices but the test, Pods are never scheduled, and
// a deleted Namespace stays Terminating. The ServiceAccount admission
// plugin is off, so that Pods can be created in a namespace without a
// "default" ServiceAccount.
//
// The binaries are found as follows; when one is missing, [Start] skips the
// test, or fails it when AFFINITY_REQUIRE_K8S=1:
//   - etcd: on PATH (Debian: apt-get install etcd-server).
//   - kube-apiserver: $KUBE_APISERVER, else on PATH, else
//     $(go env GOPATH)/bin/kube-apiserver. The repository's
//     .ci/kube-apiserver script builds it from the Go module proxy.
//
// The package works on Linux only: the children are placed in process
// groups of their own and killed with the test process.
package apiservertest
