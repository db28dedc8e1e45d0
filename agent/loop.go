package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"github.com/tendkv/tend/agent/config"
	"github.com/tendkv/tend/agent/process"
	"github.com/tendkv/tend/templates"
)

// Retry backoff for reads that fail because the store is unreachable or a
// key is missing.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 10 * time.Second
)

// sched is the render schedule of one unit (a template or a process's
// environment): what it read, at which revision, and when it is due again.
type sched struct {
	deps     templates.Deps
	rev      int64 // revision of the last read; later changes make it dirty
	rendered bool  // it rendered successfully at least once
	dirty    bool
	urgent   bool // due now, whatever the wait says
	first    time.Time
	last     time.Time
	wait     config.Wait
	failures int
	retry    time.Time
}

// mark records a change the unit has not rendered yet. A change ends the
// backoff of a failed render: it may be the one that fixes it.
func (s *sched) mark(now time.Time, urgent bool) {
	s.failures = 0
	if !s.dirty {
		s.dirty, s.first = true, now
	}
	s.last = now
	s.urgent = s.urgent || urgent
}

// due is when a dirty unit should render: at once when urgent or wait is
// zero, after Min of quiet, but no later than Max after the first change;
// after a failure, when its backoff ends.
func (s *sched) due() time.Time {
	if s.failures > 0 {
		return s.retry
	}
	if s.urgent || s.wait.Min == 0 {
		return s.last
	}
	d := s.last.Add(s.wait.Min)
	if s.wait.Max > 0 {
		if m := s.first.Add(s.wait.Max); m.Before(d) {
			d = m
		}
	}
	return d
}

// fail schedules a retry with a doubling backoff.
func (s *sched) fail(now time.Time) {
	s.failures++
	s.retry = now.Add(backoff(s.failures))
}

func (s *sched) done(rev int64, deps templates.Deps) {
	s.dirty, s.urgent, s.failures = false, false, 0
	s.rev, s.deps, s.rendered = rev, deps, true
}

func backoff(failures int) time.Duration {
	d := minBackoff
	for i := 1; i < failures && d < maxBackoff; i++ {
		d *= 2
	}
	return min(d, maxBackoff)
}

// unit is one template's state in the loop.
type unit struct {
	sched
	cfg      *config.Template
	tmpl     *templates.Template
	text     []byte // the source text tmpl was parsed from
	rejected []byte // content rolled back or refused by its check
}

// envUnit is a process whose environment comes from a key prefix.
type envUnit struct {
	sched
	cfg *config.Process
	env []string // KEY=VALUE from the prefix, sorted
}

// loop is the state Run owns; only its goroutine touches it.
type loop struct {
	a        *Agent
	cfg      *config.Config
	log      *slog.Logger
	units    []*unit
	envs     []*envUnit
	seen     int64 // highest revision the loop knows of
	full     bool  // the next step re-reads everything at the current revision
	fullTry  int
	fullAt   time.Time
	watches  map[target]*watch
	events   chan watchEvent
	services map[string]*registrar // running registrations, by service name
	status   *publisher            // publishes the fleet status; nil without a status block
	started  bool                  // the processes were started
	fs       *fsnotify.Watcher
	srcDue   map[string]time.Time // source files changed, re-read once quiet
	noHooks  bool                 // run no hooks and start no processes
	once     bool                 // a single render: failures are reported, not retried
	// releaseAt is when, if nothing happened since, the garbage of the last
	// renders is returned to the OS; zero when there is none.
	releaseAt time.Time
	releasing chan struct{} // closed when the last release ended; nil before the first
	// syncer fsyncs folders after renames beside the loop; nil for Once,
	// which syncs them in line.
	syncer *syncer
	// telemetry serves /metrics and /health; nil without a telemetry block.
	telemetry *telemetry
}

// idleRelease is how long the loop must have been idle after rendering
// before it returns the memory the renders used to the OS. An agent is idle
// almost all its life: without this, the heap a burst of renders grew to
// (the first render of every template, above all) would stay resident
// until the runtime's next forced GC, minutes later.
const idleRelease = time.Second

