package endpointslice

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/affinitylb/affinity/backend"
)

// condition is what an endpoint's conditions make of it, worst first.
type condition int

const (
	absent   condition = iota // not serving: no backend
	draining                  // terminating and serving
	ready                     // ready and not terminating
)

// conditionOf maps an endpoint's conditions as the package documentation
// says.
func conditionOf(c discoveryv1.EndpointConditions) condition {
	isReady := c.Ready == nil || *c.Ready
	serving := isReady
	if c.Serving != nil {
		serving = *c.Serving
	}
	switch terminating := c.Terminating != nil && *c.Terminating; {
	case terminating && serving:
		return draining
	case terminating:
		return absent
	case isReady:
		return ready
	}
	return absent
}

// candidate is one listing of a backend: one endpoint in one slice.
type candidate struct {
	cond   condition
	family int // the rank of the slice's address type: 0 for Config.Family
	host   string
	port   int32
	zone   string
	node   string
}

// membership returns the backends that the EndpointSlices in objs make,
// sorted by ID, and the IDs of every endpoint listed with the port,
// whatever its conditions. Slices of another Service or namespace are
// ignored.
func (s *Source) membership(objs []any) ([]backend.Config, map[string]bool) {
	byID := map[string][]candidate{}
	for _, o := range objs {
		sl, ok := o.(*discoveryv1.EndpointSlice)
		if !ok || sl.Namespace != s.cfg.Service.Namespace || sl.Labels[discoveryv1.LabelServiceName] != s.cfg.Service.Name {
			continue
		}
		port, ok := s.slicePort(sl.Ports)
		if !ok {
			continue
		}
		family := s.familyRank(sl.AddressType)
		if family < 0 {
			continue // an address type this package does not know
		}
		for _, ep := range sl.Endpoints {
			if len(ep.Addresses) == 0 {
				continue
			}
			c := candidate{cond: conditionOf(ep.Conditions), family: family, host: ep.Addresses[0], port: port}
			if ep.Zone != nil {
				c.zone = *ep.Zone
			}
			if ep.NodeName != nil {
				c.node = *ep.NodeName
			}
			id := s.id(ep.TargetRef, c.host, port)
			byID[id] = append(byID[id], c)
		}
	}
	listed := make(map[string]bool, len(byID))
	out := make([]backend.Config, 0, len(byID))
	for id, cs := range byID {
		listed[id] = true
		best := slices.MaxFunc(cs, func(a, b candidate) int { return cmp.Compare(a.cond, b.cond) }).cond
		if best == absent {
			continue
		}
		// The address: the preferred family's among the usable listings,
		// then the lowest, so that every process and every update agree.
		c := slices.MinFunc(slices.DeleteFunc(cs, func(c candidate) bool { return c.cond == absent }), func(a, b candidate) int {
			return cmp.Or(cmp.Compare(a.family, b.family), cmp.Compare(a.host, b.host), cmp.Compare(a.port, b.port))
		})
		cfg := backend.Config{
			ID:       id,
			URL:      s.cfg.Scheme + "://" + net.JoinHostPort(c.host, strconv.Itoa(int(c.port))),
			Draining: best == draining,
		}
		if c.zone != "" || c.node != "" {
			cfg.Metadata = map[string]string{}
			if c.zone != "" {
				cfg.Metadata["zone"] = c.zone
			}
			if c.node != "" {
				cfg.Metadata["node"] = c.node
			}
		}
		out = append(out, cfg)
	}
	sortConfigs(out)
	return out, listed
}

// slicePort returns the number of the slice's TCP port that is the
// Service's port, by name or by number.
func (s *Source) slicePort(ports []discoveryv1.EndpointPort) (int32, bool) {
	for _, p := range ports {
		if p.Port == nil || p.Protocol != nil && *p.Protocol != corev1.ProtocolTCP {
			continue
		}
		name := ""
		if p.Name != nil {
			name = *p.Name
		}
		if s.port != 0 && *p.Port == s.port || s.port == 0 && name == s.cfg.Service.Port {
			return *p.Port, true
		}
	}
	return 0, false
}

// familyRank orders address types for a pod listed in several: the
// preferred IP family, the other, then FQDN. It is -1 for an unknown type.
func (s *Source) familyRank(t discoveryv1.AddressType) int {
	switch t {
	case s.cfg.Family:
		return 0
	case discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6:
		return 1
	case discoveryv1.AddressTypeFQDN:
		return 2
	}
	return -1
}

// id returns the backend ID of an endpoint, as the package documentation
// says.
func (s *Source) id(ref *corev1.ObjectReference, host string, port int32) string {
	if ref != nil && ref.Kind == "Pod" && ref.Name != "" {
		if ref.Namespace == "" || ref.Namespace == s.cfg.Service.Namespace {
			return validID(ref.Name)
		}
		return validID(ref.Namespace + "_" + ref.Name)
	}
	return validID(strings.ReplaceAll(host, ":", "-") + "_" + strconv.Itoa(int(port)))
}

// maxID is the longest backend ID; see [backend.Config].
const maxID = 64

// validID returns name if it is a valid backend ID, and otherwise its
// first 47 characters, each one not allowed in an ID replaced by a dash, a
// dash, and the first 16 hex digits of the SHA-256 of name.
func validID(name string) string {
	if name != "" && len(name) <= maxID && strings.IndexFunc(name, notIDChar) < 0 {
		return name
	}
	const keep = maxID - 1 - 16
	prefix := strings.Map(func(r rune) rune {
		if notIDChar(r) {
			return '-'
		}
		return r
	}, name)
	if len(prefix) > keep {
		prefix = prefix[:keep] // ASCII only by now: a byte is a character
	}
	sum := sha256.Sum256([]byte(name))
	return prefix + "-" + hex.EncodeToString(sum[:8])
}

// notIDChar reports whether r may not appear in a backend ID.
func notIDChar(r rune) bool {
	return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '.' || r == '_' || r == '-')
}

// sortConfigs sorts backends by ID.
func sortConfigs(cfgs []backend.Config) {
	slices.SortFunc(cfgs, func(a, b backend.Config) int { return strings.Compare(a.ID, b.ID) })
}

// sameConfig reports whether a and b describe the same backend in the same
// state.
func sameConfig(a, b backend.Config) bool {
	return a.ID == b.ID && a.URL == b.URL && a.Weight == b.Weight && a.Draining == b.Draining && maps.Equal(a.Metadata, b.Metadata)
}

// cloneConfigs returns a deep copy of cfgs, metadata included.
func cloneConfigs(cfgs []backend.Config) []backend.Config {
	out := slices.Clone(cfgs)
	for i := range out {
		out[i].Metadata = maps.Clone(out[i].Metadata)
	}
	return out
}
