package balancer

import "github.com/affinitylb/affinity/backend"

// ExactMax is the largest pool LeastConnections picks from exactly.
const ExactMax = exactMax

// NewLeastConnectionsExactUpTo returns a LeastConnections that picks exactly
// from pools of up to n routable backends (n <= ExactMax) and samples two
// from larger ones, so that tests reach the sampling path with few backends.
func NewLeastConnectionsExactUpTo(n int) *LeastConnections {
	return &LeastConnections{exact: n}
}

// SetBeforeBuild makes the goroutine that builds h's tables in the
// background call f, holding h's build lock, before each build.
func SetBeforeBuild(h *ConsistentHash, f func()) { h.beforeBuild = f }

// Built reports whether h has the table of s.
func Built(h *ConsistentHash, s *backend.Snapshot) bool { return h.tables.Load().find(s) != nil }
