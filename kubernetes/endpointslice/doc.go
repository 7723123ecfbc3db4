// Package endpointslice is a [backend.Source] that follows the
// EndpointSlices of one Kubernetes Service, so that an affinity backend set
// has the Service's pods as backends, and a terminating pod drains the
// clients bound to it instead of vanishing.
//
// A [Source] watches the slices labelled kubernetes.io/service-name=NAME in
// the Service's namespace with a client-go informer and, for every endpoint
// that has the chosen port, maps its conditions to the membership:
//
//	ready, not terminating        a backend
//	terminating and serving       a backend with Draining: it keeps its
//	                              clients and takes no new ones
//	not serving, or not listed    absent: the set removes it
//
// A nil ready counts as true and a nil terminating as false, as the API
// says; a nil serving takes ready's value, so an endpoint that is
// terminating and not ready is drained only when it says it serves.
//
// The backend's ID is the pod's name from the endpoint's targetRef, so a
// new pod that gets a former pod's IP does not inherit its clients, and a
// StatefulSet pod that comes back under its name gets them back. A pod of
// another namespace than the Service's is NAMESPACE_NAME. An endpoint
// without a Pod targetRef is ADDRESS_PORT, an IPv6 address with its colons
// as dashes. Kubernetes names never contain an underscore, so these never
// meet a pod's name. A name that is not a valid backend ID (longer than 64
// characters, or with other characters than [A-Za-z0-9._-]) becomes its
// first 47 valid characters, the others as dashes, a dash, and 16 hex
// digits of its SHA-256: the same in every process, and distinct.
//
// The URL is SCHEME://ADDRESS:PORT, an IPv6 address in brackets, an FQDN
// slice's address as the host name. Only the first of an endpoint's
// addresses is used, as kube-proxy does. The endpoint's zone and node are
// the backend's metadata "zone" and "node".
//
// A pod listed more than once (in two slices while the EndpointSlice
// controller moves it, or in an IPv4 and an IPv6 slice of a dual-stack
// Service) is one backend, with the best of its conditions and the address
// of [Config.Family] if it has a usable one there. A backend that leaves
// every slice stays, draining, for [Config.RemoveDelay] before it is
// removed, so that an endpoint moved from one slice to another is not
// removed and added back between the two updates; unless another listed
// endpoint has its address (a new pod with the old one's IP), whose
// clients must not reach the new pod under the old one's name.
//
// The first membership is delivered once the informer has listed the
// slices; a burst of changes may be delivered as one, and a membership
// equal to the last one delivered is not delivered again. While the API
// server cannot be reached the last membership stays, the first failure is
// logged at Warn (the others at Debug) and the return at Info, and the
// informer retries with client-go's back-off; the
// membership the API server has on its return is delivered when it
// differs.
package endpointslice