// releaseMemory collects the garbage of the last renders and returns the
// freed memory to the OS: one GC, once per burst of work. It runs beside
// the loop (returning megabytes to the OS takes some milliseconds, which a
// change arriving meanwhile should not wait for); run waits for it.
func (l *loop) releaseMemory() {
	l.releaseAt = time.Time{}
	if l.releasing != nil {
		select {
		case <-l.releasing:
		default:
			return // the previous one is still at it
		}
	}
	done := make(chan struct{})
	l.releasing = done
	go func() {
		defer close(done)
		start := time.Now()
		debug.FreeOSMemory()
		if l.a.idle != nil {
			l.a.idle()
		}
		l.log.Debug("returned idle memory to the OS", "took", time.Since(start))
	}()
}

// sourceQuiet is how long a template source must stay unchanged before it
// is re-read, so a file in the middle of being written is not parsed.
const sourceQuiet = 100 * time.Millisecond

func newLoop(a *Agent, cfg *config.Config) *loop {
	l := &loop{a: a, log: a.log, watches: map[target]*watch{}, services: map[string]*registrar{}, events: make(chan watchEvent, 64), full: true, srcDue: map[string]time.Time{}}
	l.setConfig(cfg, nil)
	return l
}

// setConfig makes cfg the loop's configuration. Templates keep the deps
// they had under the same name, so their watches carry on.
func (l *loop) setConfig(cfg *config.Config, old []*unit) {
	byName := map[string]*unit{}
	for _, u := range old {
		byName[u.cfg.Name] = u
	}
	l.cfg = cfg
	l.units = nil
	for _, t := range cfg.Templates {
		u := &unit{cfg: t, tmpl: t.Parsed}
		u.wait = t.Wait
		u.rev = l.seen
		if t.Source != "" {
			u.text, _ = os.ReadFile(t.Source)
		}
		if o := byName[t.Name]; o != nil {
			u.deps, u.rev, u.rejected = o.deps, o.rev, o.rejected
			// The file it rendered is still in place: /health stays up
			// while the new definition renders, or fails to.
			u.rendered = o.rendered && o.cfg.Destination == t.Destination
		}
		u.mark(time.Now(), true)
		l.units = append(l.units, u)
	}
	oldEnv := map[string]*envUnit{}
	for _, e := range l.envs {
		oldEnv[e.cfg.Name] = e
	}
	l.envs = nil
	for _, p := range cfg.Processes {
		if p.EnvPrefix == "" {
			continue
		}
		e := &envUnit{cfg: p}
		e.deps = templates.Deps{Prefixes: []string{p.EnvPrefix}}
		e.rev = l.seen
		if o := oldEnv[p.Name]; o != nil && o.cfg.EnvPrefix == p.EnvPrefix {
			e.rev, e.env, e.rendered = o.rev, o.env, o.rendered
		}
		e.mark(time.Now(), true)
		l.envs = append(l.envs, e)
	}
}

func (l *loop) run(ctx context.Context) error {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch template sources: %w", err)
	}
	l.fs = fw
	defer fw.Close()
	if err := l.watchSources(); err != nil {
		return err
	}
	if err := l.syncTelemetry(); err != nil {
		return err
	}
	defer l.stopTelemetry()
	defer l.stopWatches()
	l.syncServices(ctx)
	defer l.stopServices()
	l.syncStatus(ctx)
	defer l.stopStatus()
	defer func() {
		if l.releasing != nil {
			<-l.releasing
		}
	}()
	l.syncer = startSyncer(l.log)
	defer l.syncer.stop()

	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		l.step(ctx, time.Now())
		l.publishPending()
		if ctx.Err() != nil {
			return nil
		}
		next, ok := l.next()
		switch {
		case ok:
			timer.Reset(max(time.Until(next), 0))
		case !l.releaseAt.IsZero():
			// Idle after work: give its garbage back once it stays idle.
			if d := time.Until(l.releaseAt); d > 0 {
				timer.Reset(d)
			} else {
				l.releaseMemory()
				timer.Reset(time.Hour)
			}
		default:
			timer.Reset(time.Hour)
		}
		select {
		case <-ctx.Done():
			return nil
		case ev := <-l.events:
			l.handle(ev, time.Now())
			// Take everything already queued, so a storm becomes one step.
			for drained := 0; drained < cap(l.events); drained++ {
				select {
				case ev := <-l.events:
					l.handle(ev, time.Now())
					continue
				default:
				}
				break
			}
		case <-timer.C:
		case cfg := <-l.a.reload:
			l.swap(ctx, cfg)
		case ev, ok := <-fw.Events:
			if ok {
				l.sourceChanged(ev)
			}
		case err, ok := <-fw.Errors:
			if ok {
				l.log.Warn("template source watch error", "error", err)
			}
		}
	}
}

