package endpointslice

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Service names a Kubernetes Service's port: the Service's namespace and
// name, and the port, by name ("http") or by number ("8080"). A number is
// the port the pods listen on, as listed in the EndpointSlices (the
// Service's targetPort), not the Service's own port.
type Service struct {
	Namespace string
	Name      string
	Port      string
}

// ParseService parses "NAMESPACE/NAME:PORT", such as "shop/web:http" or
// "shop/web:8080". Every part is required and is checked as Kubernetes
// checks it.
func ParseService(s string) (Service, error) {
	ns, rest, ok := strings.Cut(s, "/")
	if !ok {
		return Service{}, fmt.Errorf("endpointslice: service %q: want NAMESPACE/NAME:PORT, no slash", s)
	}
	name, port, ok := strings.Cut(rest, ":")
	if !ok {
		return Service{}, fmt.Errorf("endpointslice: service %q: want NAMESPACE/NAME:PORT, no port", s)
	}
	svc := Service{Namespace: ns, Name: name, Port: port}
	if err := svc.validate(); err != nil {
		return Service{}, fmt.Errorf("endpointslice: service %q: %w", s, err)
	}
	return svc, nil
}

// String returns "NAMESPACE/NAME:PORT", which [ParseService] reads back.
func (s Service) String() string {
	return s.Namespace + "/" + s.Name + ":" + s.Port
}

// validate reports every invalid part of s.
func (s Service) validate() error {
	var errs []error
	if msgs := validation.IsDNS1123Label(s.Namespace); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("namespace %q: %s", s.Namespace, strings.Join(msgs, "; ")))
	}
	if msgs := validation.IsDNS1035Label(s.Name); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("name %q: %s", s.Name, strings.Join(msgs, "; ")))
	}
	if _, err := s.portNumber(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// portNumber returns the port's number, or 0 if it is a name. It fails if
// it is neither a number from 1 to 65535 nor a valid port name.
func (s Service) portNumber() (int32, error) {
	if s.Port != "" && strings.Trim(s.Port, "0123456789") == "" {
		n, err := strconv.Atoi(s.Port)
		if err != nil || n < 1 || n > 65535 {
			return 0, fmt.Errorf("port %q: out of range 1..65535", s.Port)
		}
		return int32(n), nil
	}
	if msgs := validation.IsValidPortName(s.Port); len(msgs) > 0 {
		return 0, fmt.Errorf("port %q: not a number, and not a port name: %s", s.Port, strings.Join(msgs, "; "))
	}
	return 0, nil
}
