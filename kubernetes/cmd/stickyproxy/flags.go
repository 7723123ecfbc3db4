package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/examples/stickyproxy/cli"
	"github.com/affinitylb/affinity/kubernetes/endpointslice"
)

// userAgent is how the proxy names itself to the API server.
const userAgent = "affinity-stickyproxy"

// k8sFlags is the values of -k8s-service and -kubeconfig.
type k8sFlags struct {
	service    endpointslice.Service
	given      bool // -k8s-service was given and valid
	kubeconfig string
}

// extension returns the Extension that defines the flags into f and
// builds the endpointslice source from them.
func (f *k8sFlags) extension() cli.Extension {
	return cli.Extension{Flags: f.register, Source: f.source}
}

// register defines -k8s-service and -kubeconfig on fs.
func (f *k8sFlags) register(fs *flag.FlagSet) {
	fs.Func("k8s-service", "`NAMESPACE/NAME:PORT` of the Kubernetes Service whose ready pods are the backends, PORT\nthe port's name or the pods' port number; a terminating pod still serving drains; required", func(s string) error {
		svc, err := endpointslice.ParseService(s)
		if err != nil {
			return err
		}
		f.service, f.given = svc, true
		return nil
	})
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig `file` to reach the API server with, its current context;\nempty: the in-cluster configuration, the pod's service account")
}

// source returns the endpointslice source of -k8s-service, reaching the
// API server as -kubeconfig says. Its errors are one line, naming the flag.
func (f *k8sFlags) source(logger *slog.Logger) (backend.Source, error) {
	if !f.given {
		return nil, errors.New("-k8s-service NAMESPACE/NAME:PORT is required: the Service whose pods are the backends")
	}
	rc, err := f.restConfig()
	if err != nil {
		return nil, err
	}
	rc.UserAgent = userAgent
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return endpointslice.New(endpointslice.Config{Client: client, Service: f.service, Logger: logger})
}

// restConfig returns the client configuration of -kubeconfig, or the
// in-cluster one without it.
func (f *k8sFlags) restConfig() (*rest.Config, error) {
	if f.kubeconfig == "" {
		rc, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("no -kubeconfig, and not in a cluster: %w", err)
		}
		return rc, nil
	}
	rc, err := clientcmd.BuildConfigFromFlags("", f.kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("invalid value %q for -kubeconfig: %w", f.kubeconfig, err)
	}
	return rc, nil
}
