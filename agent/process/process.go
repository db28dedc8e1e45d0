package process

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Defaults for a Spec's zero fields.
const (
	DefaultKillSignal     = syscall.SIGTERM
	DefaultKillTimeout    = 10 * time.Second
	DefaultRestartBackoff = time.Second
	// maxRestartBackoff caps the doubling backoff of a process that keeps
	// exiting (unless RestartBackoff itself is larger).
	maxRestartBackoff = time.Minute
	// healthyRun is how long a process must run (and at least ten times
	// RestartBackoff) for its next exit to count as a fresh failure.
	healthyRun = 10 * time.Second
)

// Spec describes one supervised process.
type Spec struct {
	// Name identifies the process to Restart, Reload, Signal and hooks.
	Name string
	// Command is the argv to run; no shell is involved.
	Command []string
	// Dir is the working directory; empty means the agent's.
	Dir string
	// Env holds KEY=VALUE entries added to the agent's environment.
	Env []string
	// ReloadSignal is sent by Reload; zero means Reload restarts.
	ReloadSignal syscall.Signal
	// KillSignal asks the process group to stop; zero means SIGTERM.
	KillSignal syscall.Signal
	// KillTimeout is how long a stop waits before SIGKILL; zero means 10s.
	KillTimeout time.Duration
	// Stdout and Stderr receive the process's output; nil means the
	// agent's own stdout and stderr.
	Stdout, Stderr io.Writer
	// RestartOnExit starts the process again when it exits on its own.
	RestartOnExit bool
	// RestartBackoff is the first wait before such a restart; zero means 1s.
	RestartBackoff time.Duration
	// Splay is the longest random wait before Reload and Restart act, so
	// that many hosts do not reload at the same moment; zero means none.
	Splay time.Duration
}

// withDefaults validates s and fills its zero fields.
func (s Spec) withDefaults() (Spec, error) {
	if s.Name == "" {
		return s, errors.New(`process has no name (give it one: process "app" { ... })`)
	}
	if len(s.Command) == 0 || s.Command[0] == "" {
		return s, fmt.Errorf(`process %q has no command (set command = ["/usr/bin/app", "--flag"])`, s.Name)
	}
	for _, kv := range s.Env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return s, fmt.Errorf("process %q: env entry %q is not KEY=VALUE (write it as NAME=value)", s.Name, kv)
		}
	}
	if s.KillTimeout < 0 || s.RestartBackoff < 0 || s.Splay < 0 {
		return s, fmt.Errorf("process %q: kill timeout %s, restart backoff %s and splay %s must not be negative", s.Name, s.KillTimeout, s.RestartBackoff, s.Splay)
	}
	if s.KillSignal == 0 {
		s.KillSignal = DefaultKillSignal
	}
	if s.KillTimeout == 0 {
		s.KillTimeout = DefaultKillTimeout
	}
	if s.RestartBackoff == 0 {
		s.RestartBackoff = DefaultRestartBackoff
	}
	if s.Stdout == nil {
		s.Stdout = os.Stdout
	}
	if s.Stderr == nil {
		s.Stderr = os.Stderr
	}
	s.Command = append([]string(nil), s.Command...)
	s.Env = append([]string(nil), s.Env...)
	return s, nil
}

// run is one execution of a process: from exec to reaped.
type run struct {
	cmd     *exec.Cmd
	pid     int
	started time.Time
	done    chan struct{} // closed once the process has been waited for
	err     error         // Wait's result; read only after done is closed

	mu       sync.Mutex
	stopping bool // a stop was asked for: its exit is expected
}

// start execs spec and starts the goroutine that waits for it; the
// goroutine is counted in wg and ends when the process has exited.
//
// The process is told to stop (spec.KillSignal) if the agent dies without
// stopping it — killed outright, say — so that it does not live on holding
// its port with no one supervising it. Linux sends that signal when the
// thread that started the process ends, not the whole agent, so the
// goroutine that starts and waits for the process keeps its thread for the
// process's life.
func start(spec Spec, wg *sync.WaitGroup, onExit func(*run)) (*run, error) {
	cmd := exec.Command(spec.Command[0], spec.Command[1:]...)
	cmd.Dir = spec.Dir
	cmd.Env = append(os.Environ(), spec.Env...)
	cmd.Stdout = spec.Stdout
	cmd.Stderr = spec.Stderr
	cmd.SysProcAttr = sysProcAttr(spec.KillSignal)
	// A grandchild left holding the output pipes must not delay noticing
	// that the process itself exited.
	cmd.WaitDelay = time.Second
	started := make(chan error, 1)
	r := &run{cmd: cmd, done: make(chan struct{})}
	wg.Go(func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- fmt.Errorf("exec %s: %w", strings.Join(spec.Command, " "), err)
			return
		}
		r.pid, r.started = cmd.Process.Pid, time.Now()
		started <- nil
		r.err = cmd.Wait()
		close(r.done)
		onExit(r)
	})
	if err := <-started; err != nil {
		return nil, err
	}
	return r, nil
}

// expected reports whether a stop was asked for.
func (r *run) expected() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stopping
}

// exited reports whether the process has been reaped.
func (r *run) exited() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// stop asks the process group to stop with sig, escalates to SIGKILL after
// timeout or when ctx is done, and returns once the process is reaped.
func (r *run) stop(ctx context.Context, sig syscall.Signal, timeout time.Duration) {
	r.mu.Lock()
	r.stopping = true
	r.mu.Unlock()
	if r.exited() {
		return
	}
	_ = syscall.Kill(-r.pid, sig)
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-r.done:
	case <-t.C:
		_ = syscall.Kill(-r.pid, syscall.SIGKILL)
		<-r.done
	case <-ctx.Done():
		_ = syscall.Kill(-r.pid, syscall.SIGKILL)
		<-r.done
	}
	// The leader is gone; members of its group that outlived it (children
	// that ignored the kill signal) must not keep running. The group id
	// cannot be reused while any member lives.
	_ = syscall.Kill(-r.pid, syscall.SIGKILL)
}

// exitText describes how a run ended, for logs and errors.
func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return "killed by " + signalName(ws.Signal())
		}
	}
	return err.Error()
}

// exitCode returns the process's exit code, or -1 if a signal ended it.
func exitCode(r *run) int {
	if r.cmd.ProcessState == nil {
		return -1
	}
	return r.cmd.ProcessState.ExitCode()
}

// signalName returns "SIGKILL" for syscall.SIGKILL, and so on.
func signalName(sig os.Signal) string {
	if s, ok := sig.(syscall.Signal); ok {
		if name := unix.SignalName(s); name != "" {
			return name
		}
	}
	return sig.String()
}
