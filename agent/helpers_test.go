package agent

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tendkv/tend/agent/config"
)

// harness is one agent running against a store, in a temporary folder.
type harness struct {
	t      testing.TB
	dir    string
	cli    *clientv3.Client // for the test's own writes
	agent  *Agent
	logs   *recorder
	cancel context.CancelFunc
	done   chan error
}

// writeFiles writes name → contents under dir.
func writeFiles(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// loadConfig writes agent.hcl (with a store block for endpoint prepended,
// unless hcl starts with its own)
// and the other files into dir, and loads it.
func loadConfig(t testing.TB, dir, endpoint, hcl string, files map[string]string) *config.Config {
	t.Helper()
	store := "store {\n  endpoints = [\"" + endpoint + "\"]\n  dial_timeout = \"1s\"\n}\n"
	if strings.HasPrefix(strings.TrimSpace(hcl), "store {") {
		store = "" // the test gives its own
	}
	all := map[string]string{"agent.hcl": store + hcl}
	for k, v := range files {
		all[k] = v
	}
	writeFiles(t, dir, all)
	cfg, err := config.Load(filepath.Join(dir, "agent.hcl"))
	if err != nil {
		t.Fatalf("load config: %v", err)
	}
	return cfg
}

// startAgent runs an agent for hcl ($DIR standing for its folder) against
// endpoint (the test writes go to
// writeEndpoint, which may differ, e.g. when the agent goes through a
// proxy). Cleanup stops it.
func startAgent(t testing.TB, endpoint, writeEndpoint, hcl string, files map[string]string) *harness {
	t.Helper()
	return startAgentWith(t, endpoint, writeEndpoint, hcl, files, Options{})
}

// startAgentWith is startAgent with options (the logger is the harness's).
func startAgentWith(t testing.TB, endpoint, writeEndpoint, hcl string, files map[string]string, opts Options) *harness {
	t.Helper()
	h := &harness{t: t, dir: t.TempDir(), logs: &recorder{}}
	cfg := loadConfig(t, h.dir, endpoint, strings.ReplaceAll(hcl, "$DIR", h.dir), files)
	h.cli = newClient(t, writeEndpoint)
	opts.Logger = slog.New(h.logs)
	a, err := New(cfg, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h.agent = a
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan error, 1)
	go func() { h.done <- a.Run(ctx) }()
	t.Cleanup(h.stop)
	return h
}

// stop stops the agent and waits for Run to return; idempotent.
func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	h.cancel = nil
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		h.t.Error("Run did not return within 10s of cancel")
	}
	if err := h.agent.Close(); err != nil {
		h.t.Errorf("Close: %v", err)
	}
	if h.t.Failed() {
		h.t.Logf("agent log:\n%s", h.logs.String())
	}
}

func (h *harness) path(name string) string { return filepath.Join(h.dir, name) }

func (h *harness) put(key, value string) int64 {
	h.t.Helper()
	resp, err := h.cli.Put(context.Background(), key, value)
	if err != nil {
		h.t.Fatalf("put %s: %v", key, err)
	}
	return resp.Header.Revision
}

// waitFile waits until the file holds want.
func (h *harness) waitFile(name, want string) {
	h.t.Helper()
	waitFor(h.t, name+" = "+want, 10*time.Second, func() bool {
		b, err := os.ReadFile(h.path(name))
		return err == nil && string(b) == want
	})
}

func (h *harness) read(name string) string {
	h.t.Helper()
	b, err := os.ReadFile(h.path(name))
	if err != nil {
		h.t.Fatal(err)
	}
	return string(b)
}

// status returns the status of template name.
func (h *harness) status(name string) Status {
	for _, s := range h.agent.Status() {
		if s.Template == name {
			return s
		}
	}
	return Status{}
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// recorder is a slog handler that keeps every record for the test to count.
type recorder struct {
	parent *recorder // the recorder holding the lines; nil for the root
	attrs  []slog.Attr
	mu     sync.Mutex
	lines  []string // in the root only
}

func (r *recorder) root() *recorder {
	if r.parent != nil {
		return r.parent
	}
	return r
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) WithAttrs(as []slog.Attr) slog.Handler {
	return &recorder{attrs: append(r.attrs[:len(r.attrs):len(r.attrs)], as...), parent: r.root()}
}
func (r *recorder) WithGroup(string) slog.Handler { return r }

func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	var b strings.Builder
	b.WriteString(rec.Level.String() + " " + rec.Message)
	for _, a := range r.attrs {
		b.WriteString(" " + a.String())
	}
	rec.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.String())
		return true
	})
	root := r.root()
	root.mu.Lock()
	root.lines = append(root.lines, b.String())
	root.mu.Unlock()
	return nil
}

// count returns how many records contain every one of parts.
func (r *recorder) count(parts ...string) int {
	root := r.root()
	root.mu.Lock()
	defer root.mu.Unlock()
	n := 0
next:
	for _, l := range root.lines {
		for _, p := range parts {
			if !strings.Contains(l, p) {
				continue next
			}
		}
		n++
	}
	return n
}

func (r *recorder) String() string {
	root := r.root()
	root.mu.Lock()
	defer root.mu.Unlock()
	return strings.Join(root.lines, "\n")
}
