package config

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the want sections of testdata/*.txt from the actual results")

// TestGolden loads each testdata/*.txt scenario. A scenario is a set of files
// written as "-- name --" sections: agent.hcl (or conf.d/*.hcl, loaded as a
// folder) plus any template sources, and a "want" section holding the
// decoded Config as JSON or "error:" followed by the exact error. $DIR stands
// for the scenario's folder.
func TestGolden(t *testing.T) {
	paths, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	for _, path := range paths {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txt"), func(t *testing.T) {
			src, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			sections := splitSections(string(src))
			dir := t.TempDir()
			dir, _ = filepath.EvalSymlinks(dir)
			load := "agent.hcl"
			for _, s := range sections {
				if s.name == "want" {
					continue
				}
				if strings.HasPrefix(s.name, "conf.d/") {
					load = "conf.d"
				}
				p := filepath.Join(dir, s.name)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(s.body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			t.Chdir(dir)
			cfg, err := Load(load)
			var got string
			if err != nil {
				got = "error:\n" + err.Error() + "\n"
			} else {
				got = goldenJSON(t, cfg)
			}
			got = strings.ReplaceAll(got, dir, "$DIR")
			var want string
			for _, s := range sections {
				if s.name == "want" {
					want = s.body
				}
			}
			if *rewrite {
				var b strings.Builder
				for _, s := range sections {
					if s.name == "want" {
						continue
					}
					b.WriteString("-- " + s.name + " --\n" + s.body)
				}
				b.WriteString("-- want --\n" + got)
				if err := os.WriteFile(filepath.Join(origDir, path), []byte(b.String()), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if got != want {
				t.Errorf("Load(%s) =\n%s\nwant\n%s\n(run go test -rewrite and read the diff if the change is intended)", load, got, want)
			}
		})
	}
}

var origDir, _ = os.Getwd()

type section struct{ name, body string }

// splitSections splits txtar-like text into "-- name --" sections.
func splitSections(s string) []section {
	var out []section
	for _, line := range strings.SplitAfter(s, "\n") {
		trimmed := strings.TrimRight(line, "\n")
		if strings.HasPrefix(trimmed, "-- ") && strings.HasSuffix(trimmed, " --") && len(trimmed) > 6 {
			out = append(out, section{name: strings.TrimSpace(trimmed[3 : len(trimmed)-3])})
			continue
		}
		if len(out) > 0 {
			out[len(out)-1].body += line
		}
	}
	return out
}

// durationKeys are the JSON fields holding a time.Duration.
var durationKeys = map[string]bool{
	"dial_timeout": true, "min": true, "max": true, "check_timeout": true, "splay": true,
	"kill_timeout": true, "restart_backoff": true, "interval": true, "deadline": true,
	"ttl": true, "timeout": true,
}

// goldenJSON renders cfg as indented JSON with durations written like
// "1.5s" instead of nanoseconds, for goldens a person can read.
func goldenJSON(t *testing.T, cfg *Config) string {
	t.Helper()
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if n, ok := x.(float64); ok && durationKeys[k] {
					v[k] = time.Duration(n).String()
					continue
				}
				if n, ok := x.(float64); ok && k == "perms" {
					v[k] = fmt.Sprintf("%04o", int(n))
					continue
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(v)
	out, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(out) + "\n"
}

// A status block without key or ttl publishes under /tend/fleet/ and the
// host's name, with a 30s lease.
func TestStatusDefaults(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "agent.hcl")
	text := "template \"a\" {\n  contents    = \"x\"\n  destination = \"a.conf\"\n}\nstatus {}\n"
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Status == nil || cfg.Status.Key != "/tend/fleet/"+host || cfg.Status.TTL != 30*time.Second {
		t.Errorf("status = %+v, want key /tend/fleet/%s and ttl 30s", cfg.Status, host)
	}
	if err := os.WriteFile(path, []byte(strings.TrimSuffix(text, "status {}\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	if cfg, err := Load(path); err != nil || cfg.Status != nil {
		t.Errorf("without a status block: status = %+v, %v; want none (publishing is opt-in)", cfg.Status, err)
	}
}
