package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tendkv/tend/examples/internal/exampletest"
	"github.com/tendkv/tend/internal/freeport"
)

func TestMain(m *testing.M) {
	code := m.Run()
	exampletest.RemoveBuilds()
	os.Exit(code)
}

// start writes yml to a file, runs the app on it and returns the base URL.
func start(t *testing.T, yml string, args ...string) (string, *exampletest.Proc) {
	t.Helper()
	bin := exampletest.Build(t, ".")
	dir := t.TempDir()
	file := filepath.Join(dir, "application.yml")
	if err := os.WriteFile(file, []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	port := freeport.Port(t)
	p := exampletest.Start(t, dir, nil, bin, append([]string{"--config", file, "--port", strconv.Itoa(port)}, args...)...)
	p.WaitOutput(t, 10*time.Second, "serving on")
	return "http://127.0.0.1:" + strconv.Itoa(port), p
}

func TestLoadedFlattensLikeSpringBoot(t *testing.T) {
	yml := `# comments are fine
server:
  port: 9999          # overridden by --port in this test
spring:
  application:
    name: myapp
  datasource:
    url: "jdbc:postgresql://db:5432/app"
app:
  hosts:
    - a.example.com
    - b.example.com
  servers:
    - name: one
      weight: 3
  ratio: 1.50
  enabled: true
  empty: ~
defaults: &defaults
  timeout: 30s
client:
  <<: *defaults
  retries: 2
---
app:
  ratio: "2.0"
`
	base, p := start(t, yml)
	var got loaded
	if err := exampletest.GetJSON(base+"/loaded", &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"server.port":             "9999",
		"spring.application.name": "myapp",
		"spring.datasource.url":   "jdbc:postgresql://db:5432/app",
		"app.hosts[0]":            "a.example.com",
		"app.hosts[1]":            "b.example.com",
		"app.servers[0].name":     "one",
		"app.servers[0].weight":   "3",
		"app.ratio":               "2.0", // the second document wins, text kept as written
		"app.enabled":             "true",
		"app.empty":               "",
		"defaults.timeout":        "30s",
		"client.timeout":          "30s", // merged from the anchor
		"client.retries":          "2",
	}
	if !reflect.DeepEqual(got.Properties, want) {
		t.Errorf("properties:\n got %v\nwant %v", got.Properties, want)
	}
	if got.PID != p.Cmd.Process.Pid {
		t.Errorf("pid %d, want %d", got.PID, p.Cmd.Process.Pid)
	}
	if got.Started.IsZero() || time.Since(got.Started) > time.Minute {
		t.Errorf("started %v, want a moment ago", got.Started)
	}
}

func TestServesOnServerPort(t *testing.T) {
	bin := exampletest.Build(t, ".")
	dir := t.TempDir()
	port := freeport.Port(t)
	yml := "server:\n  port: " + strconv.Itoa(port) + "\n"
	if err := os.WriteFile(filepath.Join(dir, "application.yml"), []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	// No --config: the default is application.yml in the working folder.
	p := exampletest.Start(t, dir, nil, bin)
	p.WaitOutput(t, 10*time.Second, "serving on http://127.0.0.1:"+strconv.Itoa(port))
	var got loaded
	if err := exampletest.GetJSON("http://127.0.0.1:"+strconv.Itoa(port)+"/loaded", &got); err != nil {
		t.Fatal(err)
	}
	if got.Properties["server.port"] != strconv.Itoa(port) {
		t.Errorf("server.port = %q, want %d", got.Properties["server.port"], port)
	}
	if err := p.Stop(5 * time.Second); err != nil {
		t.Errorf("SIGTERM: exit %v, want status 0", err)
	}
}

func TestRefusesBadFiles(t *testing.T) {
	bin := exampletest.Build(t, ".")
	for _, tc := range []struct {
		name, yml string
		want      []string
		args      []string
	}{
		{"tab", "server:\n\tport: 1\n", []string{"application.yml", "line 2", "fix the YAML"}, nil},
		{"unclosed", "app:\n  hosts: [a, b\n", []string{"application.yml", "fix the YAML"}, nil},
		{"list-at-top", "- a\n- b\n", []string{"application.yml:1:1", "not a mapping"}, nil},
		{"bad-port", "server:\n  port: eighty\n", []string{`server.port "eighty"`, "0 to 65535"}, []string{}},
		{"complex-key", "? [a, b]\n: 1\n", []string{"application.yml:1:3", "plain names"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "application.yml"), []byte(tc.yml), 0o644); err != nil {
				t.Fatal(err)
			}
			args := tc.args
			if args == nil {
				args = []string{"--port", "0"}
			}
			p := exampletest.Start(t, dir, nil, bin, args...)
			err := p.Wait(10 * time.Second)
			if err == nil || p.Cmd.ProcessState == nil || p.Cmd.ProcessState.ExitCode() != 1 {
				t.Fatalf("exit %v, want status 1; output:\n%s", err, p.Output())
			}
			for _, w := range tc.want {
				if !strings.Contains(p.Output(), w) {
					t.Errorf("output %q does not mention %q", p.Output(), w)
				}
			}
		})
	}
}

func TestMissingFile(t *testing.T) {
	bin := exampletest.Build(t, ".")
	p := exampletest.Start(t, t.TempDir(), nil, bin, "--config", "nope.yml")
	if err := p.Wait(10 * time.Second); err == nil {
		t.Fatal("started without a config file")
	}
	if !strings.Contains(p.Output(), "nope.yml") {
		t.Errorf("output %q does not name the file", p.Output())
	}
}

func TestEmptyFileUsesDefaults(t *testing.T) {
	base, _ := start(t, "# nothing yet\n")
	var got loaded
	if err := exampletest.GetJSON(base+"/loaded", &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Properties) != 0 {
		t.Errorf("properties %v, want none", got.Properties)
	}
}

func TestCheckOnly(t *testing.T) {
	bin := exampletest.Build(t, ".")
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "good.yml"), filepath.Join(dir, "bad.yml")
	os.WriteFile(good, []byte("server:\n  port: 8081\n"), 0o644)
	os.WriteFile(bad, []byte("server:\n  port: [\n"), 0o644)
	p := exampletest.Start(t, dir, nil, bin, "--check", "--config", good)
	if err := p.Wait(10 * time.Second); err != nil || !strings.Contains(p.Output(), "is good") {
		t.Errorf("check of a good file: %v\n%s", err, p.Output())
	}
	p = exampletest.Start(t, dir, nil, bin, "--check", "--config", bad)
	if err := p.Wait(10 * time.Second); err == nil {
		t.Errorf("check of a bad file passed:\n%s", p.Output())
	}
}
