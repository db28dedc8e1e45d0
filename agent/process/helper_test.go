package process_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tendkv/tend/agent/process"
	"github.com/tendkv/tend/internal/lockedbuf"
)

// helperEnv selects a helper role when the test binary runs as a child.
const helperEnv = "TEND_PROCESS_TEST_HELPER"

// TestMain lets the test binary double as the supervised program: with
// helperEnv set it plays that role instead of running tests.
func TestMain(m *testing.M) {
	if role := os.Getenv(helperEnv); role != "" {
		os.Exit(helper(role, os.Args[1:]))
	}
	os.Exit(m.Run())
}

// helper is the child program. Roles:
//
//	serve DIR      write DIR/ready.PID, print value=$TEND_VALUE (and
//	               stderr-value=$TEND_VALUE to stderr), append to
//	               DIR/hup.PID on SIGHUP, write DIR/term.PID on SIGTERM and
//	               exit 0 (or keep running with TEND_IGNORE_TERM=1)
//	exit DIR CODE  write DIR/ready.PID and exit with CODE
//	supervise DIR  supervise a serve DIR child, write DIR/supervising.PID
//	               and wait (to be killed)
func helper(role string, args []string) int {
	dir := args[0]
	pid := strconv.Itoa(os.Getpid())
	mark := func(kind string) {
		f, err := os.OpenFile(filepath.Join(dir, kind+"."+pid), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(90)
		}
		fmt.Fprintln(f, kind)
		f.Close()
	}
	switch role {
	case "supervise":
		sup := process.NewSupervisor(nil)
		spec := process.Spec{Name: "child", Command: helperCommand(dir), Env: helperEnvFor("serve")}
		if err := sup.Start(context.Background(), spec); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 92
		}
		mark("supervising")
		time.Sleep(time.Minute) // never outlive a broken test by much
		return 70
	case "exit":
		code, _ := strconv.Atoi(args[1])
		mark("ready")
		return code
	case "serve":
		sigs := make(chan os.Signal, 4)
		signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM)
		fmt.Printf("value=%s\n", os.Getenv("TEND_VALUE"))
		fmt.Fprintf(os.Stderr, "stderr-value=%s\n", os.Getenv("TEND_VALUE"))
		mark("ready")
		deadline := time.After(time.Minute) // never outlive a broken test by much
		for {
			select {
			case s := <-sigs:
				if s == syscall.SIGHUP {
					mark("hup")
					continue
				}
				mark("term")
				if os.Getenv("TEND_IGNORE_TERM") != "1" {
					return 0
				}
			case <-deadline:
				return 70
			}
		}
	}
	fmt.Fprintln(os.Stderr, "unknown helper role", role)
	return 91
}

// helperCommand returns the argv that runs the helper with args; the role
// comes from the environment (helperEnvFor).
func helperCommand(args ...string) []string {
	return append([]string{os.Args[0]}, args...)
}

// helperEnvFor returns the Env entries that select role.
func helperEnvFor(role string, extra ...string) []string {
	// A race-enabled helper would sleep a second before exiting.
	return append([]string{helperEnv + "=" + role, "GORACE=atexit_sleep_ms=0"}, extra...)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// exists reports whether dir/kind.pid exists.
func exists(dir, kind string, pid int) bool {
	_, err := os.Stat(filepath.Join(dir, kind+"."+strconv.Itoa(pid)))
	return err == nil
}

// markers returns the pids that wrote dir/kind.* markers.
func markers(t *testing.T, dir, kind string) []int {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, kind+".*"))
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, n := range names {
		pid, err := strconv.Atoi(strings.TrimPrefix(filepath.Ext(n), "."))
		if err != nil {
			t.Fatalf("marker %s: %v", n, err)
		}
		pids = append(pids, pid)
	}
	return pids
}

// gone reports whether pid no longer runs (missing, or a zombie waiting for
// a parent that is not us).
func gone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// The state follows the parenthesized command name.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] == 'Z'
}

// reaped reports whether pid, a child of this test process, has exited and
// been waited for: not even a zombie is left.
func reaped(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

// testLogger returns a logger writing text lines into a buffer.
func testLogger() (*slog.Logger, *lockedbuf.Buffer) {
	buf := &lockedbuf.Buffer{}
	return slog.New(slog.NewTextHandler(buf, nil)), buf
}
