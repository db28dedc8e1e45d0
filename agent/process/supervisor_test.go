package process_test

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tendkv/tend/agent/hook"
	"github.com/tendkv/tend/agent/process"
	"github.com/tendkv/tend/internal/lockedbuf"
)

var _ hook.ProcessRegistry = (*process.Supervisor)(nil)

// serveSpec is a helper child that marks ready, SIGHUP and SIGTERM in dir.
func serveSpec(name, dir string, extraEnv ...string) process.Spec {
	return process.Spec{
		Name:        name,
		Command:     helperCommand(dir),
		Env:         helperEnvFor("serve", extraEnv...),
		KillTimeout: 5 * time.Second,
	}
}

// startSupervisor returns a supervisor closed when the test ends.
func startSupervisor(t *testing.T) (*process.Supervisor, *lockedbuf.Buffer) {
	t.Helper()
	logger, logs := testLogger()
	s := process.NewSupervisor(logger)
	t.Cleanup(func() { s.Close() })
	return s, logs
}

// startReady starts spec and waits until its process has marked ready.
func startReady(t *testing.T, s *process.Supervisor, spec process.Spec, dir string) int {
	t.Helper()
	if err := s.Start(context.Background(), spec); err != nil {
		t.Fatalf("Start: %v", err)
	}
	pid := s.Pid(spec.Name)
	if pid == 0 {
		t.Fatalf("Pid(%q) = 0 right after Start", spec.Name)
	}
	waitFor(t, "ready marker of pid "+strconv.Itoa(pid), 5*time.Second, func() bool { return exists(dir, "ready", pid) })
	return pid
}

func TestReloadSendsReloadSignal(t *testing.T) {
	dir := t.TempDir()
	s, _ := startSupervisor(t)
	spec := serveSpec("app", dir)
	spec.ReloadSignal = syscall.SIGHUP
	pid := startReady(t, s, spec, dir)

	if err := s.Reload("app"); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	waitFor(t, "SIGHUP marker", 5*time.Second, func() bool { return exists(dir, "hup", pid) })
	if got := s.Pid("app"); got != pid {
		t.Fatalf("Reload with a reload signal changed the pid: %d -> %d", pid, got)
	}
	if exists(dir, "term", pid) {
		t.Fatal("Reload with a reload signal sent SIGTERM")
	}
}

func TestReloadWithoutSignalRestarts(t *testing.T) {
	dir := t.TempDir()
	s, _ := startSupervisor(t)
	pid := startReady(t, s, serveSpec("app", dir), dir)

	if err := s.Reload("app"); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if got := s.Pid("app"); got == pid || got == 0 {
		t.Fatalf("Reload without a reload signal: pid %d -> %d, want a new process", pid, got)
	}
	if !exists(dir, "term", pid) {
		t.Fatal("old process got no SIGTERM")
	}
}

func TestRestartGivesNewPidAndOldIsGone(t *testing.T) {
	dir := t.TempDir()
	s, _ := startSupervisor(t)
	old := startReady(t, s, serveSpec("app", dir), dir)

	if err := s.Restart(context.Background(), "app"); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	pid := s.Pid("app")
	if pid == 0 || pid == old {
		t.Fatalf("Restart: pid %d -> %d, want a new running process", old, pid)
	}
	if !exists(dir, "term", old) {
		t.Fatal("old process was not asked to stop with SIGTERM")
	}
	if !reaped(old) {
		t.Fatalf("old pid %d still exists (or is a zombie) after Restart returned", old)
	}
	waitFor(t, "new process ready", 5*time.Second, func() bool { return exists(dir, "ready", pid) })
}

