package endpointslice

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"

	"github.com/affinitylb/affinity/backend"
)

const (
	v4   = discoveryv1.AddressTypeIPv4
	v6   = discoveryv1.AddressTypeIPv6
	fqdn = discoveryv1.AddressTypeFQDN
)

func TestMembership(t *testing.T) {
	longPod := strings.Repeat("p", 70)
	longSum := sha256.Sum256([]byte(longPod))
	tests := []struct {
		name   string
		cfg    func(*Config)
		slices []*discoveryv1.EndpointSlice
		want   []backend.Config
		listed []string // IDs listed, when not those of want
	}{
		{
			name:   "ready",
			slices: []*discoveryv1.EndpointSlice{slice("a", testSvc, v4, ep("10.0.0.1", "web-0"))},
			want:   []backend.Config{{ID: "web-0", URL: "http://10.0.0.1:8080"}},
		},
		{
			name:   "nil conditions: ready",
			slices: []*discoveryv1.EndpointSlice{slice("a", testSvc, v4, conds(ep("10.0.0.1", "web-0"), nil, nil, nil))},
			want:   []backend.Config{{ID: "web-0", URL: "http://10.0.0.1:8080"}},
		},
		{
			name:   "terminating and serving: draining",
			slices: []*discoveryv1.EndpointSlice{slice("a", testSvc, v4, terminating(ep("10.0.0.1", "web-0")))},
			want:   []backend.Config{{ID: "web-0", URL: "http://10.0.0.1:8080", Draining: true}},
		},
		{
			name:   "terminating, ready, serving (publishNotReadyAddresses): draining",
			slices: []*discoveryv1.EndpointSlice{slice("a", testSvc, v4, conds(ep("10.0.0.1", "web-0"), yes, yes, yes))},
			want:   []backend.Config{{ID: "web-0", URL: "http://10.0.0.1:8080", Draining: true}},
		},
		{
			name:   "terminating, serving nil, ready nil: draining",
			slices: []*discoveryv1.EndpointSlice{slice("a", testSvc, v4, conds(ep("10.0.0.1", "web-0"), nil, nil, yes))},
			want:   []backend.Config{{ID: "web-0", URL: "http://10.0.0.1:8080", Draining: true}},
		},
		{
			name:   "terminating, serving nil, not ready: absent",
			slices: []*discoveryv1.EndpointSlice{slice("a", testSvc, v4, conds(ep("10.0.0.1", "web-0"), no, nil, yes))},
			listed: []string{"web-0"},
		},
		{
			name:   "terminating, not serving: absent",
			slices: []*discoveryv1.EndpointSlice{slice("a", testSvc, v4, conds(ep("10.0.0.1", "web-0"), no, no, yes))},
			listed: []string{"web-0"},
		},
		{
			name:   "not ready, serving, not terminating: absent",
			slices: []*discoveryv1.EndpointSlice{slice("a", testSvc, v4, conds(ep("10.0.0.1", "web-0"), no, yes, no))},
			listed: []string{"web-0"},
		},
		{
			name:   "not ready, the rest nil: absent",
			slices: []*discoveryv1.EndpointSlice{slice("a", testSvc, v4, conds(ep("10.0.0.1", "web-0"), no, nil, nil))},
			listed: []string{"web-0"},
		},
		{
			name: "port by name among several",
			slices: []*discoveryv1.EndpointSlice{withPorts(slice("a", testSvc, v4, ep("10.0.0.1", "web-0")),
				discoveryv1.EndpointPort{Name: ptr.To("metrics"), Port: ptr.To[int32](9090)},
				discoveryv1.EndpointPort{Name: ptr.To("http"), Port: ptr.To[int32](8080)})},
			want: []backend.Config{{ID: "web-0", URL: "http://10.0.0.1:8080"}},
		},
		{
			name: "port by number",
			cfg:  func(c *Config) { c.Service.Port = "9090" },
			slices: []*discoveryv1.EndpointSlice{withPorts(slice("a", testSvc, v4, ep("10.0.0.1", "web-0")),
				discoveryv1.EndpointPort{Name: ptr.To("http"), Port: ptr.To[int32](8080)},
				discoveryv1.EndpointPort{Name: ptr.To("metrics"), Port: ptr.To[int32](9090)})},
			want: []backend.Config{{ID: "web-0", URL: "http://10.0.0.1:9090"}},
		},
		{
			name: "unnamed port by number",
			cfg:  func(c *Config) { c.Service.Port = "8080" },
			slices: []*discoveryv1.EndpointSlice{withPorts(slice("a", testSvc, v4, ep("10.0.0.1", "web-0")),
				discoveryv1.EndpointPort{Name: ptr.To(""), Port: ptr.To[int32](8080)})},
			want: []backend.Config{{ID: "web-0", URL: "http://10.0.0.1:8080"}},
		},
		{
			name: "a slice without the port: its endpoints are not listed",
			slices: []*discoveryv1.EndpointSlice{
				withPorts(slice("a", testSvc, v4, ep("10.0.0.1", "web-0")),
					discoveryv1.EndpointPort{Name: ptr.To("metrics"), Port: ptr.To[int32](9090)}),
				slice("b", testSvc, v4, ep("10.0.0.2", "web-1")),
			},
			want: []backend.Config{{ID: "web-1", URL: "http://10.0.0.2:8080"}},
		},
		{
			name: "a UDP port of the name is not the port",
			slices: []*discoveryv1.EndpointSlice{withPorts(slice("a", testSvc, v4, ep("10.0.0.1", "web-0")),
				discoveryv1.EndpointPort{Name: ptr.To("http"), Port: ptr.To[int32](8080), Protocol: ptr.To(corev1.ProtocolUDP)})},
		},
		{
			name: "a port without a number is not the port",
			slices: []*discoveryv1.EndpointSlice{withPorts(slice("a", testSvc, v4, ep("10.0.0.1", "web-0")),
				discoveryv1.EndpointPort{Name: ptr.To("http")})},
		},
		{
			name: "several slices merged, sorted by ID",
			slices: []*discoveryv1.EndpointSlice{
				slice("a", testSvc, v4, ep("10.0.0.3", "web-2"), ep("10.0.0.1", "web-0")),
				slice("b", testSvc, v4, terminating(ep("10.0.0.2", "web-1"))),
			},
			want: []backend.Config{
				{ID: "web-0", URL: "http://10.0.0.1:8080"},
				{ID: "web-1", URL: "http://10.0.0.2:8080", Draining: true},
				{ID: "web-2", URL: "http://10.0.0.3:8080"},
			},
		},
		{
			name: "a pod in two slices: the best condition",
			slices: []*discoveryv1.EndpointSlice{
				slice("a", testSvc, v4, terminating(ep("10.0.0.1", "web-0"))),
				slice("b", testSvc, v4, ep("10.0.0.1", "web-0")),
			},
			want: []backend.Config{{ID: "web-0", URL: "http://10.0.0.1:8080"}},
		},
		{
			name: "a pod in two slices, one listing not serving: the other",
			slices: []*discoveryv1.EndpointSlice{
				slice("a", testSvc, v4, conds(ep("10.0.0.1", "web-0"), no, no, yes)),
				slice("b", testSvc, v4, terminating(ep("10.0.0.1", "web-0"))),
			},
			want: []backend.Config{{ID: "web-0", URL: "http://10.0.0.1:8080", Draining: true}},
		},
		{
			name: "dual-stack: IPv4 by default",
			slices: []*discoveryv1.EndpointSlice{
				slice("v6", testSvc, v6, ep("fd00::1", "web-0")),
				slice("v4", testSvc, v4, ep("10.0.0.1", "web-0")),
			},
			want: []backend.Config{{ID: "web-0", URL: "http://10.0.0.1:8080"}},
		},
		{
			name: "dual-stack: IPv6 when asked, in brackets",
			cfg:  func(c *Config) { c.Family = v6 },
			slices: []*discoveryv1.EndpointSlice{
				slice("v4", testSvc, v4, ep("10.0.0.1", "web-0")),
				slice("v6", testSvc, v6, ep("fd00::1", "web-0")),
			},
			want: []backend.Config{{ID: "web-0", URL: "http://[fd00::1]:8080"}},
		},
		{
			name: "dual-stack: the other family when the preferred one does not serve",
			slices: []*discoveryv1.EndpointSlice{
				slice("v4", testSvc, v4, conds(ep("10.0.0.1", "web-0"), no, no, no)),
				slice("v6", testSvc, v6, ep("fd00::1", "web-0")),
			},
			want: []backend.Config{{ID: "web-0", URL: "http://[fd00::1]:8080"}},
		},
		{
			name:   "FQDN: the host name",
			slices: []*discoveryv1.EndpointSlice{slice("a", testSvc, fqdn, ep("web-0.test.example", "web-0"))},
			want:   []backend.Config{{ID: "web-0", URL: "http://web-0.test.example:8080"}},
		},
		{
			name: "no targetRef: the address and port",
			slices: []*discoveryv1.EndpointSlice{
				slice("a", testSvc, v4, ep("10.0.0.1", "")),
				slice("b", testSvc, v6, ep("fd00::1", "")),
				slice("c", testSvc, fqdn, ep("db.test.example", "")),
			},
			want: []backend.Config{
				{ID: "10.0.0.1_8080", URL: "http://10.0.0.1:8080"},
				{ID: "db.test.example_8080", URL: "http://db.test.example:8080"},
				{ID: "fd00--1_8080", URL: "http://[fd00::1]:8080"},
			},
		},
		{
			name: "a targetRef that is not a pod: the address and port",
			slices: []*discoveryv1.EndpointSlice{slice("a", testSvc, v4, func() discoveryv1.Endpoint {
				e := ep("10.0.0.1", "")
				e.TargetRef = &corev1.ObjectReference{Kind: "Node", Name: "node-1"}
				return e
			}())},
			want: []backend.Config{{ID: "10.0.0.1_8080", URL: "http://10.0.0.1:8080"}},
		},
		{
			name: "a pod of another namespace: NAMESPACE_NAME",
			slices: []*discoveryv1.EndpointSlice{slice("a", testSvc, v4, func() discoveryv1.Endpoint {
				e := ep("10.0.0.1", "web-0")
				e.TargetRef.Namespace = "other"
				return e
			}())},
			want: []backend.Config{{ID: "other_web-0", URL: "http://10.0.0.1:8080"}},
		},
		{
			name:   "a pod name too long for an ID: derived",
			slices: []*discoveryv1.EndpointSlice{slice("a", testSvc, v4, ep("10.0.0.1", longPod))},
			want:   []backend.Config{{ID: longPod[:47] + "-" + hex.EncodeToString(longSum[:8]), URL: "http://10.0.0.1:8080"}},
		},
		{
			name: "zone and node: metadata",
			slices: []*discoveryv1.EndpointSlice{slice("a", testSvc, v4, func() discoveryv1.Endpoint {
				e := ep("10.0.0.1", "web-0")
				e.Zone, e.NodeName = ptr.To("eu-1a"), ptr.To("node-1")
				return e
			}())},
			want: []backend.Config{{ID: "web-0", URL: "http://10.0.0.1:8080", Metadata: map[string]string{"zone": "eu-1a", "node": "node-1"}}},
		},
		{
			name: "several addresses: the first",
			slices: []*discoveryv1.EndpointSlice{slice("a", testSvc, v4, func() discoveryv1.Endpoint {
				e := ep("10.0.0.1", "web-0")
				e.Addresses = append(e.Addresses, "10.0.0.9")
				return e
			}())},
			want: []backend.Config{{ID: "web-0", URL: "http://10.0.0.1:8080"}},
		},
		{
			name: "no address: skipped",
			slices: []*discoveryv1.EndpointSlice{slice("a", testSvc, v4, func() discoveryv1.Endpoint {
				e := ep("10.0.0.1", "web-0")
				e.Addresses = nil
				return e
			}())},
		},
		{
			name:   "scheme h2c",
			cfg:    func(c *Config) { c.Scheme = "h2c" },
			slices: []*discoveryv1.EndpointSlice{slice("a", testSvc, v4, ep("10.0.0.1", "web-0"))},
			want:   []backend.Config{{ID: "web-0", URL: "h2c://10.0.0.1:8080"}},
		},
		{
			name: "slices of another Service or namespace: ignored",
			slices: []*discoveryv1.EndpointSlice{
				slice("a", "api", v4, ep("10.0.0.1", "api-0")),
				func() *discoveryv1.EndpointSlice {
					sl := slice("b", testSvc, v4, ep("10.0.0.2", "web-0"))
					sl.Namespace = "other"
					return sl
				}(),
				slice("c", testSvc, v4, ep("10.0.0.3", "web-1")),
			},
			want: []backend.Config{{ID: "web-1", URL: "http://10.0.0.3:8080"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{Client: fake.NewClientset(), Service: Service{Namespace: testNS, Name: testSvc, Port: "http"}}
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			s, err := New(cfg)
			require.NoError(t, err)
			objs := make([]any, len(tt.slices))
			for i, sl := range tt.slices {
				objs[i] = sl
			}
			got, listed := s.membership(objs)
			assert.Equal(t, tt.want, nilIfEmpty(got))
			wantListed := tt.listed
			if wantListed == nil {
				for _, c := range tt.want {
					wantListed = append(wantListed, c.ID)
				}
			}
			var gotListed []string
			for id := range listed {
				gotListed = append(gotListed, id)
			}
			assert.ElementsMatch(t, wantListed, gotListed)
			for _, c := range got {
				_, err := backend.NewSet([]backend.Config{c})
				assert.NoError(t, err, "the set takes %+v", c)
			}
		})
	}
}

// nilIfEmpty returns nil for an empty list, so that tests can leave want
// out.
func nilIfEmpty(cfgs []backend.Config) []backend.Config {
	if len(cfgs) == 0 {
		return nil
	}
	return cfgs
}

func TestValidID(t *testing.T) {
	sum := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:8]) }
	at64 := strings.Repeat("a", 64)
	at65 := strings.Repeat("a", 65)
	tests := []struct{ name, want string }{
		{"web-0", "web-0"},
		{"web.shop_1-A", "web.shop_1-A"},
		{at64, at64},
		{at65, strings.Repeat("a", 47) + "-" + sum(at65)},
		{"a b/c", "a-b-c-" + sum("a b/c")},
		{"pod-é", "pod---" + sum("pod-é")},
		{"", "-" + sum("")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := validID(tt.name)
			assert.Equal(t, tt.want, got)
			assert.LessOrEqual(t, len(got), 64)
			assert.Equal(t, -1, strings.IndexFunc(got, notIDChar))
		})
	}
}
