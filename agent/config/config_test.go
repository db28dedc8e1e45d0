package config

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
				b, err := json.MarshalIndent(cfg, "", "  ")
				if err != nil {
					t.Fatal(err)
				}
				got = string(b) + "\n"
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
