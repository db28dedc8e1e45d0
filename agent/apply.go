package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
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
//  4. after the splay, reload the supervised processes that read a
//     written file (their reload signal, or a restart), then run the hooks
//     the written files name, each once, in the order the templates list
//     them;
//  5. run the health gate;
//  6. if a reload, a hook or the gate failed and rollback is on, put the
//     previous files back and reload and run the hooks again.
//
// It returns the errors of the files and hooks that failed.
func (l *loop) apply(ctx context.Context, rev int64, cands []*candidate, opts applyOptions) error {
	if opts.dryRun != nil {
		for _, c := range cands {
			if err := writeDiff(opts.dryRun, c.u.cfg.Destination, c.rev, c.prev, c.data); err != nil {
				return fmt.Errorf("write diff: %w", err)
			}
		}
		return nil
	}
	var errs []error
	var written []*candidate
	for _, c := range cands {
		if err := l.swapIn(ctx, c); err != nil {
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
	var reloads []*config.Process
	if startedNow {
		// The processes have just started and already read these files:
		// restarting or signalling them now would only double their startup.
		hooks = slices.DeleteFunc(hooks, func(h *config.Hook) bool { return h.Process != "" })
	} else {
		reloads = l.reloadsFor(written, hooks)
	}
	if len(hooks) == 0 && len(reloads) == 0 && l.cfg.Health == nil {
		return errors.Join(errs...)
	}
	// The hooks act on the files: let them be durable first.
	for _, c := range written {
		<-c.synced
	}
	if err := l.splay(ctx, rev, written); err != nil {
		return errors.Join(append(errs, err)...)
	}
	err := l.reloadProcesses(rev, reloads)
	if err == nil {
		err = l.runHooks(ctx, rev, hooks)
	}
	if err == nil {
		err = l.healthy(ctx)
	}
	if err == nil {
		return errors.Join(errs...)
	}
	errs = append(errs, err)
	if !l.cfg.Rollback || ctx.Err() != nil {
		names := make([]string, len(written))
		for i, c := range written {
			names[i] = c.u.cfg.Name
			l.a.setStatus(c.u.cfg.Name, func(s *Status) { s.Outcome, s.Error = "hook-failed", err.Error() })
		}
		l.log.Error("change not accepted; rollback is off, keeping it", "templates", strings.Join(names, ","), "revision", rev, "outcome", "hook-failed", "error", err)
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
		l.a.metrics.rollbacks.WithLabelValues(c.u.cfg.Name).Inc()
		l.a.setStatus(c.u.cfg.Name, func(s *Status) {
			s.Revision, s.Outcome, s.Error = c.prevRev, "rolled-back", err.Error()
		})
	}
	if rerr := l.reloadProcesses(rev, reloads); rerr != nil {
		l.log.Error("reload processes after rollback", "error", rerr)
	}
	if rerr := l.runHooks(ctx, rev, hooks); rerr != nil {
		l.log.Error("hooks after rollback", "error", rerr)
	}
	return errors.Join(errs...)
}

// splay waits a random time below the largest splay of the written
// templates, so that hosts that got the same change do not all reload or
// restart at once. The loop waits with it: changes arriving meanwhile are
// rendered after the hooks ran.
func (l *loop) splay(ctx context.Context, rev int64, written []*candidate) error {
	var limit time.Duration
	for _, c := range written {
		limit = max(limit, c.u.cfg.Splay)
	}
	return l.splayWait(ctx, "splay before hooks", rev, limit)
}

// splayWait waits a random time below limit, drawn from the agent's random
// source; what says what for, in the log.
func (l *loop) splayWait(ctx context.Context, what string, rev int64, limit time.Duration) error {
	if limit <= 0 {
		return nil
	}
	d := time.Duration(l.a.rand.Int64N(int64(limit)))
	l.log.Info(what, "revision", rev, "delay", d, "splay", limit)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s of revision %d (%s): %w", what, rev, d, ctx.Err())
	}
}

// swapIn stages, checks and renames one candidate into place, and has its
// folder synced (c.synced is closed once the rename is durable).
func (l *loop) swapIn(ctx context.Context, c *candidate) error {
	t, rev := c.u.cfg, c.rev
	fail := func(outcome string, err error) error {
		l.log.Error("file not replaced; keeping the last good file", "template", t.Name, "revision", rev, "outcome", outcome, "error", err)
		l.a.metrics.renders.WithLabelValues(t.Name, outcome).Inc()
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
	m := l.a.metrics
	c.synced = l.syncFolderThen(filepath.Dir(t.Destination), func() {
		m.applyDuration.Observe(time.Since(c.started).Seconds())
	})
	m.renders.WithLabelValues(t.Name, "applied").Inc()
	m.applies.WithLabelValues(t.Name).Inc()
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

// reloadsFor lists the running processes that read a written file, in
// configuration order. A process that one of the change set's hooks
// restarts or signals is left to that hook: the configuration said how to
// act on it, and doing both would reload it twice.
func (l *loop) reloadsFor(written []*candidate, hooks []*config.Hook) []*config.Process {
	if !l.started {
		return nil
	}
	var out []*config.Process
	for _, p := range l.cfg.Processes {
		reads := false
		for _, c := range written {
			reads = reads || slices.Contains(p.Templates, c.u.cfg.Name)
		}
		if !reads {
			continue
		}
		if slices.ContainsFunc(hooks, func(h *config.Hook) bool { return h.Process == p.Name }) {
			l.log.Debug("process reload left to its hook", "process", p.Name)
			continue
		}
		out = append(out, p)
	}
	return out
}

// reloadProcesses sends each process its reload signal, or restarts it when
// it has none, and stops at the first failure.
func (l *loop) reloadProcesses(rev int64, procs []*config.Process) error {
	for _, p := range procs {
		start := time.Now()
		how := "restart"
		if p.ReloadSignal != 0 {
			how = "signal"
		}
		if err := l.a.procs.Reload(p.Name); err != nil {
			l.log.Error("process reload failed", "process", p.Name, "revision", rev, "how", how, "outcome", "failed", "error", err)
			return err
		}
		l.log.Info("process reloaded", "process", p.Name, "revision", rev, "how", how, "outcome", "ok", "took", time.Since(start))
	}
	return nil
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
		// What the hooks log themselves belongs to this change set too.
		Logger: l.log.With("revision", rev),
	}
	for _, h := range hooks {
		start := time.Now()
		if err := h.Run.Run(ctx, env); err != nil {
			l.log.Error("hook failed", "hook", h.Name, "revision", rev, "outcome", "failed", "error", err)
			l.a.metrics.hookRuns.WithLabelValues(h.Name, "failed").Inc()
			return err
		}
		l.a.metrics.hookRuns.WithLabelValues(h.Name, "ok").Inc()
		l.log.Info("hook ran", "hook", h.Name, "revision", rev, "outcome", "ok", "took", time.Since(start))
	}
	return nil
}
