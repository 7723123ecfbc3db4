// Package cli is the stickyproxy command, as a function other commands
// can run: [Main] takes the command line and returns the exit status, and
// an [Extension] adds flags and a membership source, as the Kubernetes
// variant in the kubernetes module does with -k8s-service.
//
// With the zero Extension, Main is exactly the command
// examples/stickyproxy: its flags, defaults, exit statuses, admin API and
// status page are those documented in examples/stickyproxy/README.md.
package cli
