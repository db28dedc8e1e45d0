package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// OnceOptions say what a single render does besides writing files.
type OnceOptions struct {
	// Hooks runs the on_change hooks of the files written (hooks that act
	// on supervised processes are skipped: Once starts none).
	Hooks bool
	// DryRun, when set, receives a unified diff of every file that would
	// change, and nothing is written.
	DryRun io.Writer
}

// Once renders every template at the store's current revision and writes
// the files whose bytes changed. Templates that fail (a missing key, an
// unreachable store) keep their file and are named in the error; the others
// are still written.
func (a *Agent) Once(ctx context.Context, opts OnceOptions) error {
	l := newLoop(a, a.Config())
	l.noHooks = !opts.Hooks
	l.once = true
	for attempt := 0; ; attempt++ {
		if err := l.readRevision(ctx, time.Now()); err != nil {
			return err
		}
		cands, errs := l.render(ctx, l.seen, l.units, time.Now())
		if l.full && attempt < 3 {
			continue // compacted between reading the revision and rendering
		}
		if err := l.apply(ctx, l.seen, cands, applyOptions{hooks: opts.Hooks, dryRun: opts.DryRun}); err != nil {
			errs = append(errs, err)
		}
		if len(errs) > 0 {
			return fmt.Errorf("render at revision %d: %w", l.seen, errors.Join(errs...))
		}
		return nil
	}
}
