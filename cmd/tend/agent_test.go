package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// agentEndpoints are the stores the agent commands run against.
func agentEndpoints() map[string]string {
	return map[string]string{"etcd": etcdEndpoint, "tend": tendEndpoint}
}

// snapshot returns every file under dir with its contents.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		files[p] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// Bad configurations make `tend render` fail with an error naming the
// place and the fix, and nothing on disk changes.
func TestRenderRejectsBadConfig(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct{ hcl, want string }{
		"malformed": {`template "a" {` + "\n", `agent.hcl:1,14: Unclosed configuration block`},
		"unknown hook": {`template "a" {
  contents    = "x"
  destination = "out.conf"
  on_change   = ["nope"]
}`, `agent.hcl:4,3: template "a": on_change names hook "nope", which is not defined`},
		"template syntax": {`template "a" {
  contents    = "{{ key \"/a\" }"
  destination = "out.conf"
}`, `agent.hcl:2,3: template "a": a:1: unexpected "}" in operand`},
		"missing source": {`template "a" {
  source      = "nope.tmpl"
  destination = "out.conf"
}`, `agent.hcl:2,3: template "a": read source: open `},
		"bad signal": {`template "a" {
  contents    = "x"
  destination = "out.conf"
  on_change   = ["hup"]
}
hook "hup" {
  signal {
    pidfile = "app.pid"
    signal  = "SIGHUPP"
  }
}`, `agent.hcl:9,5: hook "hup": unknown signal "SIGHUPP" (try SIGHUP)`},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "agent.hcl"), []byte("store {\n  endpoints = [\""+etcdEndpoint+"\"]\n}\n"+tc.hcl), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "out.conf"), []byte("keep\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			before := snapshot(t, dir)
			cmd := exec.Command(tendBin, "render", "--config", "agent.hcl")
			cmd.Dir = dir
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("tend render succeeded with a bad config:\n%s", out)
			}
			// The store block adds three lines above the test's text.
			got := shiftLines(string(out), 3)
			if !strings.Contains(got, tc.want) {
				t.Errorf("error output:\n%s\nwant it to contain %q", got, tc.want)
			}
			after := snapshot(t, dir)
			if len(after) != len(before) || after[filepath.Join(dir, "out.conf")] != "keep\n" {
				t.Errorf("the folder changed: %v → %v", before, after)
			}
		})
	}
}

// shiftLines rewrites "agent.hcl:N," positions to N-by, so the wanted
// positions read as in the test's own text.
func shiftLines(s string, by int) string {
	var b strings.Builder
	for {
		i := strings.Index(s, "agent.hcl:")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i+len("agent.hcl:")])
		s = s[i+len("agent.hcl:"):]
		j := 0
		n := 0
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			n = n*10 + int(s[j]-'0')
			j++
		}
		if j == 0 {
			continue
		}
		b.WriteString(itoa(n - by))
		s = s[j:]
	}
}

func itoa(n int) string {
	if n < 0 {
		return "-" + itoa(-n)
	}
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}

// `tend agent` renders, follows writes, reloads a valid configuration on
// SIGHUP (keeping the running one when the new one is broken) and exits 0
// on SIGTERM.
func TestAgentCommand(t *testing.T) {
	t.Parallel()
	for name, ep := range agentEndpoints() {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			prefix := fmt.Sprintf("/agentcmd/%s/%d/", name, time.Now().UnixNano()) // fresh keys for each run (-count)
			conf := func(extra string) {
				t.Helper()
				text := "store {\n  endpoints = [\"" + ep + "\"]\n}\n" +
					"template \"a\" {\n  contents    = \"a={{ keyOrDefault \\\"" + prefix + "a\\\" \\\"none\\\" }}\"\n  destination = \"a.conf\"\n}\n" + extra
				if err := os.WriteFile(filepath.Join(dir, "agent.hcl"), []byte(text), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			conf("")
			cmd := exec.Command(tendBin, "agent", "--config", "agent.hcl", "--log-level", "debug")
			cmd.Dir = dir
			stderr, err := cmd.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			var logs bytes.Buffer
			copied := make(chan struct{})
			go func() {
				defer close(copied)
				sc := bufio.NewScanner(stderr)
				for sc.Scan() {
					mu.Lock()
					logs.WriteString(sc.Text() + "\n")
					mu.Unlock()
				}
			}()
			exited := make(chan error, 1)
			go func() {
				<-copied
				exited <- cmd.Wait()
			}()
			defer func() {
				if cmd.ProcessState == nil {
					cmd.Process.Kill()
					<-exited
				}
				if t.Failed() {
					mu.Lock()
					t.Logf("agent log:\n%s", logs.String())
					mu.Unlock()
				}
			}()
			logged := func(s string) bool {
				mu.Lock()
				defer mu.Unlock()
				return strings.Contains(logs.String(), s)
			}
			waitFile := func(name, want string) {
				t.Helper()
				deadline := time.Now().Add(15 * time.Second)
				for {
					b, _ := os.ReadFile(filepath.Join(dir, name))
					if string(b) == want {
						return
					}
					if time.Now().After(deadline) {
						t.Fatalf("%s = %q, want %q", name, b, want)
					}
					time.Sleep(10 * time.Millisecond)
				}
			}
			waitFile("a.conf", "a=none")
			tendAt(t, ep, []byte("1"), "put", prefix+"a")
			waitFile("a.conf", "a=1")

			conf(`template "b" {` + "\n")
			cmd.Process.Signal(syscall.SIGHUP)
			deadline := time.Now().Add(15 * time.Second)
			for !logged("reload rejected") {
				if time.Now().After(deadline) {
					t.Fatal("no log of the rejected reload")
				}
				time.Sleep(10 * time.Millisecond)
			}
			tendAt(t, ep, []byte("2"), "put", prefix+"a")
			waitFile("a.conf", "a=2")

			conf("template \"b\" {\n  contents    = \"b\"\n  destination = \"b.conf\"\n}\n")
			cmd.Process.Signal(syscall.SIGHUP)
			waitFile("b.conf", "b")

			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case err := <-exited:
				if err != nil {
					t.Fatalf("agent exited with %v after SIGTERM", err)
				}
			case <-time.After(15 * time.Second):
				t.Fatal("agent did not exit within 15s of SIGTERM")
			}
		})
	}
}