// next is the earliest time a step has something to do.
func (l *loop) next() (time.Time, bool) {
	if l.full {
		return l.fullAt, true
	}
	var next time.Time
	found := false
	for _, d := range l.srcDue {
		if !found || d.Before(next) {
			next, found = d, true
		}
	}
	consider := func(s *sched) {
		if !s.dirty {
			return
		}
		if d := s.due(); !found || d.Before(next) {
			next, found = d, true
		}
	}
	for _, u := range l.units {
		consider(&u.sched)
	}
	for _, e := range l.envs {
		consider(&e.sched)
	}
	return next, found
}

// step does what is due: a full re-read, then the renders whose wait is
// over, then the file swaps and hooks of the changes they made.
func (l *loop) step(ctx context.Context, now time.Time) {
	for path, due := range l.srcDue {
		if !due.After(now) {
			delete(l.srcDue, path)
			l.reparse(path, now)
		}
	}
	if l.full {
		if now.Before(l.fullAt) {
			return
		}
		if err := l.readRevision(ctx, now); err != nil {
			return
		}
	}
	var due []*unit
	for _, u := range l.units {
		if u.dirty && !u.due().After(now) {
			due = append(due, u)
		}
	}
	var dueEnv []*envUnit
	for _, e := range l.envs {
		if e.dirty && !e.due().After(now) {
			dueEnv = append(dueEnv, e)
		}
	}
	if len(due) == 0 && len(dueEnv) == 0 {
		l.startProcesses(ctx) // a configuration may hold processes only
		return
	}
	rev := l.seen
	l.releaseAt = now.Add(idleRelease)
	changes, _ := l.render(ctx, rev, due, now)
	envChanged := l.renderEnv(ctx, rev, dueEnv, now)
	if l.full {
		return // compacted meanwhile: start over at the current revision
	}
	l.syncWatches(ctx)
	l.apply(ctx, rev, changes, applyOptions{hooks: !l.noHooks})
	l.updateProcesses(ctx, envChanged)
}

// readRevision learns the store's current revision and marks everything
// for a render at it: at start, and after the watched history was
// compacted away.
func (l *loop) readRevision(ctx context.Context, now time.Time) error {
	rctx, cancel := context.WithTimeout(ctx, l.readTimeout())
	defer cancel()
	// An empty transaction is a linearizable read that touches no key, so
	// it needs no permission: an agent whose role reads only its own
	// prefix learns the revision too.
	resp, err := l.a.client.Txn(rctx).Commit()
	if err != nil {
		err = fmt.Errorf("read store revision from %v: %w", l.cfg.Store.Endpoints, err)
		if ctx.Err() != nil {
			return err
		}
		l.fullTry++
		l.fullAt = now.Add(backoff(l.fullTry))
		l.log.Warn("store unreachable; keeping the files as they are", "error", err, "retry-in", backoff(l.fullTry))
		return err
	}
	rev := resp.Header.Revision
	l.full, l.fullTry = false, 0
	l.stopWatches()
	l.seen = rev
	for _, u := range l.units {
		u.rev = rev
		u.mark(now, true)
	}
	for _, e := range l.envs {
		e.rev = rev
		e.mark(now, true)
	}
	l.log.Debug("read store revision", "revision", rev)
	return nil
}