func TestKillTimeoutEscalatesToSIGKILL(t *testing.T) {
	dir := t.TempDir()
	s, logs := startSupervisor(t)
	spec := serveSpec("stubborn", dir, "TEND_IGNORE_TERM=1")
	spec.KillTimeout = 300 * time.Millisecond
	old := startReady(t, s, spec, dir)

	// Should escalation break, the context's SIGKILL ends the wait and
	// Restart fails instead of hanging.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	began := time.Now()
	if err := s.Restart(ctx, "stubborn"); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	took := time.Since(began)
	if !exists(dir, "term", old) {
		t.Fatal("child got no SIGTERM before SIGKILL")
	}
	if took < spec.KillTimeout {
		t.Fatalf("Restart took %s, less than the kill timeout %s: did it wait?", took, spec.KillTimeout)
	}
	if took > spec.KillTimeout+3*time.Second {
		t.Fatalf("Restart took %s; SIGKILL should follow the %s kill timeout", took, spec.KillTimeout)
	}
	if !reaped(old) {
		t.Fatalf("pid %d survived SIGKILL or was not waited for", old)
	}
	if !strings.Contains(logs.String(), "killed by SIGKILL") {
		t.Fatalf("log does not say the process was killed:\n%s", logs)
	}
}

func TestRestartCanceledKillsAtOnceAndStaysDown(t *testing.T) {
	dir := t.TempDir()
	s, _ := startSupervisor(t)
	spec := serveSpec("stubborn", dir, "TEND_IGNORE_TERM=1")
	spec.KillTimeout = time.Minute
	old := startReady(t, s, spec, dir)

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	began := time.Now()
	err := s.Restart(ctx, "stubborn")
	if err == nil || !strings.Contains(err.Error(), `restart process "stubborn": killed pid `+strconv.Itoa(old)+` early: context deadline exceeded`) {
		t.Fatalf("Restart with a short context: %v", err)
	}
	if took := time.Since(began); took > 5*time.Second {
		t.Fatalf("Restart took %s; the context should cut the minute-long kill timeout", took)
	}
	if !reaped(old) {
		t.Fatalf("pid %d still exists", old)
	}
	if pid := s.Pid("stubborn"); pid != 0 {
		t.Fatalf("a new process %d started although the restart was canceled", pid)
	}
}

func TestStopKillsWholeGroup(t *testing.T) {
	dir := t.TempDir()
	s, _ := startSupervisor(t)
	grandchild := filepath.Join(dir, "grandchild.pid")
	// The shell ignores nothing, but its background child ignores SIGTERM:
	// only the group-wide SIGKILL after the leader is gone can end it.
	spec := process.Spec{
		Name:        "group",
		Command:     []string{"/bin/sh", "-c", `(trap '' TERM; exec sleep 60) & echo $! > ` + grandchild + `; wait`},
		KillTimeout: 5 * time.Second,
		// Not the test binary's own stdout: a surviving grandchild would
		// hold that open and stall go test.
		Stdout: io.Discard,
		Stderr: io.Discard,
	}
	if err := s.Start(context.Background(), spec); err != nil {
		t.Fatal(err)
	}
	var gpid int
	waitFor(t, "grandchild pid", 5*time.Second, func() bool {
		b, err := os.ReadFile(grandchild)
		if err != nil || !strings.HasSuffix(string(b), "\n") {
			return false
		}
		gpid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil
	})
	t.Cleanup(func() { syscall.Kill(gpid, syscall.SIGKILL) }) // only if the test failed
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "grandchild gone", 3*time.Second, func() bool { return gone(gpid) })
}

func TestRestartOnExitWithBackoff(t *testing.T) {
	dir := t.TempDir()
	s, logs := startSupervisor(t)
	spec := process.Spec{
		Name:           "crashy",
		Command:        helperCommand(dir, "3"),
		Env:            helperEnvFor("exit"),
		RestartOnExit:  true,
		RestartBackoff: 50 * time.Millisecond,
	}
	if err := s.Start(context.Background(), spec); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "three runs", 10*time.Second, func() bool { return len(markers(t, dir, "ready")) >= 3 })
	if !strings.Contains(logs.String(), "exit-code=3") {
		t.Fatalf("log lacks the exit code:\n%s", logs)
	}
	// The backoff doubles while the process keeps failing quickly.
	log := logs.String()
	first, second := strings.Index(log, "backoff=50ms"), strings.Index(log, "backoff=100ms")
	if !strings.Contains(log, "restarting") || first < 0 || second < first {
		t.Fatalf("log lacks restarts with a doubling backoff:\n%s", log)
	}
}

