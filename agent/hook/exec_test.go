package hook_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tendkv/tend/agent/hook"
)

func TestExecSuccessUsesEnvAndDir(t *testing.T) {
	dir := t.TempDir()
	h, err := hook.NewExec("write", []string{"/bin/sh", "-c", `printf '%s %s' "$GREETING" "$(pwd)" > out`}, time.Second, map[string]string{"GREETING": "hello"}, dir)
	if err != nil {
		t.Fatal(err)
	}
	if h.Name() != "write" {
		t.Fatalf("Name() = %q", h.Name())
	}
	if err := h.Run(context.Background(), hook.Env{}); err != nil {
		t.Fatalf("Run: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "out"))
	if err != nil {
		t.Fatal(err)
	}
	realDir, _ := filepath.EvalSymlinks(dir)
	if got := string(b); got != "hello "+realDir && got != "hello "+dir {
		t.Fatalf("command wrote %q, want %q", got, "hello "+dir)
	}
}

func TestExecFailureCarriesOutput(t *testing.T) {
	h, err := hook.NewExec("notify", []string{"/bin/sh", "-c", "echo to-stdout; echo reload failed >&2; exit 3"}, time.Second, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	err = h.Run(context.Background(), hook.Env{})
	want := `hook "notify": exec /bin/sh -c echo to-stdout; echo reload failed >&2; exit 3: exit status 3: to-stdout` + "\nreload failed"
	if err == nil || err.Error() != want {
		t.Fatalf("Run error:\n%v\nwant:\n%s", err, want)
	}
}

func TestExecOutputIsBounded(t *testing.T) {
	// 20000 bytes of 'a', then a last line: the error keeps the tail.
	h, err := hook.NewExec("noisy", []string{"/bin/sh", "-c", `i=0; while [ $i -lt 200 ]; do printf '%0100d' 0; i=$((i+1)); done; echo; echo LAST; exit 1`}, 5*time.Second, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	err = h.Run(context.Background(), hook.Env{})
	if err == nil {
		t.Fatal("Run succeeded")
	}
	msg := err.Error()
	if !strings.HasSuffix(msg, "LAST") || !strings.Contains(msg, "exit status 1: …") {
		t.Fatalf("error does not end with the output's tail: ...%q", msg[max(0, len(msg)-200):])
	}
	if len(msg) > 4096+300 {
		t.Fatalf("error is %d bytes; output should be cut to 4 KiB", len(msg))
	}
}

func TestExecTimeoutKillsGroup(t *testing.T) {
	dir := t.TempDir()
	pidfile := filepath.Join(dir, "bg.pid")
	// The shell's background sleep is in the hook's process group.
	script := fmt.Sprintf(`sleep 30 & echo $! > %s; echo started; wait`, pidfile)
	h, err := hook.NewExec("slow", []string{"/bin/sh", "-c", script}, 300*time.Millisecond, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	err = h.Run(context.Background(), hook.Env{})
	took := time.Since(began)
	if err == nil || !strings.Contains(err.Error(), `hook "slow": exec /bin/sh -c sleep 30 &`) ||
		!strings.Contains(err.Error(), "timed out after 300ms and was killed (raise timeout") ||
		!strings.HasSuffix(err.Error(), ": started") {
		t.Fatalf("Run error = %v; want a timeout error with the output", err)
	}
	if took > 3*time.Second {
		t.Fatalf("Run took %s with a 300ms timeout", took)
	}
	b, err := os.ReadFile(pidfile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for !gone(pid) {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("background sleep %d survived the timeout", pid)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestExecCanceledByCaller(t *testing.T) {
	h, err := hook.NewExec("slow", []string{"sleep", "30"}, time.Minute, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err = h.Run(ctx, hook.Env{})
	if err == nil || !strings.Contains(err.Error(), "stopped: context deadline exceeded") {
		t.Fatalf("Run error = %v; want it stopped by the caller's context", err)
	}
}

func TestExecMissingProgram(t *testing.T) {
	h, err := hook.NewExec("x", []string{"/no/such/program"}, time.Second, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	err = h.Run(context.Background(), hook.Env{})
	if err == nil || !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), `hook "x": exec /no/such/program:`) {
		t.Fatalf("Run error = %v", err)
	}
}

func TestNewExecValidates(t *testing.T) {
	cases := []struct {
		command []string
		timeout time.Duration
		env     map[string]string
		want    string
	}{
		{nil, 0, nil, `hook "h": exec has no command`},
		{[]string{""}, 0, nil, `hook "h": exec has no command`},
		{[]string{"true"}, -time.Second, nil, `hook "h": exec timeout -1s is negative`},
		{[]string{"true"}, 0, map[string]string{"A=B": "c"}, `hook "h": exec env name "A=B" is not valid`},
		{[]string{"true"}, 0, map[string]string{"": "c"}, `exec env name "" is not valid`},
	}
	for _, c := range cases {
		_, err := hook.NewExec("h", c.command, c.timeout, c.env, "")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("NewExec(%q, %s, %v) error = %v; want it to contain %q", c.command, c.timeout, c.env, err, c.want)
		}
	}
}

// gone reports whether pid no longer runs (missing, or a zombie left for a
// parent that is not us).
func gone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] == 'Z'
}
