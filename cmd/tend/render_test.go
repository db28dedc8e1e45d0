package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// logLine is one line of the agent's JSON log.
type logLine map[string]any

// jsonLog parses stderr as the JSON log: every line must be one object,
// but for the command's own error, which ends a failed run.
func jsonLog(t *testing.T, stderr []byte) []logLine {
	t.Helper()
	var lines []logLine
	for _, l := range strings.Split(strings.TrimSpace(string(stderr)), "\n") {
		if l == "" || strings.HasPrefix(l, "Error: ") {
			continue
		}
		var m logLine
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q is not JSON: %v", l, err)
		}
		lines = append(lines, m)
	}
	return lines
}

// find returns the lines whose msg starts with msg.
func find(lines []logLine, msg string) []logLine {
	var out []logLine
	for _, l := range lines {
		if m, _ := l["msg"].(string); strings.HasPrefix(m, msg) {
			out = append(out, l)
		}
	}
	return out
}

// putRev puts key=value and returns the revision of the put.
func putRev(t *testing.T, ep, key, value string) int64 {
	t.Helper()
	r := tendAt(t, ep, nil, "put", "-w", "json", key, value)
	if r.err != nil {
		t.Fatalf("put %s: %v\n%s", key, r.err, r.stderr)
	}
	var resp pb.PutResponse
	if err := json.Unmarshal(r.stdout, &resp); err != nil {
		t.Fatalf("put -w json: %v\n%s", err, r.stdout)
	}
	return resp.Header.Revision
}

// `tend render` (--once is its only mode) runs no hooks unless --hooks is
// given; a missing key makes it exit non-zero naming the key, keeping the
// file. With log { format = "json" } every log line is a JSON object, and
// the lines of an apply, a failed render and a hook carry the template (or
// hook), the revision and the outcome.
func TestRenderOnceHooksAndJSONLog(t *testing.T) {
	t.Parallel()
	for name, ep := range agentEndpoints() {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			key := fmt.Sprintf("/agent-render/%s/%d/v", name, time.Now().UnixNano()) // fresh for each run (-count)
			hcl := `store {
  endpoints = ["` + ep + `"]
}
template "app" {
  contents    = "v={{ key \"` + key + `\" }}\n"
  destination = "app.conf"
  on_change   = ["record"]
}
hook "record" {
  exec {
    command = ["sh", "-c", "cat app.conf >> hooks.log"]
    dir     = "."
  }
}
log {
  format = "json"
}
`
			if err := os.WriteFile(filepath.Join(dir, "agent.hcl"), []byte(hcl), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "app.conf"), []byte("old\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			render := func(args ...string) result {
				t.Helper()
				cmd := exec.Command(tendBin, append([]string{"render", "--config", "agent.hcl"}, args...)...)
				cmd.Dir = dir
				var out, errb bytes.Buffer
				cmd.Stdout, cmd.Stderr = &out, &errb
				err := cmd.Run()
				return result{out.Bytes(), errb.Bytes(), err}
			}
			read := func(name string) string {
				b, _ := os.ReadFile(filepath.Join(dir, name))
				return string(b)
			}
			num := func(l logLine, field string) int64 {
				f, _ := l[field].(float64)
				return int64(f)
			}

			// The key is missing: the file stays, the error names the key.
			r := render()
			if r.err == nil {
				t.Fatalf("render with a missing key succeeded:\n%s", r.stderr)
			}
			if !strings.Contains(string(r.stderr), "missing key "+key) {
				t.Errorf("stderr does not name the missing key %s:\n%s", key, r.stderr)
			}
			if got := read("app.conf"); got != "old\n" {
				t.Errorf("app.conf = %q after a failed render, want the old file", got)
			}
			failed := find(jsonLog(t, r.stderr), "render failed")
			if len(failed) != 1 || failed[0]["template"] != "app" || failed[0]["outcome"] != "render-failed" ||
				num(failed[0], "revision") <= 0 || failed[0]["missing-keys"] != key {
				t.Errorf("render failed lines = %v, want one with template, revision, outcome and missing-keys", failed)
			}

			// Without --hooks the file is written and no hook runs.
			rev := putRev(t, ep, key, "1")
			if r = render(); r.err != nil {
				t.Fatalf("render: %v\n%s", r.err, r.stderr)
			}
			if got := read("app.conf"); got != "v=1\n" {
				t.Errorf("app.conf = %q, want v=1", got)
			}
			if _, err := os.Stat(filepath.Join(dir, "hooks.log")); !os.IsNotExist(err) {
				t.Errorf("a hook ran without --hooks (hooks.log: %q)", read("hooks.log"))
			}
			lines := jsonLog(t, r.stderr)
			replaced := find(lines, "file replaced")
			if len(replaced) != 1 || replaced[0]["template"] != "app" || replaced[0]["outcome"] != "applied" || num(replaced[0], "revision") < rev {
				t.Errorf("file replaced lines = %v, want one with template app, outcome applied and revision >= %d", replaced, rev)
			}
			if n := len(find(lines, "hook")); n != 0 {
				t.Errorf("%d hook lines without --hooks", n)
			}

			// With --hooks the hook runs after the file is written.
			rev = putRev(t, ep, key, "2")
			if r = render("--once", "--hooks"); r.err != nil {
				t.Fatalf("render --hooks: %v\n%s", r.err, r.stderr)
			}
			if got := read("hooks.log"); got != "v=2\n" {
				t.Errorf("hooks.log = %q, want the hook to have seen v=2", got)
			}
			ran := find(jsonLog(t, r.stderr), "hook ran")
			if len(ran) != 1 || ran[0]["hook"] != "record" || ran[0]["outcome"] != "ok" || num(ran[0], "revision") < rev {
				t.Errorf("hook ran lines = %v, want one with hook record, outcome ok and revision >= %d", ran, rev)
			}

			// Nothing changed: no file is written, so no hook runs.
			if r = render("--hooks"); r.err != nil {
				t.Fatalf("render --hooks: %v\n%s", r.err, r.stderr)
			}
			if got := read("hooks.log"); got != "v=2\n" {
				t.Errorf("hooks.log = %q: a hook ran for a file that did not change", got)
			}
		})
	}
}
