package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/tendkv/tend/agent/config"
	"github.com/tendkv/tend/agent/hook"
	"github.com/tendkv/tend/templates"
)

// applyOptions say how far a change set goes.
type applyOptions struct {
	hooks  bool      // run the on_change hooks (and the health gate)
	dryRun io.Writer // when set, write a diff here and change nothing
}

// apply swaps the candidates in and runs their hooks:
//
//  1. stage each candidate next to its destination and run its check;
//     a failing check leaves that file untouched;
//  2. rename every checked candidate into place (fsyncing the folder);
//  3. start the processes if this is the first complete render;
//  4. after the splay, run the hooks the written files name, each once,
//     in the order the templates list them;
//  5. run the health gate;
//  6. if a hook or the gate failed and rollback is on, put the previous
//     files back and run the hooks again.
//
// It returns the errors of the files and hooks that failed.
func (l *loop) apply(ctx context.Context, rev int64, cands []*candidate, opts applyOptions) error {
	if opts.dryRun != nil {
		for _, c := range cands {
			if err := writeDiff(opts.dryRun, c.u.cfg.Destination, rev, c.prev, c.data); err != nil {
				return fmt.Errorf("write diff: %w", err)
			}
		}
		return nil
	}
	var errs []error
	var written []*candidate
	for _, c := range cands {
		if err := l.swapIn(ctx, rev, c); err != nil {
			errs = append(errs, err)
			continue
		}
		written = append(written, c)
	}
	startedNow := l.startProcesses(ctx)
	if len(written) == 0 || !opts.hooks {
		return errors.Join(errs...)
	}
	hooks := l.hooksFor(written)
	if startedNow {
		// The processes have just started and already read these files:
		// restarting or signalling them now would only double their startup.
		hooks = slices.DeleteFunc(hooks, func(h *config.Hook) bool { return h.Process != "" })
	}
	if len(hooks) == 0 && l.cfg.Health == nil {
		return errors.Join(errs...)
	}
	if l.cfg.Splay > 0 {
		d := time.Duration(rand.Int64N(int64(l.cfg.Splay)))
		l.log.Debug("splay before hooks", "delay", d)
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	err := l.runHooks(ctx, rev, hooks)
	if err == nil {
		err = l.healthy(ctx)
	}
	if err == nil {
		return errors.Join(errs...)
	}
	errs = append(errs, err)
	if !l.cfg.Rollback || ctx.Err() != nil {
		for _, c := range written {
			l.a.setStatus(c.u.cfg.Name, func(s *Status) { s.Outcome, s.Error = "hook-failed", err.Error() })
		}
		l.log.Error("change not accepted; rollback is off, keeping it", "revision", rev, "error", err)
		return errors.Join(errs...)
	}
	l.log.Error("change not accepted; rolling back", "revision", rev, "error", err)
	for i := len(written) - 1; i >= 0; i-- {
		c := written[i]
		c.u.rejected = c.data
		if rerr := c.prev.restore(c.u.cfg); rerr != nil {
			l.log.Error("roll back", "template", c.u.cfg.Name, "error", rerr)
			errs = append(errs, rerr)
			continue
		}
		l.log.Info("rolled back", "template", c.u.cfg.Name, "revision", rev, "outcome", "rolled-back")
		l.a.setStatus(c.u.cfg.Name, func(s *Status) {
			s.Revision, s.Outcome, s.Error = c.prevRev, "rolled-back", err.Error()
		})
	}
	if rerr := l.runHooks(ctx, rev, hooks); rerr != nil {
		l.log.Error("hooks after rollback", "error", rerr)
	}
	return errors.Join(errs...)
}

// swapIn stages, checks and renames one candidate into place.
func (l *loop) swapIn(ctx context.Context, rev int64, c *candidate) error {
	t := c.u.cfg
	fail := func(outcome string, err error) error {
		l.log.Error("file not replaced; keeping the last good file", "template", t.Name, "revision", rev, "outcome", outcome, "error", err)
		l.a.setStatus(t.Name, func(s *Status) { s.Destination, s.Outcome, s.Error = t.Destination, outcome, err.Error() })
		return fmt.Errorf("template %q: %w", t.Name, err)
	}
	st, err := stage(t, c.data)
	if err != nil {
		return fail("write-failed", err)
	}
	if err := st.check(ctx, t); err != nil {
		st.discard()
		c.u.rejected = c.data
		return fail("check-failed", err)
	}
	if err := st.commit(t.Backup); err != nil {
		return fail("write-failed", err)
	}
	now := time.Now()
	l.log.Info("file replaced", "template", t.Name, "destination", t.Destination, "revision", rev, "bytes", len(c.data), "outcome", "applied",
		"since-change", now.Sub(c.u.last))
	l.a.setStatus(t.Name, func(s *Status) {
		s.Destination, s.Revision, s.AppliedAt, s.Outcome, s.Error = t.Destination, rev, now, "applied", ""
	})
	return nil
}

// hooksFor lists the hooks the written templates name, each once, in the
// order of the templates and of their on_change lists. Hooks acting on
// supervised processes are left out until the processes run.
func (l *loop) hooksFor(written []*candidate) []*config.Hook {
	var out []*config.Hook
	seen := map[string]bool{}
	for _, u := range l.units {
		for _, c := range written {
			if c.u != u {
				continue
			}
			for _, name := range u.cfg.OnChange {
				h := l.cfg.Hook(name)
				if h == nil || seen[name] {
					continue
				}
				seen[name] = true
				if h.Process != "" && !l.started {
					l.log.Debug("hook skipped: its process is not started yet", "hook", name, "process", h.Process)
					continue
				}
				out = append(out, h)
			}
		}
	}
	return out
}

// runHooks runs hooks in order and stops at the first failure.
func (l *loop) runHooks(ctx context.Context, rev int64, hooks []*config.Hook) error {
	env := hook.Env{
		Render: func(text string) (string, error) {
			t, err := templates.Parse("hook", text, templates.Options{})
			if err != nil {
				return "", err
			}
			rctx, cancel := context.WithTimeout(ctx, l.readTimeout())
			defer cancel()
			out, _, err := t.Render(newView(rctx, l.a.client, rev))
			return string(out), err
		},
		Processes: l.a.procs,
		Logger:    l.log,
	}
	for _, h := range hooks {
		start := time.Now()
		if err := h.Run.Run(ctx, env); err != nil {
			l.log.Error("hook failed", "hook", h.Name, "revision", rev, "outcome", "failed", "error", err)
			return err
		}
		l.log.Info("hook ran", "hook", h.Name, "revision", rev, "outcome", "ok", "took", time.Since(start))
	}
	return nil
}