func (l *loop) readTimeout() time.Duration {
	if d := l.cfg.Store.DialTimeout; d > 0 {
		return d
	}
	return config.DefaultDialTimeout
}

// compacted reports whether err says the revision asked for is gone.
func compacted(err error) bool {
	return errors.Is(err, rpctypes.ErrCompacted) || strings.Contains(err.Error(), rpctypes.ErrCompacted.Error())
}

// candidate is a template rendered to new bytes that differ from the file.
type candidate struct {
	u       *unit
	rev     int64 // the revision it was rendered at
	data    []byte
	prev    onDisk
	prevRev int64     // the revision the replaced file was rendered at
	started time.Time // when its render began
	// synced is closed once the rename that swapped it in is durable.
	synced <-chan struct{}
}

// render renders the due templates at rev and returns those whose bytes
// differ from what is on disk.
func (l *loop) render(ctx context.Context, rev int64, due []*unit, now time.Time) ([]*candidate, []error) {
	var out []*candidate
	var errs []error
	unreachable := false
	for _, u := range due {
		if unreachable {
			// The store did not answer the last template: do not make
			// every other one wait for the same timeout.
			u.fail(now)
			errs = append(errs, fmt.Errorf("template %q: not rendered: the store did not answer", u.cfg.Name))
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, l.readTimeout())
		start := time.Now()
		v, rev := l.viewFor(rctx, u, rev)
		data, deps, err := u.tmpl.Render(v)
		cancel()
		l.a.metrics.renderDuration.Observe(time.Since(start).Seconds())
		if err != nil {
			unreachable = errors.Is(err, context.DeadlineExceeded)
			if ctx.Err() != nil {
				return nil, []error{ctx.Err()}
			}
			if compacted(err) {
				l.full, l.fullAt = true, now
				l.log.Warn("revision compacted during render; re-reading everything", "template", u.cfg.Name, "revision", rev)
				return nil, []error{err}
			}
			errs = append(errs, fmt.Errorf("template %q: %w", u.cfg.Name, err))
			attrs := []any{"template", u.cfg.Name, "revision", rev, "outcome", "render-failed", "error", err}
			var missing *templates.MissingKeyError
			if errors.As(err, &missing) {
				// The read happened: watch what it read, so the key's
				// arrival triggers the next render.
				if len(deps.Keys)+len(deps.Prefixes) > 0 {
					u.deps = deps
				}
				u.rev = rev
				attrs = append(attrs, "missing-keys", strings.Join(missing.Keys, ","))
			}
			u.fail(now)
			if !l.once {
				attrs = append(attrs, "attempt", u.failures, "retry-in", backoff(u.failures))
			}
			l.log.Warn("render failed; keeping the last good file", attrs...)
			l.a.metrics.renders.WithLabelValues(u.cfg.Name, "render-failed").Inc()
			l.a.setStatus(u.cfg.Name, func(s *Status) {
				s.Destination, s.Outcome, s.Error = u.cfg.Destination, "render-failed", err.Error()
			})
			continue
		}
		u.done(rev, deps)
		if _, ok := v.(mirrorView); ok {
			l.log.Debug("rendered from the mirror", "template", u.cfg.Name, "revision", rev)
		}
		prev, err := readDisk(u.cfg.Destination)
		if err != nil {
			l.log.Warn("read destination", "template", u.cfg.Name, "error", err)
		}
		if prev.same(data) {
			l.log.Debug("render unchanged", "template", u.cfg.Name, "revision", rev, "outcome", "unchanged")
			l.a.metrics.renders.WithLabelValues(u.cfg.Name, "unchanged").Inc()
			l.a.setStatus(u.cfg.Name, func(s *Status) {
				s.Destination, s.Revision, s.Outcome, s.Error = u.cfg.Destination, rev, "unchanged", ""
			})
			continue
		}
		if u.rejected != nil && string(u.rejected) == string(data) {
			l.log.Info("render equals content rolled back before; waiting for the next change", "template", u.cfg.Name, "revision", rev)
			l.a.metrics.renders.WithLabelValues(u.cfg.Name, "rejected").Inc()
			continue
		}
		out = append(out, &candidate{u: u, rev: rev, data: data, prev: prev, prevRev: l.a.revision(u.cfg.Name), started: start})
	}
	return out, errs
}

