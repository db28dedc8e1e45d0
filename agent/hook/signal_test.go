package hook_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/tendkv/tend/agent/hook"
)

func TestParseSignal(t *testing.T) {
	good := []struct {
		in   string
		want syscall.Signal
	}{
		{"SIGHUP", syscall.SIGHUP},
		{"HUP", syscall.SIGHUP},
		{"hup", syscall.SIGHUP},
		{"sighup", syscall.SIGHUP},
		{" 1 ", syscall.SIGHUP},
		{"usr1", syscall.SIGUSR1},
		{"SIGUSR2", syscall.SIGUSR2},
		{"term", syscall.SIGTERM},
		{"15", syscall.SIGTERM},
		{"SIGWINCH", syscall.SIGWINCH},
	}
	for _, c := range good {
		got, err := hook.ParseSignal(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseSignal(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
	bad := []struct{ in, want string }{
		{"HUPP", `unknown signal "HUPP" (try SIGHUP)`},
		{"SIGTREM", `unknown signal "SIGTREM" (try SIGTERM)`},
		{"usr3", `unknown signal "usr3" (try SIGUSR1)`},
		{"99", `unknown signal "99"`},
		{"0", `unknown signal "0"`},
		{"", "empty signal name"},
	}
	for _, c := range bad {
		_, err := hook.ParseSignal(c.in)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseSignal(%q) error = %v; want it to contain %q", c.in, err, c.want)
		}
	}
}

func TestNewSignalValidates(t *testing.T) {
	cases := []struct {
		target hook.SignalTarget
		want   string
	}{
		{hook.SignalTarget{}, `hook "s": signal has no target (set pidfile or process)`},
		{hook.SignalTarget{Pidfile: "/run/a.pid", Process: "a"}, `hook "s": signal has both pidfile`},
		{hook.SignalTarget{Process: "a", Signal: "HUPP"}, `hook "s": unknown signal "HUPP" (try SIGHUP)`},
	}
	for _, c := range cases {
		_, err := hook.NewSignal("s", c.target)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("NewSignal(%+v) error = %v; want it to contain %q", c.target, err, c.want)
		}
	}
	if _, err := hook.NewSignal("", hook.SignalTarget{Process: "a"}); err == nil {
		t.Error("NewSignal accepted an empty hook name")
	}
}

// writePidfile writes content to a pidfile in a fresh folder.
func writePidfile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "app.pid")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestSignalPidfileDeliversSignal(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	h, err := hook.NewSignal("stop", hook.SignalTarget{Pidfile: writePidfile(t, strconv.Itoa(cmd.Process.Pid)+"\n"), Signal: "TERM"})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Run(context.Background(), hook.Env{}); err != nil {
		t.Fatalf("Run: %v", err)
	}
	err = cmd.Wait()
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
		t.Fatalf("sleep ended with %v, want killed by SIGTERM", err)
	}
}

func TestSignalPidfileErrors(t *testing.T) {
	// A pid that surely has no process: a child we started and reaped.
	done := exec.Command("true")
	if err := done.Run(); err != nil {
		t.Fatal(err)
	}
	deadPid := strconv.Itoa(done.Process.Pid)

	missing := filepath.Join(t.TempDir(), "none.pid")
	cases := []struct {
		name, pidfile, want string
	}{
		{"missing", missing, `hook "reload": read pidfile ` + missing + `: file does not exist`},
		{"empty", writePidfile(t, "\n"), "file is empty"},
		{"garbage", writePidfile(t, "nginx\n"), `holds "nginx", not a process id`},
		{"negative", writePidfile(t, "-1"), `holds "-1", not a process id`},
		{"zero", writePidfile(t, "0"), `holds "0", not a process id`},
		{"no process", writePidfile(t, deadPid), "signal SIGHUP to pid " + deadPid + " from pidfile"},
		{"no process hint", writePidfile(t, deadPid), "no such process (stale pidfile?"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h, err := hook.NewSignal("reload", hook.SignalTarget{Pidfile: c.pidfile})
			if err != nil {
				t.Fatal(err)
			}
			err = h.Run(context.Background(), hook.Env{})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Run error = %v; want it to contain %q", err, c.want)
			}
		})
	}
}

func TestSignalProcessNeedsRegistry(t *testing.T) {
	h, err := hook.NewSignal("reload", hook.SignalTarget{Process: "app"})
	if err != nil {
		t.Fatal(err)
	}
	err = h.Run(context.Background(), hook.Env{})
	if err == nil || !strings.Contains(err.Error(), `hook "reload": signal process "app": no supervised processes`) {
		t.Fatalf("Run without processes: %v", err)
	}
}
