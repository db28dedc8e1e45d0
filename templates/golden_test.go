package templates

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the expected sections of testdata/*.txt from what the code does now")

// A scenario file in testdata/ is a list of sections, each opened by a line
// "-- NAME --":
//
//	-- options --   optional: "error-on-missing-key", "hostname NAME",
//	                "delims LEFT RIGHT", one a line
//	-- keys --      the keyspace: "KEY VALUE" a line; a VALUE starting with
//	                a double quote is a Go string literal ("a\nb")
//	-- template --  the template text, exactly (final newline included)
//	-- output --    the expected output, exactly
//	-- error --     or the expected error text (one line)
//	-- deps --      the expected Deps: "key K" and "prefix P" lines
//
// go test ./templates -run Golden -rewrite rewrites output, error and deps;
// read the diff.
type scenario struct {
	names    []string
	sections map[string]string
}

func parseScenario(t *testing.T, file string) scenario {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	sc := scenario{sections: map[string]string{}}
	cur := ""
	for _, line := range strings.SplitAfter(string(data), "\n") {
		trimmed := strings.TrimSuffix(line, "\n")
		if strings.HasPrefix(trimmed, "-- ") && strings.HasSuffix(trimmed, " --") && len(trimmed) > 6 {
			cur = trimmed[3 : len(trimmed)-3]
			if _, dup := sc.sections[cur]; dup {
				t.Fatalf("%s: section %q twice", file, cur)
			}
			sc.names = append(sc.names, cur)
			sc.sections[cur] = ""
			continue
		}
		if cur == "" {
			if strings.TrimSpace(line) != "" {
				t.Fatalf("%s: text before the first section: %q", file, line)
			}
			continue
		}
		sc.sections[cur] += line
	}
	return sc
}

func (sc scenario) format() string {
	var b strings.Builder
	for _, n := range sc.names {
		fmt.Fprintf(&b, "-- %s --\n%s", n, sc.sections[n])
	}
	return b.String()
}

// set sets a section, adding it at the end if new, and deletes it when
// value is nil.
func (sc *scenario) set(name string, value *string) {
	_, had := sc.sections[name]
	if value == nil {
		if had {
			delete(sc.sections, name)
			for i, n := range sc.names {
				if n == name {
					sc.names = append(sc.names[:i:i], sc.names[i+1:]...)
					break
				}
			}
		}
		return
	}
	if !had {
		sc.names = append(sc.names, name)
	}
	sc.sections[name] = *value
}

func scenarioOptions(t *testing.T, text string) Options {
	t.Helper()
	opts := Options{Hostname: func() (string, error) { return "test-host", nil }}
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 0:
		case f[0] == "error-on-missing-key" && len(f) == 1:
			opts.ErrorOnMissingKey = true
		case f[0] == "hostname" && len(f) == 2:
			name := f[1]
			opts.Hostname = func() (string, error) { return name, nil }
		case f[0] == "delims" && len(f) == 3:
			opts.Delims = [2]string{f[1], f[2]}
		default:
			t.Fatalf("unknown option line %q", line)
		}
	}
	return opts
}

func scenarioKeys(t *testing.T, text string) mapView {
	t.Helper()
	v := mapView{}
	for _, line := range strings.Split(text, "\n") {
		if line == "" {
			continue
		}
		key, val, _ := strings.Cut(line, " ")
		if strings.HasPrefix(val, `"`) {
			u, err := strconv.Unquote(val)
			if err != nil {
				t.Fatalf("keys: %q: %v", line, err)
			}
			val = u
		}
		v[key] = val
	}
	return v
}

func formatDeps(d Deps) string {
	var b strings.Builder
	for _, k := range d.Keys {
		fmt.Fprintf(&b, "key %s\n", k)
	}
	for _, p := range d.Prefixes {
		fmt.Fprintf(&b, "prefix %s\n", p)
	}
	return b.String()
}

func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no scenarios in testdata/")
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			sc := parseScenario(t, file)
			text, ok := sc.sections["template"]
			if !ok {
				t.Fatalf("%s: no template section", file)
			}
			opts := scenarioOptions(t, sc.sections["options"])
			view := scenarioKeys(t, sc.sections["keys"])
			name := strings.TrimSuffix(filepath.Base(file), ".txt") + ".tmpl"

			var out, errText, deps *string
			tmpl, err := Parse(name, text, opts)
			if err == nil {
				var b []byte
				var d Deps
				b, d, err = tmpl.Render(view)
				ds := formatDeps(d)
				deps = &ds
				if err == nil {
					s := string(b)
					out = &s
				}
			}
			if err != nil {
				s := err.Error() + "\n"
				errText = &s
			}

			for _, got := range []*string{out, errText, deps} {
				if got != nil && *got != "" && !strings.HasSuffix(*got, "\n") {
					t.Fatalf("%s: the output must end with a newline (end the template with one): %q", file, *got)
				}
			}
			if *rewrite {
				sc.set("output", out)
				sc.set("error", errText)
				sc.set("deps", deps)
				if err := os.WriteFile(file, []byte(sc.format()), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			check := func(section string, got *string) {
				want, ok := sc.sections[section]
				switch {
				case got == nil && ok:
					t.Errorf("%s: want %s section\n%s\ngot none", file, section, want)
				case got != nil && !ok:
					t.Errorf("%s: got %s\n%s\nbut the file has no %s section", file, section, *got, section)
				case got != nil && *got != want:
					t.Errorf("%s: %s:\ngot:\n%s\nwant:\n%s", file, section, *got, want)
				}
			}
			check("output", out)
			check("error", errText)
			check("deps", deps)
		})
	}
}
