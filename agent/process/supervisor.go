package process

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"time"
)

// Supervisor runs named child processes. It is safe for concurrent use and
// implements hook.ProcessRegistry.
type Supervisor struct {
	logger *slog.Logger
	ctx    context.Context // done once Close begins; ends backoff waits
	cancel context.CancelFunc
	wg     sync.WaitGroup // waiters and restart-on-exit goroutines

	mu       sync.Mutex
	children map[string]*child
	closed   bool
}

// child is one named process across its runs.
type child struct {
	op sync.Mutex // serializes start, stop and restart of this child

	mu      sync.Mutex
	spec    Spec
	cur     *run // the latest run; nil before the first start
	backoff time.Duration
	gen     int  // counts runs; a restart-on-exit acts only on its own run
	removed bool // Stop forgot this child: it must not start again
}

// NewSupervisor returns a supervisor with no processes. Close it to stop
// them.
func NewSupervisor(logger *slog.Logger) *Supervisor {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Supervisor{logger: logger, ctx: ctx, cancel: cancel, children: map[string]*child{}}
}

var errClosed = errors.New("supervisor is closed (the agent is stopping)")

// Start starts the process spec describes and returns once it has been
// executed. The name must not be in use.
func (s *Supervisor) Start(ctx context.Context, spec Spec) error {
	spec, err := spec.withDefaults()
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("start process %q: %w", spec.Name, err)
	}
	c := &child{spec: spec, backoff: spec.RestartBackoff}
	c.op.Lock()
	defer c.op.Unlock()
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		return fmt.Errorf("start process %q: %w", spec.Name, errClosed)
	case s.children[spec.Name] != nil:
		s.mu.Unlock()
		return fmt.Errorf("start process %q: already started (give each process its own name, or call Update)", spec.Name)
	}
	s.children[spec.Name] = c
	s.mu.Unlock()
	if err := s.startLocked(c); err != nil {
		s.mu.Lock()
		delete(s.children, spec.Name)
		s.mu.Unlock()
		return fmt.Errorf("start process %q: %w", spec.Name, err)
	}
	return nil
}

// Update replaces the spec of a running process and restarts it with the
// new one. A name not yet started is started.
func (s *Supervisor) Update(ctx context.Context, spec Spec) error {
	spec, err := spec.withDefaults()
	if err != nil {
		return err
	}
	c, err := s.child(spec.Name)
	if err != nil {
		return s.Start(ctx, spec)
	}
	c.op.Lock()
	defer c.op.Unlock()
	c.mu.Lock()
	old := c.spec
	c.mu.Unlock()
	if err := s.stopLocked(ctx, c, old); err != nil {
		return fmt.Errorf("update process %q: %w", spec.Name, err)
	}
	c.mu.Lock()
	c.spec = spec
	c.backoff = spec.RestartBackoff
	c.mu.Unlock()
	if err := s.startLocked(c); err != nil {
		return fmt.Errorf("update process %q: %w", spec.Name, err)
	}
	return nil
}

// Restart stops the named process gracefully (KillSignal to its group,
// SIGKILL after KillTimeout, or at once when ctx is done) and starts it
// again, returning once the new process has started. A process that had
// exited is simply started.
func (s *Supervisor) Restart(ctx context.Context, name string) error {
	c, err := s.child(name)
	if err != nil {
		return fmt.Errorf("restart process %q: %w", name, err)
	}
	if err := s.splay(ctx, c); err != nil {
		return fmt.Errorf("restart process %q: %w", name, err)
	}
	c.op.Lock()
	defer c.op.Unlock()
	c.mu.Lock()
	spec := c.spec
	c.mu.Unlock()
	if err := s.stopLocked(ctx, c, spec); err != nil {
		return fmt.Errorf("restart process %q: %w", name, err)
	}
	if err := s.startLocked(c); err != nil {
		return fmt.Errorf("restart process %q: %w", name, err)
	}
	return nil
}

