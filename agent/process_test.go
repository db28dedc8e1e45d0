package agent

import (
	"context"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// The child records its pid, its environment and every SIGHUP it gets.
const childScript = `trap 'echo hup >> signals' HUP
echo $$ >> starts
echo $$ > pid.tmp && mv pid.tmp pid
echo "$APP_MODE $LOG_LEVEL" > env.tmp && mv env.tmp env.out
while :; do sleep 0.02; done`

// Supervised processes start after the first render, get their reload
// signal from a signal hook, restart from a restart hook and restart with a
// new environment when a key under env_prefix changes; stopping the agent
// stops them.
func TestSupervisedProcess(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s server) {
		pre := newClient(t, s.URL())
		for k, v := range map[string]string{"/proc/env/app-mode": "blue", "/proc/env/log.level": "info"} {
			if _, err := pre.Put(context.Background(), k, v); err != nil {
				t.Fatal(err)
			}
		}
		h := startAgent(t, s.URL(), s.URL(), `
process "app" {
  command      = ["sh", "-c", "`+strings.ReplaceAll(strings.ReplaceAll(childScript, `"`, `\"`), "\n", `\n`)+`"]
  dir          = "."
  env_prefix   = "/proc/env/"
  kill_timeout = "2s"
}
template "cfg" {
  contents    = "{{ keyOrDefault \"/proc/cfg\" \"a\" }}"
  destination = "cfg"
  on_change   = ["reload"]
}
template "hard" {
  contents    = "{{ keyOrDefault \"/proc/hard\" \"a\" }}"
  destination = "hard"
  on_change   = ["restart"]
}
hook "reload" {
  signal {
    process = "app"
    signal  = "SIGHUP"
  }
}
hook "restart" {
  restart { process = "app" }
}
`, nil)
		h.waitFile("env.out", "blue info\n")
		pid := h.pid()
		h.put("/proc/cfg", "b")
		h.waitFile("cfg", "b")
		h.waitFile("signals", "hup\n")
		if got := h.pid(); got != pid {
			t.Fatalf("a reload signal restarted the process (pid %d → %d)", pid, got)
		}

		h.put("/proc/hard", "b")
		waitFor(t, "restart by the restart hook", 10*time.Second, func() bool { return h.pid() != pid && h.pid() != 0 })
		pid = h.pid()
		if alive(pid) == false {
			t.Fatalf("restarted process %d is not running", pid)
		}

		h.put("/proc/env/app-mode", "green")
		h.waitFile("env.out", "green info\n")
		waitFor(t, "restart with the new environment", 10*time.Second, func() bool { return h.pid() != pid && h.pid() != 0 })
		pid = h.pid()

		h.stop()
		waitFor(t, "process stopped with the agent", 10*time.Second, func() bool { return !alive(pid) })
	})
}

// pid reads the pid the child last wrote, or 0.
func (h *harness) pid() int {
	b, err := os.ReadFile(h.path("pid"))
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}

// alive reports whether pid runs (and is not a zombie).
func alive(pid int) bool {
	if pid <= 0 || syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	f := strings.Fields(string(b))
	return len(f) > 2 && f[2] != "Z"
}

// A configuration with a process and no template starts the process.
func TestProcessOnlyConfig(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s server) {
		h := startAgent(t, s.URL(), s.URL(), `
process "solo" {
  command = ["sh", "-c", "echo $$ > pid; while :; do sleep 0.05; done"]
  dir     = "."
}
`, nil)
		waitFor(t, "the process to start", 10*time.Second, func() bool { return alive(h.pid()) })
	})
}

// A reload that changes a process's definition restarts it with the new
// one; an unchanged process keeps running; a process no longer in the
// configuration is stopped.
func TestReloadRestartsChangedProcess(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s server) {
		conf := func(mode string) string {
			steady := `
process "steady" {
  command = ["sh", "-c", "echo $$ > steady.tmp && mv steady.tmp steady.pid; while :; do sleep 0.05; done"]
  dir     = "."
}`
			if mode == "three" {
				steady = ""
			}
			return `
process "p" {
  command = ["sh", "-c", "echo $$ > pid; echo $MODE > mode; while :; do sleep 0.05; done"]
  dir     = "."
  env     = { MODE = "` + mode + `" }
}` + steady + `
template "t" {
  contents    = "t"
  destination = "t"
}
`
		}
		h := startAgent(t, s.URL(), s.URL(), conf("one"), nil)
		h.waitFile("mode", "one\n")
		pid := h.pid()
		waitFor(t, "steady.pid", 10*time.Second, func() bool { _, err := os.Stat(h.path("steady.pid")); return err == nil })
		steady := h.read("steady.pid")
		h.agent.Reload(loadConfig(t, h.dir, s.URL(), conf("two"), nil))
		h.waitFile("mode", "two\n")
		if h.pid() == pid || !alive(h.pid()) {
			t.Errorf("process p not restarted (pid %d → %d)", pid, h.pid())
		}
		if got := h.read("steady.pid"); got != steady {
			t.Errorf("unchanged process restarted (pid %s → %s)", steady, got)
		}

		h.agent.Reload(loadConfig(t, h.dir, s.URL(), conf("three"), nil))
		h.waitFile("mode", "three\n")
		steadyPid, err := strconv.Atoi(strings.TrimSpace(steady))
		if err != nil {
			t.Fatalf("steady.pid = %q", steady)
		}
		waitFor(t, "removed process stopped", 10*time.Second, func() bool { return !alive(steadyPid) })
	})
}

