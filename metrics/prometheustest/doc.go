// Package prometheustest checks the metrics package's exposition with
// Prometheus's own text parser. It is a module of its own so that the
// core module does not depend on Prometheus; it holds only tests.
package prometheustest
