package backend

import "context"

// Source delivers a pool's membership over time: a fixed list, DNS
// records, a service registry. [Set.Sync] applies what it delivers.
type Source interface {
	// Run calls update with the complete membership, once it knows it and
	// again whenever it changes, until ctx is done; then it returns
	// ctx.Err(). It returns earlier only if it cannot go on. update is
	// called from one goroutine at a time; it must not be retained.
	Run(ctx context.Context, update func([]Config)) error
}

// Sync keeps the set's membership what src delivers, with [Set.Update],
// until ctx is done or src fails, and returns src's error. A list the set
// rejects (an invalid config, a duplicate ID) leaves the membership as it
// was and is logged at Warn.
func (s *Set) Sync(ctx context.Context, src Source) error {
	return src.Run(ctx, func(cfgs []Config) {
		if err := s.Update(cfgs); err != nil && s.logger != nil {
			s.logger.Warn("backend list rejected", "err", err)
		}
	})
}
