package hook

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// DefaultExecTimeout bounds an exec hook whose timeout is zero.
const DefaultExecTimeout = 30 * time.Second

// outputLimit is how many trailing bytes of a command's output an error keeps.
const outputLimit = 4 << 10

// Exec is a hook that runs a command and waits for it.
type Exec struct {
	name    string
	command []string
	timeout time.Duration
	env     []string // KEY=VALUE, sorted, added to the agent's environment
	dir     string
}

// NewExec validates and returns a hook that runs command (argv, no shell) in
// dir with env added to the agent's environment, killing its whole process
// group if it runs longer than timeout (zero means DefaultExecTimeout).
func NewExec(name string, command []string, timeout time.Duration, env map[string]string, dir string) (Hook, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	if len(command) == 0 || command[0] == "" {
		return nil, fmt.Errorf(`hook %q: exec has no command (set command = ["systemctl", "reload", "nginx"])`, name)
	}
	if timeout < 0 {
		return nil, fmt.Errorf("hook %q: exec timeout %s is negative (use a positive duration like \"30s\")", name, timeout)
	}
	if timeout == 0 {
		timeout = DefaultExecTimeout
	}
	var kv []string
	for k, v := range env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return nil, fmt.Errorf("hook %q: exec env name %q is not valid (use a name without '=' like \"APP_ENV\")", name, k)
		}
		if strings.ContainsRune(v, 0) {
			return nil, fmt.Errorf("hook %q: exec env %s holds a NUL byte (remove it)", name, k)
		}
		kv = append(kv, k+"="+v)
	}
	sort.Strings(kv)
	return &Exec{name: name, command: append([]string(nil), command...), timeout: timeout, env: kv, dir: dir}, nil
}

// Name returns the hook's name.
func (h *Exec) Name() string { return h.name }

// Run runs the command once. A non-zero exit, a timeout or a failure to start
// gives an error carrying the last 4 KiB of the command's combined output.
func (h *Exec) Run(ctx context.Context, env Env) error {
	runCtx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()

	display := strings.Join(h.command, " ")
	out := &tail{limit: outputLimit}
	cmd := exec.CommandContext(runCtx, h.command[0], h.command[1:]...)
	cmd.Dir = h.dir
	cmd.Env = append(os.Environ(), h.env...)
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		// The command leads its own process group: kill the group, so a
		// shell's children die with it.
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	// A background child left by the command may hold the output pipe
	// open; stop waiting for it shortly after the command itself exits.
	cmd.WaitDelay = time.Second

	start := time.Now()
	err := cmd.Run()
	took := time.Since(start).Round(time.Millisecond)
	if errors.Is(err, exec.ErrWaitDelay) && ctx.Err() == nil && runCtx.Err() == nil {
		err = nil // the command exited 0; only its leftover child kept the pipe
	}
	if err == nil {
		// The agent logs the hook's outcome; this line adds the command.
		env.logger().Debug("exec hook command exited 0", "hook", h.name, "command", display, "took", took)
		return nil
	}
	suffix := ""
	if output := strings.TrimSpace(out.String()); output != "" {
		suffix = ": " + output
	}
	switch {
	case cmd.Process == nil:
		return fmt.Errorf("hook %q: exec %s: %w (check the command path, PATH and dir)", h.name, display, err)
	case ctx.Err() != nil:
		return fmt.Errorf("hook %q: exec %s: stopped: %w%s", h.name, display, context.Cause(ctx), suffix)
	case runCtx.Err() != nil:
		return fmt.Errorf("hook %q: exec %s: timed out after %s and was killed (raise timeout or make the command faster)%s", h.name, display, h.timeout, suffix)
	}
	return fmt.Errorf("hook %q: exec %s: %w%s", h.name, display, err, suffix)
}

// tail is an io.Writer that keeps the last limit bytes written to it.
type tail struct {
	mu      sync.Mutex
	limit   int
	buf     []byte
	dropped bool
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(p)
	if len(p) >= t.limit {
		t.dropped = t.dropped || len(t.buf) > 0 || len(p) > t.limit
		t.buf = append(t.buf[:0], p[len(p)-t.limit:]...)
		return n, nil
	}
	if over := len(t.buf) + len(p) - t.limit; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
		t.dropped = true
	}
	t.buf = append(t.buf, p...)
	return n, nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.dropped {
		return "…" + string(t.buf)
	}
	return string(t.buf)
}