func TestExitWithoutRestart(t *testing.T) {
	dir := t.TempDir()
	s, logs := startSupervisor(t)
	spec := process.Spec{
		Name:           "once",
		Command:        helperCommand(dir, "4"),
		Env:            helperEnvFor("exit"),
		RestartBackoff: 10 * time.Millisecond,
	}
	if err := s.Start(context.Background(), spec); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "process to exit", 5*time.Second, func() bool { return s.Pid("once") == 0 })
	waitFor(t, "exit logged", 5*time.Second, func() bool { return strings.Contains(logs.String(), "exit-code=4") })
	err := s.Signal("once", syscall.SIGHUP)
	if err == nil || !strings.Contains(err.Error(), `process "once"`) || !strings.Contains(err.Error(), "exit status 4") {
		t.Fatalf("Signal to an exited process: %v, want a not-running error with its exit status", err)
	}
	if n := len(markers(t, dir, "ready")); n != 1 {
		t.Fatalf("process ran %d times without RestartOnExit", n)
	}
	// Restart brings it back.
	if err := s.Restart(context.Background(), "once"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "second run", 5*time.Second, func() bool { return len(markers(t, dir, "ready")) == 2 })
}

func TestUpdateRestartsWithNewEnvAndForwardsOutput(t *testing.T) {
	dir := t.TempDir()
	s, _ := startSupervisor(t)
	out, errOut := &lockedbuf.Buffer{}, &lockedbuf.Buffer{}
	spec := serveSpec("app", dir, "TEND_VALUE=one")
	spec.Stdout, spec.Stderr = out, errOut
	// Update of a name not started yet starts it.
	if err := s.Update(context.Background(), spec); err != nil {
		t.Fatalf("Update of a new name: %v", err)
	}
	old := s.Pid("app")
	waitFor(t, "first output", 5*time.Second, func() bool {
		return strings.HasPrefix(out.String(), "value=one\n") && strings.HasPrefix(errOut.String(), "stderr-value=one\n")
	})

	spec.Env = helperEnvFor("serve", "TEND_VALUE=two")
	if err := s.Update(context.Background(), spec); err != nil {
		t.Fatalf("Update: %v", err)
	}
	if pid := s.Pid("app"); pid == old || pid == 0 {
		t.Fatalf("Update: pid %d -> %d, want a new process", old, pid)
	}
	waitFor(t, "output of the updated process", 5*time.Second, func() bool { return strings.Contains(out.String(), "value=two\n") })
}

func TestCloseStopsEverythingWithinKillTimeout(t *testing.T) {
	dir := t.TempDir()
	before := runtime.NumGoroutine()
	logger, _ := testLogger()
	s := process.NewSupervisor(logger)
	polite := startReady(t, s, serveSpec("polite", dir), dir)
	stubbornSpec := serveSpec("stubborn", dir, "TEND_IGNORE_TERM=1")
	stubbornSpec.KillTimeout = 300 * time.Millisecond
	stubborn := startReady(t, s, stubbornSpec, dir)
	crashy := process.Spec{Name: "crashy", Command: helperCommand(dir, "1"), Env: helperEnvFor("exit"), RestartOnExit: true, RestartBackoff: time.Hour}
	if err := s.Start(context.Background(), crashy); err != nil {
		t.Fatal(err)
	}

	began := time.Now()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(began); took > stubbornSpec.KillTimeout+3*time.Second {
		t.Fatalf("Close took %s", took)
	}
	for _, pid := range []int{polite, stubborn} {
		if !reaped(pid) {
			t.Fatalf("pid %d still exists (or is a zombie) after Close", pid)
		}
	}
	if err := s.Start(context.Background(), serveSpec("late", dir)); err == nil {
		t.Fatal("Start after Close succeeded")
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	// Waiters and the pending hour-long restart are gone.
	waitFor(t, "goroutines to end", 5*time.Second, func() bool { return runtime.NumGoroutine() <= before })
}

func TestStartErrors(t *testing.T) {
	dir := t.TempDir()
	s, _ := startSupervisor(t)
	startReady(t, s, serveSpec("app", dir), dir)

	cases := []struct {
		spec process.Spec
		want string
	}{
		{serveSpec("app", dir), `start process "app": already started`},
		{process.Spec{Name: "", Command: []string{"true"}}, "process has no name"},
		{process.Spec{Name: "x"}, `process "x" has no command`},
		{process.Spec{Name: "x", Command: []string{"true"}, Env: []string{"NOEQUALS"}}, `env entry "NOEQUALS" is not KEY=VALUE`},
		{process.Spec{Name: "missing", Command: []string{filepath.Join(dir, "no-such-program")}}, `start process "missing": exec `},
	}
	for _, c := range cases {
		err := s.Start(context.Background(), c.spec)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Start(%q): %v, want an error containing %q", c.spec.Name, err, c.want)
		}
	}
	// A failed start leaves the name free.
	if err := s.Start(context.Background(), serveSpec("missing", dir)); err != nil {
		t.Fatalf("Start after a failed start of the same name: %v", err)
	}
	if err := s.Restart(context.Background(), "nope"); err == nil || !strings.Contains(err.Error(), `restart process "nope": no such process`) {
		t.Fatalf("Restart of an unknown name: %v", err)
	}
}

