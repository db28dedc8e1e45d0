package agent

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tendkv/tend/agent/config"
	"github.com/tendkv/tend/internal/freeport"
)

// Editing a template source re-renders it, also when the editor renames a
// new file into place; a broken edit keeps the old template and logs
// file:line.
func TestSourceEdits(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s server) {
		h := startAgent(t, s.URL(), s.URL(), `
template "src" {
  source      = "tmpl/src.tmpl"
  destination = "src.out"
}
`, map[string]string{"tmpl/src.tmpl": "one={{ keyOrDefault \"/src/v\" \"x\" }}"})
		h.waitFile("src.out", "one=x")
		writeFiles(t, h.dir, map[string]string{"tmpl/src.tmpl": "two={{ keyOrDefault \"/src/v\" \"x\" }}"})
		h.waitFile("src.out", "two=x")

		// An editor's save: write a new file, rename it over the old one.
		writeFiles(t, h.dir, map[string]string{"tmpl/.src.tmpl.swp": "three={{ keyOrDefault \"/src/v\" \"x\" }}"})
		if err := os.Rename(h.path("tmpl/.src.tmpl.swp"), h.path("tmpl/src.tmpl")); err != nil {
			t.Fatal(err)
		}
		h.waitFile("src.out", "three=x")

		writeFiles(t, h.dir, map[string]string{"tmpl/src.tmpl": "line one\n{{ key \"/src/v\" }"})
		waitFor(t, "broken edit rejected", 10*time.Second, func() bool {
			return h.logs.count("edit rejected", "src.tmpl:2") > 0
		})
		h.put("/src/v", "y")
		h.waitFile("src.out", "three=y")
	})
}

// A reloaded configuration takes over between changes: new templates
// render, changed ones re-render, and the store keeps being watched.
func TestReloadConfig(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s server) {
		h := startAgent(t, s.URL(), s.URL(), `
template "a" {
  contents    = "a={{ keyOrDefault \"/rl/a\" \"0\" }}"
  destination = "a"
}
`, nil)
		h.waitFile("a", "a=0")
		cfg := loadConfig(t, h.dir, s.URL(), `
template "a" {
  contents    = "A={{ keyOrDefault \"/rl/a\" \"0\" }}"
  destination = "a"
}
template "b" {
  contents    = "b={{ keyOrDefault \"/rl/b\" \"0\" }}"
  destination = "b"
}
`, nil)
		h.agent.Reload(cfg)
		h.waitFile("a", "A=0")
		h.waitFile("b", "b=0")
		h.put("/rl/a", "1")
		h.put("/rl/b", "2")
		h.waitFile("a", "A=1")
		h.waitFile("b", "b=2")
	})
}

// Once writes what it can and names the missing keys; a dry run prints a
// diff and writes nothing.
func TestOnceAndDryRun(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s server) {
		dir := t.TempDir()
		cli := newClient(t, s.URL())
		if _, err := cli.Put(context.Background(), "/once/a", "1"); err != nil {
			t.Fatal(err)
		}
		cfg := loadConfig(t, dir, s.URL(), `
template "ok" {
  contents    = "a={{ key \"/once/a\" }}\n"
  destination = "ok"
}
template "missing" {
  contents    = "b={{ key \"/once/b\" }}\n"
  destination = "missing"
}
`, map[string]string{"missing": "old\n"})
		a, err := New(cfg, Options{Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()

		var diff bytes.Buffer
		err = a.Once(context.Background(), OnceOptions{DryRun: &diff})
		if err == nil || !strings.Contains(err.Error(), "/once/b") {
			t.Fatalf("dry run error = %v, want one naming /once/b", err)
		}
		if _, err := os.Stat(filepath.Join(dir, "ok")); !os.IsNotExist(err) {
			t.Fatalf("dry run wrote a file (stat: %v)", err)
		}
		if !strings.Contains(diff.String(), "+a=1") || !strings.Contains(diff.String(), "--- /dev/null") {
			t.Errorf("dry run diff =\n%s", diff.String())
		}

		err = a.Once(context.Background(), OnceOptions{})
		if err == nil || !strings.Contains(err.Error(), "missing key /once/b") {
			t.Fatalf("Once error = %v, want one naming the missing key", err)
		}
		if b, _ := os.ReadFile(filepath.Join(dir, "ok")); string(b) != "a=1\n" {
			t.Errorf("ok = %q, want a=1", b)
		}
		if b, _ := os.ReadFile(filepath.Join(dir, "missing")); string(b) != "old\n" {
			t.Errorf("missing = %q: a failed render must keep the old file", b)
		}

		if _, err := cli.Put(context.Background(), "/once/b", "2"); err != nil {
			t.Fatal(err)
		}
		if err := a.Once(context.Background(), OnceOptions{}); err != nil {
			t.Fatalf("Once: %v", err)
		}
		if b, _ := os.ReadFile(filepath.Join(dir, "missing")); string(b) != "b=2\n" {
			t.Errorf("missing = %q, want b=2", b)
		}
	})
}

// The agent only reaches an unreachable store through retries: Once fails
// with an error naming the endpoint, and writes nothing.
func TestOnceUnreachableStore(t *testing.T) {
	dir := t.TempDir()
	url := freeport.URL(t)
	cfg := loadConfig(t, dir, url, `
template "x" {
  contents    = "x"
  destination = "x"
}
`, nil)
	a, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	err = a.Once(context.Background(), OnceOptions{})
	if err == nil || !strings.Contains(err.Error(), url) {
		t.Fatalf("Once = %v, want an error naming %s", err, url)
	}
	if _, err := os.Stat(filepath.Join(dir, "x")); !os.IsNotExist(err) {
		t.Fatalf("file written without a store (stat: %v)", err)
	}
	_ = config.DefaultEndpoint
}
