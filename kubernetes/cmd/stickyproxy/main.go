// Command stickyproxy is examples/stickyproxy, the sticky-session reverse
// proxy, whose backends are the pods of a Kubernetes Service: the
// endpoints of -k8s-service NAMESPACE/NAME:PORT, followed with the
// endpointslice package. A pod that is terminating but still serving
// keeps the clients bound to it and takes no new ones; one that stops
// serving, or goes, is removed.
//
// It takes stickyproxy's flags, but -backends and -weights, and these:
//
//	-k8s-service NAMESPACE/NAME:PORT  the Service and port (a name, or the
//	                                  pods' port number); required
//	-kubeconfig FILE                  the kubeconfig to reach the API server
//	                                  with; absent: the in-cluster
//	                                  configuration of the pod's service
//	                                  account
//
// See ../../README.md for a session and ../../deploy/example.yaml for the
// manifests.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/affinitylb/affinity/examples/stickyproxy/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	context.AfterFunc(ctx, stop) // a second signal kills at once
	var f k8sFlags
	os.Exit(cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr, f.extension()))
}