func TestSplayDelaysAndYieldsToCancel(t *testing.T) {
	dir := t.TempDir()
	s, _ := startSupervisor(t)
	spec := serveSpec("app", dir)
	spec.ReloadSignal = syscall.SIGHUP
	spec.Splay = time.Hour
	pid := startReady(t, s, spec, dir)

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := s.Restart(ctx, "app")
	if err == nil || !strings.Contains(err.Error(), `restart process "app": canceled during the`) {
		t.Fatalf("Restart canceled during an hour-long splay: %v", err)
	}
	if got := s.Pid("app"); got != pid || exists(dir, "term", pid) {
		t.Fatalf("a canceled splay still touched the process (pid %d -> %d)", pid, got)
	}

	// A pending Reload ends when the supervisor closes.
	reloaded := make(chan error, 1)
	go func() { reloaded <- s.Reload("app") }()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-reloaded:
		if err == nil || !strings.Contains(err.Error(), "supervisor is closed") {
			t.Fatalf("Reload during Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Reload still waits for its splay after Close")
	}
	if exists(dir, "hup", pid) {
		t.Fatal("SIGHUP sent although the splay never ended")
	}
}

func TestStopForgetsProcess(t *testing.T) {
	dir := t.TempDir()
	s, _ := startSupervisor(t)
	pid := startReady(t, s, serveSpec("app", dir), dir)

	if err := s.Stop(context.Background(), "app"); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if !exists(dir, "term", pid) || !reaped(pid) {
		t.Fatalf("pid %d was not stopped gracefully and reaped", pid)
	}
	if err := s.Restart(context.Background(), "app"); err == nil || !strings.Contains(err.Error(), "no such process") {
		t.Fatalf("Restart after Stop: %v", err)
	}
	if err := s.Stop(context.Background(), "app"); err == nil {
		t.Fatal("second Stop succeeded")
	}
	// The name is free again.
	startReady(t, s, serveSpec("app", dir), dir)
}

// A supervised process does not outlive an agent killed outright: the
// kernel sends it its kill signal when the agent's starting thread ends.
func TestProcessStopsWhenAgentIsKilled(t *testing.T) {
	dir := t.TempDir()
	agent := exec.Command(os.Args[0], dir)
	agent.Env = append(os.Environ(), helperEnvFor("supervise")...)
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	reaped := make(chan struct{})
	go func() { agent.Wait(); close(reaped) }()
	t.Cleanup(func() { agent.Process.Kill(); <-reaped })
	waitFor(t, "the supervising helper", 10*time.Second, func() bool { return exists(dir, "supervising", agent.Process.Pid) })
	waitFor(t, "the supervised child", 10*time.Second, func() bool { return len(markers(t, dir, "ready")) == 1 })
	child := markers(t, dir, "ready")[0]
	if err := agent.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-reaped
	waitFor(t, "the orphaned child to get SIGTERM and exit", 10*time.Second, func() bool { return exists(dir, "term", child) && gone(child) })
}