// The first apply starts the processes with their files already in place;
// the restart and reload hooks of that apply must not hit them again.
func TestFirstApplyDoesNotRestartNewProcess(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s server) {
		h := startAgent(t, s.URL(), s.URL(), `
process "app" {
  command      = ["sh", "-c", "`+strings.ReplaceAll(strings.ReplaceAll(childScript, `"`, `\"`), "\n", `\n`)+`"]
  dir          = "."
  kill_timeout = "2s"
}
template "cfg" {
  contents    = "{{ keyOrDefault \"/first/cfg\" \"a\" }}"
  destination = "cfg"
  on_change   = ["restart"]
}
hook "restart" {
  restart { process = "app" }
}
`, nil)
		h.waitFile("cfg", "a")
		waitFor(t, "process started", 10*time.Second, func() bool { return h.pid() != 0 })
		// A later change does restart it: once that is seen, the count of
		// starts in the log tells whether the first apply restarted it too.
		// (The log, not the child: a child killed at once may not have run a
		// line of its script.)
		h.put("/first/cfg", "b")
		h.waitFile("cfg", "b")
		starts := func() int { return strings.Count(h.logs.String(), "INFO started process") }
		waitFor(t, "restart by the change", 10*time.Second, func() bool { return starts() >= 2 })
		if n := starts(); n != 2 {
			t.Fatalf("process started %d times, want 2: the first start and the change's restart\n%s", n, h.logs.String())
		}
	})
}

// childCommand is childScript as an HCL string.
func childCommand() string {
	return `["sh", "-c", "` + strings.ReplaceAll(strings.ReplaceAll(childScript, `"`, `\"`), "\n", `\n`) + `"]`
}

// lines returns the lines of file name in the harness folder.
func (h *harness) lines(name string) []string {
	b, err := os.ReadFile(h.path(name))
	if err != nil {
		return nil
	}
	return strings.Fields(string(b))
}

// A process with a reload_signal gets that signal, and keeps its pid, when
// a file it reads changes; with no templates list it reads every template.
// A change under its env_prefix still restarts it.
func TestReloadSignalReloadsProcess(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s server) {
		pre := newClient(t, s.URL())
		for k, v := range map[string]string{"/rs/env/app-mode": "blue", "/rs/env/log.level": "info"} {
			if _, err := pre.Put(context.Background(), k, v); err != nil {
				t.Fatal(err)
			}
		}
		h := startAgent(t, s.URL(), s.URL(), `
process "app" {
  command       = `+childCommand()+`
  dir           = "."
  env_prefix    = "/rs/env/"
  reload_signal = "SIGHUP"
  kill_timeout  = "2s"
}
template "cfg" {
  contents    = "{{ keyOrDefault \"/rs/cfg\" \"a\" }}"
  destination = "cfg"
}
template "logback" {
  contents    = "{{ keyOrDefault \"/rs/logback\" \"a\" }}"
  destination = "logback"
}
`, nil)
		h.waitFile("env.out", "blue info\n")
		pid := h.pid()

		h.put("/rs/cfg", "b")
		h.waitFile("cfg", "b")
		waitFor(t, "one SIGHUP", 10*time.Second, func() bool { return len(h.lines("signals")) == 1 })
		h.put("/rs/logback", "b")
		h.waitFile("logback", "b")
		waitFor(t, "a second SIGHUP", 10*time.Second, func() bool { return len(h.lines("signals")) == 2 })
		// Both files changed in one txn: one change set, one signal.
		if _, err := h.cli.Txn(context.Background()).Then(
			clientv3.OpPut("/rs/cfg", "c"), clientv3.OpPut("/rs/logback", "c")).Commit(); err != nil {
			t.Fatal(err)
		}
		h.waitFile("cfg", "c")
		h.waitFile("logback", "c")
		waitFor(t, "a third SIGHUP", 10*time.Second, func() bool { return len(h.lines("signals")) == 3 })
		if got := h.pid(); got != pid {
			t.Fatalf("the reload signal restarted the process (pid %d → %d)", pid, got)
		}
		if n := len(h.lines("starts")); n != 1 {
			t.Fatalf("the process started %d times, want once: the changes must signal it, not restart it", n)
		}

		h.put("/rs/env/app-mode", "green")
		h.waitFile("env.out", "green info\n")
		waitFor(t, "a restart with the new environment", 10*time.Second, func() bool { return h.pid() != pid && alive(h.pid()) })
		if n := len(h.lines("signals")); n != 3 {
			t.Errorf("%d SIGHUPs, want 3: an environment change restarts, it does not signal", n)
		}
	})
}