// Stop stops the named process gracefully, as Restart does, and forgets
// it, so its name may be started again. Use it when a configuration reload
// drops a process.
func (s *Supervisor) Stop(ctx context.Context, name string) error {
	c, err := s.child(name)
	if err != nil {
		return fmt.Errorf("stop process %q: %w", name, err)
	}
	c.op.Lock()
	defer c.op.Unlock()
	c.mu.Lock()
	spec := c.spec
	c.removed = true
	c.mu.Unlock()
	s.mu.Lock()
	if s.children[name] == c {
		delete(s.children, name)
	}
	s.mu.Unlock()
	if err := s.stopLocked(ctx, c, spec); err != nil {
		return fmt.Errorf("stop process %q: %w", name, err)
	}
	return nil
}

// Reload sends the process its ReloadSignal, or restarts it if it has none.
func (s *Supervisor) Reload(name string) error {
	c, err := s.child(name)
	if err != nil {
		return fmt.Errorf("reload process %q: %w", name, err)
	}
	c.mu.Lock()
	sig := c.spec.ReloadSignal
	c.mu.Unlock()
	if sig == 0 {
		return s.Restart(s.ctx, name)
	}
	if err := s.splay(s.ctx, c); err != nil {
		return fmt.Errorf("reload process %q: %w", name, err)
	}
	return s.Signal(name, sig)
}

// splay waits a random time below c's Splay, or until ctx is done or the
// supervisor closes.
func (s *Supervisor) splay(ctx context.Context, c *child) error {
	c.mu.Lock()
	limit := c.spec.Splay
	c.mu.Unlock()
	if limit <= 0 {
		return nil
	}
	wait := rand.N(limit)
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("canceled during the %s splay: %w", wait.Round(time.Millisecond), context.Cause(ctx))
	case <-s.ctx.Done():
		return fmt.Errorf("during the %s splay: %w", wait.Round(time.Millisecond), errClosed)
	}
}

// Signal sends sig to the named process (its leader, not its group).
func (s *Supervisor) Signal(name string, sig os.Signal) error {
	c, err := s.child(name)
	if err != nil {
		return fmt.Errorf("signal %s to process %q: %w", signalName(sig), name, err)
	}
	c.mu.Lock()
	r := c.cur
	c.mu.Unlock()
	if r == nil || r.exited() {
		return fmt.Errorf("signal %s to process %q: %w", signalName(sig), name, notRunning(r))
	}
	if err := r.cmd.Process.Signal(sig); err != nil {
		if errors.Is(err, os.ErrProcessDone) {
			return fmt.Errorf("signal %s to process %q: it exited meanwhile (check its log)", signalName(sig), name)
		}
		return fmt.Errorf("signal %s to process %q (pid %d): %w", signalName(sig), name, r.pid, err)
	}
	s.logger.Info("signalled process", "process", name, "pid", r.pid, "signal", signalName(sig))
	return nil
}

// Pid returns the pid of the named process, or 0 if it is not running.
func (s *Supervisor) Pid(name string) int {
	c, err := s.child(name)
	if err != nil {
		return 0
	}
	c.mu.Lock()
	r := c.cur
	c.mu.Unlock()
	if r == nil || r.exited() {
		return 0
	}
	return r.pid
}

// Close stops every process gracefully, all at once, and waits for them
// and for the supervisor's goroutines. Each stop takes at most its
// KillTimeout (plus the time SIGKILL needs). Close is idempotent.
func (s *Supervisor) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.wg.Wait()
		return nil
	}
	s.closed = true
	children := make([]*child, 0, len(s.children))
	for _, c := range s.children {
		children = append(children, c)
	}
	s.mu.Unlock()
	s.cancel() // ends pending restart-on-exit waits
	var stops sync.WaitGroup
	for _, c := range children {
		stops.Go(func() {
			c.op.Lock()
			defer c.op.Unlock()
			c.mu.Lock()
			spec := c.spec
			c.mu.Unlock()
			_ = s.stopLocked(context.Background(), c, spec)
		})
	}
	stops.Wait()
	s.wg.Wait()
	return nil
}

