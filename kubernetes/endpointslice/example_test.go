package endpointslice_test

import (
	"context"
	"fmt"
	"log"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"

	"github.com/affinitylb/affinity/backend"
	"github.com/affinitylb/affinity/kubernetes/endpointslice"
)

// A Source follows the Service shop/web's port http. Here the clientset is
// a fake holding one slice, with web-0 ready and web-1 terminating; in a
// cluster it comes from kubernetes.NewForConfig. A program would run
// set.Sync(ctx, src) with a backend.Set instead of printing.
func Example() {
	pod := func(name, ip string, terminating bool) discoveryv1.Endpoint {
		return discoveryv1.Endpoint{
			Addresses: []string{ip},
			Conditions: discoveryv1.EndpointConditions{
				Ready:       ptr.To(!terminating),
				Serving:     ptr.To(true),
				Terminating: ptr.To(terminating),
			},
			TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: "shop", Name: name},
		}
	}
	client := fake.NewClientset(&discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name:      "web-abcde",
			Namespace: "shop",
			Labels:    map[string]string{discoveryv1.LabelServiceName: "web"},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080)}},
		Endpoints:   []discoveryv1.Endpoint{pod("web-0", "10.1.0.7", false), pod("web-1", "10.1.0.8", true)},
	})

	svc, err := endpointslice.ParseService("shop/web:http")
	if err != nil {
		log.Fatal(err)
	}
	src, err := endpointslice.New(endpointslice.Config{Client: client, Service: svc})
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	err = src.Run(ctx, func(cfgs []backend.Config) {
		for _, c := range cfgs {
			fmt.Printf("%s %s draining=%t\n", c.ID, c.URL, c.Draining)
		}
		cancel() // one membership is enough here
	})
	fmt.Println(err)
	// Output:
	// web-0 http://10.1.0.7:8080 draining=false
	// web-1 http://10.1.0.8:8080 draining=true
	// context canceled
}
