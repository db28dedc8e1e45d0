package main

import (
	"os"
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

func TestAnswersWithItsName(t *testing.T) {
	bin := exampletest.Build(t, ".")
	port := freeport.Port(t)
	p := exampletest.Start(t, t.TempDir(), nil, bin, "--name", "web-1", "--port", strconv.Itoa(port))
	p.WaitOutput(t, 10*time.Second, "serving on")
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	for _, path := range []string{"/", "/some/page?x=1"} {
		code, body, err := exampletest.Do("GET", base+path, "")
		if err != nil || code != 200 || body != "backend web-1\n" {
			t.Errorf("GET %s: %d %q %v", path, code, body, err)
		}
	}
	if code, body, err := exampletest.Do("GET", base+"/health", ""); err != nil || code != 200 || strings.TrimSpace(body) != "ok" {
		t.Errorf("GET /health: %d %q %v", code, body, err)
	}
	if err := p.Stop(5 * time.Second); err != nil {
		t.Errorf("SIGTERM: exit %v, want status 0", err)
	}
}

func TestNeedsAName(t *testing.T) {
	bin := exampletest.Build(t, ".")
	p := exampletest.Start(t, t.TempDir(), nil, bin)
	if err := p.Wait(10 * time.Second); err == nil || !strings.Contains(p.Output(), "--name") {
		t.Errorf("exit %v, output %q; want a failure naming --name", err, p.Output())
	}
}