// child returns the named child.
func (s *Supervisor) child(name string) (*child, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errClosed
	}
	c := s.children[name]
	if c == nil {
		return nil, fmt.Errorf("no such process (declare process %q in the agent config)", name)
	}
	return c, nil
}

// stopLocked stops c's current run, if any, and waits for it. c.op is held.
func (s *Supervisor) stopLocked(ctx context.Context, c *child, spec Spec) error {
	c.mu.Lock()
	r := c.cur
	c.mu.Unlock()
	if r == nil || r.exited() {
		if r != nil {
			r.mu.Lock()
			r.stopping = true // a pending restart-on-exit is superseded
			r.mu.Unlock()
		}
		return nil
	}
	began := time.Now()
	r.stop(ctx, spec.KillSignal, spec.KillTimeout)
	s.logger.Info("stopped process", "process", spec.Name, "pid", r.pid, "how", exitText(r.err), "took", time.Since(began).Round(time.Millisecond))
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("killed pid %d early: %w", r.pid, err)
	}
	return nil
}

// startLocked starts a new run of c. c.op is held.
func (s *Supervisor) startLocked(c *child) error {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return errClosed
	}
	c.mu.Lock()
	spec := c.spec
	gen := c.gen + 1
	removed := c.removed
	c.mu.Unlock()
	if removed {
		return errors.New("no such process (it was stopped and removed)")
	}
	r, err := start(spec, &s.wg, func(r *run) { s.exited(c, r, gen) })
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.cur, c.gen = r, gen
	c.mu.Unlock()
	s.logger.Info("started process", "process", spec.Name, "pid", r.pid)
	return nil
}

// exited runs on the waiter goroutine of run r (generation gen) once it has
// been reaped. An exit nobody asked for is logged and, with RestartOnExit,
// followed by a restart after the backoff.
func (s *Supervisor) exited(c *child, r *run, gen int) {
	if r.expected() {
		return
	}
	c.mu.Lock()
	spec := c.spec
	ran := time.Since(r.started)
	if ran >= max(10*spec.RestartBackoff, healthyRun) {
		c.backoff = spec.RestartBackoff // it ran a good while: start over
	}
	wait := c.backoff
	c.backoff = min(2*c.backoff, max(maxRestartBackoff, spec.RestartBackoff))
	c.mu.Unlock()
	log := s.logger.With("process", spec.Name, "pid", r.pid, "exit-code", exitCode(r), "how", exitText(r.err), "ran", ran.Round(time.Millisecond))
	if !spec.RestartOnExit {
		if exitCode(r) == 0 {
			log.Warn("process exited (enable restart on exit to keep it running)")
		} else {
			log.Error("process exited (enable restart on exit to keep it running)")
		}
		return
	}
	log.Error("process exited, restarting", "backoff", wait)
	s.wg.Go(func() { s.restartAfter(c, gen, wait) })
}

// restartAfter starts c again after wait, unless the supervisor closes or
// another start supersedes run generation gen meanwhile.
func (s *Supervisor) restartAfter(c *child, gen int, wait time.Duration) {
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-s.ctx.Done():
		return
	case <-t.C:
	}
	c.op.Lock()
	defer c.op.Unlock()
	c.mu.Lock()
	stale := c.removed || c.gen != gen || c.cur == nil || c.cur.expected()
	name := c.spec.Name
	c.mu.Unlock()
	if stale {
		return
	}
	if err := s.startLocked(c); err != nil {
		if errors.Is(err, errClosed) {
			return
		}
		// Retry like an exit: the backoff keeps growing.
		c.mu.Lock()
		wait := c.backoff
		c.backoff = min(2*c.backoff, max(maxRestartBackoff, c.spec.RestartBackoff))
		c.mu.Unlock()
		s.logger.Error("restart process", "process", name, "err", err, "backoff", wait)
		s.wg.Go(func() { s.restartAfter(c, gen, wait) })
	}
}

// notRunning explains why the latest run r (nil if none) is not running.
func notRunning(r *run) error {
	if r == nil {
		return errors.New("not running (it has not been started)")
	}
	return fmt.Errorf("not running (it ended with %s; check its log)", exitText(r.err))
}