// renderEnv reads the env prefixes of the due processes at rev and returns
// the processes whose environment changed.
func (l *loop) renderEnv(ctx context.Context, rev int64, due []*envUnit, now time.Time) []*envUnit {
	rctx, cancel := context.WithTimeout(ctx, l.readTimeout())
	defer cancel()
	var changed []*envUnit
	for _, e := range due {
		kvs, err := newView(rctx, l.a.client, rev).List(e.cfg.EnvPrefix)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if compacted(err) {
				l.full, l.fullAt = true, now
				return nil
			}
			e.fail(now)
			l.log.Warn("read process environment failed", "process", e.cfg.Name, "revision", rev, "error", err, "retry-in", backoff(e.failures))
			continue
		}
		env := make([]string, 0, len(kvs))
		for _, kv := range kvs {
			env = append(env, envName(strings.TrimPrefix(kv.Key, e.cfg.EnvPrefix))+"="+string(kv.Value))
		}
		sort.Strings(env)
		first := !e.rendered
		e.done(rev, e.deps)
		if !first && strings.Join(env, "\x00") == strings.Join(e.env, "\x00") {
			continue
		}
		e.env = env
		if !first {
			changed = append(changed, e)
		}
	}
	return changed
}

// envName turns a key suffix into an environment variable name: upper case,
// every character other than a letter or digit becoming '_'.
func envName(suffix string) string {
	b := []byte(strings.ToUpper(suffix))
	for i, c := range b {
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			b[i] = '_'
		}
	}
	return string(b)
}

