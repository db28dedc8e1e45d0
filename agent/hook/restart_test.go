package hook_test

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tendkv/tend/agent/hook"
	"github.com/tendkv/tend/agent/process"
)

// supervise starts `sleep 30` as the supervised process "app".
func supervise(t *testing.T) *process.Supervisor {
	t.Helper()
	s := process.NewSupervisor(nil)
	t.Cleanup(func() { s.Close() })
	if err := s.Start(context.Background(), process.Spec{Name: "app", Command: []string{"sleep", "30"}, KillTimeout: 2 * time.Second}); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRestartHookRestartsSupervisedProcess(t *testing.T) {
	s := supervise(t)
	old := s.Pid("app")
	h, err := hook.NewRestart("bounce", "app")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Run(context.Background(), hook.Env{Processes: s}); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if pid := s.Pid("app"); pid == 0 || pid == old {
		t.Fatalf("pid %d -> %d after the restart hook, want a new process", old, pid)
	}
	// The supervisor's child is ours: it must be reaped, not a zombie.
	if err := syscall.Kill(old, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("old pid %d still exists (kill 0: %v)", old, err)
	}
}

func TestRestartHookErrors(t *testing.T) {
	if _, err := hook.NewRestart("bounce", ""); err == nil || !strings.Contains(err.Error(), `hook "bounce": restart names no process`) {
		t.Fatalf("NewRestart without a process: %v", err)
	}
	h, err := hook.NewRestart("bounce", "nope")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Run(context.Background(), hook.Env{}); err == nil || !strings.Contains(err.Error(), "no supervised processes") {
		t.Fatalf("Run without processes: %v", err)
	}
	s := supervise(t)
	err = h.Run(context.Background(), hook.Env{Processes: s})
	if err == nil || !strings.Contains(err.Error(), `hook "bounce": restart process "nope": no such process`) {
		t.Fatalf("Run for an unknown process: %v", err)
	}
}

func TestSignalHookSignalsSupervisedProcess(t *testing.T) {
	s := supervise(t)
	h, err := hook.NewSignal("poke", hook.SignalTarget{Process: "app", Signal: "USR1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Run(context.Background(), hook.Env{Processes: s}); err != nil {
		t.Fatalf("Run: %v", err)
	}
	// sleep dies of SIGUSR1: the signal arrived.
	deadline := time.Now().Add(3 * time.Second)
	for s.Pid("app") != 0 {
		if time.Now().After(deadline) {
			t.Fatal("sleep still runs after SIGUSR1")
		}
		time.Sleep(5 * time.Millisecond)
	}
	err = h.Run(context.Background(), hook.Env{Processes: s})
	if err == nil || !strings.Contains(err.Error(), `hook "poke": signal SIGUSR1 to process "app": not running (it ended with killed by SIGUSR1`) {
		t.Fatalf("Run on an exited process: %v", err)
	}
}
