package main

import (
	"encoding/json"
	"fmt"
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

func start(t *testing.T) (string, *exampletest.Proc) {
	t.Helper()
	bin := exampletest.Build(t, ".")
	port := freeport.Port(t)
	p := exampletest.Start(t, t.TempDir(), nil, bin, "--port", strconv.Itoa(port), "--interval", "20ms",
		"--loggers", "com.example.orders,com.example.payments")
	p.WaitOutput(t, 10*time.Second, "actuator on")
	return "http://127.0.0.1:" + strconv.Itoa(port) + "/actuator/loggers", p
}

func post(t *testing.T, url, body string, want int) {
	t.Helper()
	code, resp, err := exampletest.Do("POST", url, body)
	if err != nil || code != want {
		t.Fatalf("POST %s %s: %d %s %v, want %d", url, body, code, resp, err, want)
	}
}

func lvl(s string) *string { return &s }

func TestLoggersEndpointShape(t *testing.T) {
	base, _ := start(t)
	code, body, err := exampletest.Do("GET", base, "")
	if err != nil || code != 200 {
		t.Fatalf("GET %s: %d %v", base, code, err)
	}
	// ROOT comes first, as in Spring Boot's answer.
	if !strings.HasPrefix(body, `{"levels":["OFF","ERROR","WARN","INFO","DEBUG","TRACE"],"loggers":{"ROOT":{"configuredLevel":"INFO","effectiveLevel":"INFO"},`) {
		t.Errorf("body starts %q", body)
	}
	var got struct {
		Levels  []string         `json:"levels"`
		Loggers map[string]state `json:"loggers"`
		Groups  map[string]any   `json:"groups"`
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]state{
		"ROOT":                 {lvl("INFO"), "INFO"},
		"com":                  {nil, "INFO"},
		"com.example":          {nil, "INFO"},
		"com.example.orders":   {nil, "INFO"},
		"com.example.payments": {nil, "INFO"},
	}
	if !reflect.DeepEqual(got.Loggers, want) || got.Groups == nil {
		t.Errorf("loggers %+v groups %v, want %+v", got.Loggers, got.Groups, want)
	}
}

func TestSetInheritAndReset(t *testing.T) {
	base, _ := start(t)
	get := func(name string) state {
		t.Helper()
		var s state
		if err := exampletest.GetJSON(base+"/"+name, &s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	post(t, base+"/com.example", `{"configuredLevel":"debug"}`, 204)
	if s := get("com.example.orders"); s.ConfiguredLevel != nil || s.EffectiveLevel != "DEBUG" {
		t.Errorf("child of a DEBUG parent: %+v", s)
	}
	post(t, base+"/com.example.orders", `{"configuredLevel":"WARN"}`, 204)
	if s := get("com.example.orders"); s.ConfiguredLevel == nil || *s.ConfiguredLevel != "WARN" || s.EffectiveLevel != "WARN" {
		t.Errorf("after WARN: %+v", s)
	}
	post(t, base+"/com.example.orders", `{"configuredLevel":null}`, 204)
	if s := get("com.example.orders"); s.ConfiguredLevel != nil || s.EffectiveLevel != "DEBUG" {
		t.Errorf("after reset: %+v", s)
	}
	post(t, base+"/root", `{"configuredLevel":"ERROR"}`, 204)
	post(t, base+"/com.example", `{}`, 204)
	if s := get("ROOT"); *s.ConfiguredLevel != "ERROR" {
		t.Errorf("ROOT after POST to root: %+v", s)
	}
	if s := get("com.example.payments"); s.EffectiveLevel != "ERROR" {
		t.Errorf("payments inherits ROOT: %+v", s)
	}
	post(t, base+"/ROOT", `{"configuredLevel":null}`, 204)
	if s := get("ROOT"); *s.ConfiguredLevel != "INFO" {
		t.Errorf("ROOT reset: %+v, want INFO", s)
	}
	post(t, base+"/org.new.thing", `{"configuredLevel":"TRACE"}`, 204)
	if s := get("org.new"); s.EffectiveLevel != "INFO" {
		t.Errorf("ancestor of a new logger: %+v", s)
	}
	post(t, base+"/com.example", `{"configuredLevel":"LOUD"}`, 400)
	post(t, base+"/com.example", `not json`, 400)
	if code, _, _ := exampletest.Do("GET", base+"/no.such.logger", ""); code != 404 {
		t.Errorf("unknown logger: %d, want 404", code)
	}
}

// lines counts the output lines of logger at level after mark.
func lines(out string, mark int, level, logger string) int {
	return strings.Count(out[mark:], fmt.Sprintf(" %-5s %s - ", level, logger))
}

func TestDebugLinesFollowTheLevel(t *testing.T) {
	base, p := start(t)
	// expect waits for three loop iterations after the call (counted by the
	// INFO lines of the still-logging payments logger) and checks how many
	// lines orders logged meanwhile. One iteration may have been under way
	// when the level changed, so "none" allows one line.
	expect := func(what, level string, some bool) {
		t.Helper()
		mark := len(p.Output())
		exampletest.Eventually(t, 10*time.Second, what, func() error {
			out := p.Output()
			if n := lines(out, mark, "INFO", "com.example.payments"); n < 3 {
				return fmt.Errorf("%d iterations since the change", n)
			}
			n := lines(out, mark, level, "com.example.orders")
			if some && n < 2 {
				return fmt.Errorf("%d %s lines of orders, want several:\n%s", n, level, out[mark:])
			}
			if !some && n > 1 {
				return fmt.Errorf("%d %s lines of orders, want none:\n%s", n, level, out[mark:])
			}
			return nil
		})
	}
	expect("INFO only at start", "DEBUG", false)
	expect("INFO lines at start", "INFO", true)
	post(t, base+"/com.example.orders", `{"configuredLevel":"DEBUG"}`, 204)
	expect("DEBUG lines after DEBUG", "DEBUG", true)
	if n := lines(p.Output(), 0, "DEBUG", "com.example.payments"); n != 0 {
		t.Errorf("payments logged %d DEBUG lines; only orders was changed", n)
	}
	post(t, base+"/com.example.orders", `{"configuredLevel":null}`, 204)
	expect("no DEBUG lines after reset", "DEBUG", false)
	// ROOT OFF silences orders, which inherits it; payments keeps INFO.
	post(t, base+"/com.example.payments", `{"configuredLevel":"INFO"}`, 204)
	post(t, base+"/ROOT", `{"configuredLevel":"OFF"}`, 204)
	expect("no INFO lines under ROOT OFF", "INFO", false)
	if err := p.Stop(5 * time.Second); err != nil {
		t.Errorf("SIGTERM: exit %v, want status 0", err)
	}
}

func TestStartsAtTheLevelsInItsFolder(t *testing.T) {
	bin := exampletest.Build(t, ".")
	dir := t.TempDir()
	for name, level := range map[string]string{"com.example.orders": "debug\n", "ROOT": "WARN", "com.example.payments": "", ".hidden": "LOUD"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(level), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	port := freeport.Port(t)
	p := exampletest.Start(t, dir, nil, bin, "--port", strconv.Itoa(port), "--levels", ".")
	p.WaitOutput(t, 20*time.Second, "actuator on")
	base := "http://127.0.0.1:" + strconv.Itoa(port) + "/actuator/loggers/"
	for name, want := range map[string]string{"com.example.orders": "DEBUG", "com.example.payments": "WARN", "ROOT": "WARN"} {
		var s state
		if err := exampletest.GetJSON(base+name, &s); err != nil {
			t.Fatal(err)
		}
		if s.EffectiveLevel != want {
			t.Errorf("%s starts at %s, want %s", name, s.EffectiveLevel, want)
		}
	}

	os.WriteFile(filepath.Join(dir, "com.example.orders"), []byte("LOUD"), 0o644)
	bad := exampletest.Start(t, dir, nil, bin, "--port", "0", "--levels", ".")
	if err := bad.Wait(20 * time.Second); err == nil || !strings.Contains(bad.Output(), "com.example.orders") {
		t.Errorf("a bad level file: exit %v, output %q; want a failure naming the file", err, bad.Output())
	}
}
