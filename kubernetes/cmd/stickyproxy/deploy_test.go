package main

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"

	"github.com/affinitylb/affinity/examples/stickyproxy/cli"
	"github.com/affinitylb/affinity/kubernetes/endpointslice"
)

// exampleManifest is the sample manifest the README points to.
const exampleManifest = "../../deploy/example.yaml"

// decodeManifest decodes every document of the YAML file at path as
// client-go's scheme does, strictly: an unknown or duplicate field fails.
func decodeManifest(t *testing.T, path string) []runtime.Object {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	dec := json.NewSerializerWithOptions(json.DefaultMetaFactory, scheme.Scheme, scheme.Scheme, json.SerializerOptions{Yaml: true, Strict: true})
	r := utilyaml.NewYAMLReader(bufio.NewReader(f))
	var objs []runtime.Object
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return objs
		}
		require.NoError(t, err)
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		obj, _, err := dec.Decode(doc, nil, nil)
		require.NoError(t, err, "document %d:\n%s", len(objs)+1, doc)
		objs = append(objs, obj)
	}
}

// stripComments returns doc without its comment lines.
func stripComments(doc []byte) []byte {
	var out []byte
	for line := range bytes.Lines(doc) {
		if !bytes.HasPrefix(bytes.TrimSpace(line), []byte("#")) {
			out = append(out, line...)
		}
	}
	return out
}

// find returns the object of type T named name in objs.
func find[T runtime.Object](t *testing.T, objs []runtime.Object, name string) T {
	t.Helper()
	for _, o := range objs {
		if v, ok := o.(T); ok {
			if m, ok := o.(interface{ GetName() string }); ok && m.GetName() == name {
				return v
			}
		}
	}
	var zero T
	t.Fatalf("no %T named %q in %s", zero, name, exampleManifest)
	return zero
}

func TestExampleManifest(t *testing.T) {
	objs := decodeManifest(t, exampleManifest)
	var kinds []string
	for _, o := range objs {
		kinds = append(kinds, o.GetObjectKind().GroupVersionKind().Kind)
	}
	assert.Equal(t, []string{"Namespace", "ConfigMap", "Deployment", "Service", "ServiceAccount", "Role", "RoleBinding", "Deployment", "Service"}, kinds)

	// The application: three replicas that keep serving, terminating, for
	// a while shorter than their grace period.
	web := find[*appsv1.Deployment](t, objs, "web")
	require.NotNil(t, web.Spec.Replicas)
	assert.EqualValues(t, 3, *web.Spec.Replicas)
	pod := web.Spec.Template.Spec
	require.Len(t, pod.Containers, 1)
	app := pod.Containers[0]
	require.NotNil(t, app.Lifecycle)
	require.NotNil(t, app.Lifecycle.PreStop)
	require.NotNil(t, app.Lifecycle.PreStop.Sleep, "a preStop sleep")
	require.NotNil(t, pod.TerminationGracePeriodSeconds)
	assert.Greater(t, *pod.TerminationGracePeriodSeconds, app.Lifecycle.PreStop.Sleep.Seconds, "the grace period outlasts the drain")
	assert.NotNil(t, app.ReadinessProbe)

	// Its Service names the port the proxy follows.
	svc := find[*corev1.Service](t, objs, "web")
	assert.Equal(t, web.Spec.Selector.MatchLabels, svc.Spec.Selector)

	// The proxy may read the EndpointSlices of its namespace, and only
	// that.
	proxy := find[*appsv1.Deployment](t, objs, "stickyproxy")
	ppod := proxy.Spec.Template.Spec
	sa := find[*corev1.ServiceAccount](t, objs, ppod.ServiceAccountName)
	binding := find[*rbacv1.RoleBinding](t, objs, "stickyproxy-endpointslices")
	assert.Equal(t, []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa.Name, Namespace: proxy.Namespace}}, binding.Subjects)
	assert.Equal(t, proxy.Namespace, binding.Namespace)
	require.Equal(t, "Role", binding.RoleRef.Kind)
	role := find[*rbacv1.Role](t, objs, binding.RoleRef.Name)
	assert.Equal(t, proxy.Namespace, role.Namespace)
	assert.Equal(t, []rbacv1.PolicyRule{{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: []string{"get", "list", "watch"}}}, role.Rules)

	// Its command line is valid, and names the application's Service and
	// port: outside a cluster, it stops only for the missing in-cluster
	// configuration.
	require.Len(t, ppod.Containers, 1)
	args := ppod.Containers[0].Args
	var service string
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "-k8s-service="); ok {
			service = v
		}
	}
	s, err := endpointslice.ParseService(service)
	require.NoError(t, err, "-k8s-service in %q", args)
	assert.Equal(t, endpointslice.Service{Namespace: web.Namespace, Name: svc.Name, Port: "http"}, s)
	assert.True(t, slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == s.Port }), "port %q of Service %s", s.Port, svc.Name)
	assert.True(t, slices.ContainsFunc(app.Ports, func(p corev1.ContainerPort) bool { return p.Name == s.Port }), "port %q of the pods", s.Port)

	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	t.Setenv("KUBERNETES_SERVICE_PORT", "")
	var stdout, stderr bytes.Buffer
	var f k8sFlags
	assert.Equal(t, 2, cli.Main(t.Context(), args, &stdout, &stderr, f.extension()))
	assert.Equal(t, "stickyproxy: no -kubeconfig, and not in a cluster: "+rest.ErrNotInCluster.Error()+"\n", stderr.String())
}