// A process without a reload_signal is restarted (a new pid) when a file
// it lists in templates changes; a change to another template leaves it
// alone.
func TestProcessRestartsOnTemplateChange(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s server) {
		h := startAgent(t, s.URL(), s.URL(), `
process "app" {
  command      = `+childCommand()+`
  dir          = "."
  templates    = ["cfg"]
  kill_timeout = "2s"
}
template "cfg" {
  contents    = "{{ keyOrDefault \"/rt/cfg\" \"a\" }}"
  destination = "cfg"
}
template "unread" {
  contents    = "{{ keyOrDefault \"/rt/unread\" \"a\" }}"
  destination = "unread"
}
`, nil)
		h.waitFile("cfg", "a")
		waitFor(t, "the process to start", 10*time.Second, func() bool { return alive(h.pid()) })
		pid := h.pid()
		h.put("/rt/cfg", "b")
		h.waitFile("cfg", "b")
		waitFor(t, "a restart", 10*time.Second, func() bool { return h.pid() != pid && alive(h.pid()) })
		pid = h.pid()

		h.put("/rt/unread", "b")
		h.waitFile("unread", "b")
		// The loop applies changes in order: once the next change to cfg
		// has restarted the process, the change to unread is long done.
		h.put("/rt/cfg", "c")
		h.waitFile("cfg", "c")
		waitFor(t, "a second restart", 10*time.Second, func() bool { return h.pid() != pid && alive(h.pid()) })
		if n := len(h.lines("starts")); n != 3 {
			t.Errorf("the process started %d times, want 3: the first start and one restart per change to cfg", n)
		}
		// The reload is logged once the new process runs: the child can
		// write its pid before that line.
		reloads := func() int { return h.logs.count("process reloaded", "process=app", "how=restart") }
		waitFor(t, "the second reload logged", 10*time.Second, func() bool { return reloads() >= 2 })
		if n := reloads(); n != 2 {
			t.Errorf("%d process reloads logged, want 2", n)
		}
		if n := len(h.lines("signals")); n != 0 {
			t.Errorf("%d SIGHUPs, want none: without reload_signal the process is restarted", n)
		}
	})
}

// A supervised process starts only once every template has been rendered:
// the child reads its files as its first act, and finds them whole, also
// when one of them waited for a missing key.
func TestProcessStartsWithItsFilesInPlace(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s server) {
		pre := newClient(t, s.URL())
		if _, err := pre.Put(context.Background(), "/fs/a", "1"); err != nil {
			t.Fatal(err)
		}
		h := startAgent(t, s.URL(), s.URL(), `
process "app" {
  command = ["sh", "-c", "cat a.conf b.conf > seen-at-start 2>&1; echo $$ > pid; while :; do sleep 0.05; done"]
  dir     = "."
}
template "a" {
  contents    = "a={{ key \"/fs/a\" }}\n"
  destination = "a.conf"
}
template "b" {
  contents    = "b={{ key \"/fs/b\" }}\n"
  destination = "b.conf"
}
`, nil)
		h.waitFile("a.conf", "a=1\n")
		// Each retry of b's render is a step of the loop that would have
		// started the process if it did not wait for b.
		waitFor(t, "b's render to fail twice", 10*time.Second, func() bool { return h.logs.count("render failed", "template=b") >= 2 })
		if n := h.logs.count("started process"); n != 0 {
			t.Fatalf("the process started before b.conf was rendered")
		}
		h.put("/fs/b", "2")
		waitFor(t, "the process to start", 10*time.Second, func() bool { return alive(h.pid()) })
		if got := h.read("seen-at-start"); got != "a=1\nb=2\n" {
			t.Fatalf("the process saw %q at its start, want both files whole", got)
		}
	})
}
