package hook

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/tendkv/tend/internal/typo"
)

// SignalTarget says which process a signal hook signals, and with what.
// Exactly one of Pidfile and Process is set.
type SignalTarget struct {
	// Pidfile is a file holding the decimal pid of the process to signal,
	// read each time the hook runs.
	Pidfile string
	// Process is the name of a supervised process.
	Process string
	// Signal is a signal name or number as ParseSignal accepts it.
	// Empty means SIGHUP.
	Signal string
}

// Signal is a hook that sends a signal to a process found by pidfile or by
// supervised-process name.
type Signal struct {
	name    string
	pidfile string
	process string
	sig     syscall.Signal
}

// NewSignal validates t and returns a hook that signals its target.
func NewSignal(name string, t SignalTarget) (Hook, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	switch {
	case t.Pidfile == "" && t.Process == "":
		return nil, fmt.Errorf("hook %q: signal has no target (set pidfile or process)", name)
	case t.Pidfile != "" && t.Process != "":
		return nil, fmt.Errorf("hook %q: signal has both pidfile %q and process %q (keep one)", name, t.Pidfile, t.Process)
	}
	sig := syscall.SIGHUP
	if t.Signal != "" {
		s, err := ParseSignal(t.Signal)
		if err != nil {
			return nil, fmt.Errorf("hook %q: %w", name, err)
		}
		sig = s
	}
	return &Signal{name: name, pidfile: t.Pidfile, process: t.Process, sig: sig}, nil
}

// Name returns the hook's name.
func (h *Signal) Name() string { return h.name }

// Run sends the signal once.
func (h *Signal) Run(ctx context.Context, env Env) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("hook %q: %w", h.name, err)
	}
	if h.process != "" {
		if env.Processes == nil {
			return fmt.Errorf("hook %q: signal process %q: no supervised processes (declare process %q in the agent config)", h.name, h.process, h.process)
		}
		if err := env.Processes.Signal(h.process, h.sig); err != nil {
			return fmt.Errorf("hook %q: %w", h.name, err)
		}
		env.logger().Info("hook signalled process", "hook", h.name, "process", h.process, "signal", signalName(h.sig))
		return nil
	}
	pid, err := readPidfile(h.pidfile)
	if err != nil {
		return fmt.Errorf("hook %q: %w", h.name, err)
	}
	if err := syscall.Kill(pid, h.sig); err != nil {
		switch {
		case errors.Is(err, syscall.ESRCH):
			return fmt.Errorf("hook %q: signal %s to pid %d from pidfile %s: no such process (stale pidfile? is the process running?)", h.name, signalName(h.sig), pid, h.pidfile)
		case errors.Is(err, syscall.EPERM):
			return fmt.Errorf("hook %q: signal %s to pid %d from pidfile %s: permission denied (run the agent as the process's user or as root)", h.name, signalName(h.sig), pid, h.pidfile)
		}
		return fmt.Errorf("hook %q: signal %s to pid %d from pidfile %s: %w", h.name, signalName(h.sig), pid, h.pidfile, err)
	}
	env.logger().Info("hook signalled process", "hook", h.name, "pidfile", h.pidfile, "pid", pid, "signal", signalName(h.sig))
	return nil
}

// readPidfile returns the positive pid held in path.
func readPidfile(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return 0, fmt.Errorf("read pidfile %s: file does not exist (is the process running? check the pidfile path)", path)
		}
		return 0, fmt.Errorf("read pidfile %s: %w", path, err)
	}
	text := strings.TrimSpace(string(b))
	if text == "" {
		return 0, fmt.Errorf("read pidfile %s: file is empty (is the process still starting?)", path)
	}
	pid, err := strconv.Atoi(text)
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("read pidfile %s: holds %q, not a process id (point pidfile at the file the process writes its pid to)", path, clip(text, 40))
	}
	return pid, nil
}

// signals lists the signals of this platform that have names, in number
// order (SIGHUP, SIGINT, ...).
var signals = func() []namedSignal {
	var list []namedSignal
	for n := 1; n < 65; n++ {
		sig := syscall.Signal(n)
		if name := unix.SignalName(sig); name != "" {
			list = append(list, namedSignal{name, sig})
		}
	}
	return list
}()

type namedSignal struct {
	name string
	sig  syscall.Signal
}

// ParseSignal turns a signal name or number into a signal. It accepts
// "SIGHUP", "HUP", "hup", "sighup" and "1" alike. An unknown name gives an
// error suggesting the closest known one: unknown signal "HUPP" (try SIGHUP).
func ParseSignal(s string) (syscall.Signal, error) {
	text := strings.TrimSpace(s)
	if text == "" {
		return 0, errors.New(`empty signal name (use a name like "SIGHUP" or a number like "1")`)
	}
	if n, err := strconv.Atoi(text); err == nil {
		for _, e := range signals {
			if int(e.sig) == n {
				return e.sig, nil
			}
		}
		return 0, fmt.Errorf("unknown signal %q (use a name like SIGHUP, or a number from 1 to %d)", s, signals[len(signals)-1].sig)
	}
	upper := strings.ToUpper(text)
	if !strings.HasPrefix(upper, "SIG") {
		upper = "SIG" + upper
	}
	for _, e := range signals {
		if e.name == upper {
			return e.sig, nil
		}
	}
	best, bestDist := "", -1
	for _, e := range signals {
		if d := typo.Distance(upper, e.name); bestDist < 0 || d < bestDist {
			best, bestDist = e.name, d
		}
	}
	return 0, fmt.Errorf("unknown signal %q (try %s)", s, best)
}

// signalName returns the SIG name of sig, or its number.
func signalName(sig syscall.Signal) string {
	for _, e := range signals {
		if e.sig == sig {
			return e.name
		}
	}
	return "signal " + strconv.Itoa(int(sig))
}

// clip returns s cut to at most n bytes, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