// spec is the supervisor's view of a configured process.
func (l *loop) spec(p *config.Process) process.Spec {
	var env []string
	for k, v := range p.Env {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	for _, e := range l.envs {
		if e.cfg.Name == p.Name {
			env = append(env, e.env...)
		}
	}
	return process.Spec{
		Name:           p.Name,
		Command:        p.Command,
		Dir:            p.Dir,
		Env:            env,
		ReloadSignal:   p.ReloadSignal,
		KillSignal:     p.KillSignal,
		KillTimeout:    p.KillTimeout,
		RestartOnExit:  p.RestartOnExit,
		RestartBackoff: p.RestartBackoff,
	}
}

// ready reports whether every template and environment rendered once.
func (l *loop) ready() bool {
	for _, u := range l.units {
		if !u.rendered {
			return false
		}
	}
	for _, e := range l.envs {
		if !e.rendered {
			return false
		}
	}
	return true
}

// startProcesses starts the configured processes once everything they may
// read has been rendered. It reports whether it started them just now.
func (l *loop) startProcesses(ctx context.Context) bool {
	if l.started || !l.ready() || l.noHooks || l.once {
		return false
	}
	l.started = true
	for _, p := range l.cfg.Processes {
		if err := l.a.procs.Start(ctx, l.spec(p)); err != nil {
			l.log.Error("start process", "process", p.Name, "error", err)
		}
	}
	return len(l.cfg.Processes) > 0
}

// updateProcesses restarts the processes whose environment changed, after
// the configuration's splay, so a fleet does not restart at once.
func (l *loop) updateProcesses(ctx context.Context, changed []*envUnit) {
	if !l.started {
		l.startProcesses(ctx)
		return
	}
	if len(changed) > 0 {
		if err := l.splayWait(ctx, "splay before restart", changed[0].rev, l.cfg.Splay); err != nil {
			return
		}
	}
	for _, e := range changed {
		if err := l.a.procs.Update(ctx, l.spec(e.cfg)); err != nil {
			l.log.Error("restart process with new environment", "process", e.cfg.Name, "revision", e.rev, "error", err)
			continue
		}
		l.log.Info("restarted process with new environment", "process", e.cfg.Name, "revision", e.rev)
	}
}

// swap puts a new configuration in place of the running one.
func (l *loop) swap(ctx context.Context, cfg *config.Config) {
	old := l.cfg
	before := map[string]*config.Process{}
	for _, p := range old.Processes {
		before[p.Name] = p
	}
	l.setConfig(cfg, l.units)
	l.a.mu.Lock()
	l.a.cfg = cfg
	l.a.mu.Unlock()
	if err := l.watchSources(); err != nil {
		l.log.Warn("watch template sources", "error", err)
	}
	l.syncServices(ctx)
	l.syncStatus(ctx)
	if err := l.syncTelemetry(); err != nil {
		l.log.Error("telemetry listener not moved; the old one stays", "error", err)
	}
	l.a.metrics.forget(cfg, old)
	l.log.Info("configuration reloaded", "files", strings.Join(cfg.Files, ","), "templates", len(cfg.Templates), "services", len(cfg.Services))
	if !l.started {
		return
	}
	for _, p := range cfg.Processes {
		o := before[p.Name]
		delete(before, p.Name)
		if o != nil && sameProcess(o, p) {
			continue
		}
		if err := l.a.procs.Update(ctx, l.spec(p)); err != nil {
			l.log.Error("restart process with new definition", "process", p.Name, "error", err)
		}
	}
	for name := range before {
		if err := l.a.procs.Stop(ctx, name); err != nil {
			l.log.Error("stop process removed from the configuration", "process", name, "error", err)
			continue
		}
		l.log.Info("stopped process removed from the configuration", "process", name)
	}
}

// sameProcess reports whether a and b would run the same process. Which
// templates it reads does not change how it runs.
func sameProcess(a, b *config.Process) bool {
	x, y := *a, *b
	x.Pos, y.Pos = "", ""
	x.Templates, y.Templates = nil, nil
	return fmt.Sprint(x) == fmt.Sprint(y)
}

// watchSources watches the folders of the template source files, so an
// edit (editors often rename a new file into place) re-parses the template.
func (l *loop) watchSources() error {
	for _, dir := range l.fs.WatchList() {
		l.fs.Remove(dir)
	}
	dirs := map[string]bool{}
	for _, u := range l.units {
		if u.cfg.Source != "" {
			dirs[filepath.Dir(u.cfg.Source)] = true
		}
	}
	for dir := range dirs {
		if err := l.fs.Add(dir); err != nil {
			return fmt.Errorf("watch template source folder %s: %w", dir, err)
		}
	}
	return nil
}

// sourceChanged schedules a re-read of a template source that changed,
// once it has been quiet for sourceQuiet.
func (l *loop) sourceChanged(ev fsnotify.Event) {
	if !ev.Has(fsnotify.Write) && !ev.Has(fsnotify.Create) {
		return
	}
	name := filepath.Clean(ev.Name)
	for _, u := range l.units {
		if u.cfg.Source == name {
			l.srcDue[name] = time.Now().Add(sourceQuiet)
			return
		}
	}
}

// reparse re-parses the templates whose source is name. A broken edit, or
// an empty file (most likely one being written), keeps the old template.
func (l *loop) reparse(name string, now time.Time) {
	for _, u := range l.units {
		if u.cfg.Source != name {
			continue
		}
		text, err := os.ReadFile(name)
		if err != nil || string(text) == string(u.text) {
			continue
		}
		if len(text) == 0 {
			l.log.Warn("template source is empty; keeping the previous template", "template", u.cfg.Name, "source", name)
			continue
		}
		t, err := u.cfg.Parse(string(text))
		if err != nil {
			l.log.Error("template source edit rejected; keeping the previous template", "template", u.cfg.Name, "error", err)
			continue
		}
		u.tmpl, u.text, u.rejected = t, text, nil
		u.mark(now, true)
		l.log.Info("template source changed", "template", u.cfg.Name, "source", name)
	}
}
