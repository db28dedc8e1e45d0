package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/tendkv/tend/internal/freeport"
	"github.com/tendkv/tend/internal/scrape"
)

// TestAgentTelemetry runs `tend agent` with a telemetry block and reads
// its /health and /metrics as Prometheus would: healthy once the template
// rendered, the store connected, and the last applied revision following a
// put made with `tend put`.
func TestAgentTelemetry(t *testing.T) {
	t.Parallel()
	for name, ep := range agentEndpoints() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			key := fmt.Sprintf("/telemetry/%s/%d", name, time.Now().UnixNano())
			addr := freeport.Addr(t)
			dir := t.TempDir()
			conf := fmt.Sprintf(`store {
  endpoints = [%q]
}
template "app" {
  contents    = %q
  destination = "app.conf"
}
telemetry {
  listen = %q
}
`, ep, fmt.Sprintf("v={{ keyOrDefault %q \"none\" }}\n", key), addr)
			if err := os.WriteFile(filepath.Join(dir, "agent.hcl"), []byte(conf), 0o644); err != nil {
				t.Fatal(err)
			}
			p := startProc(t, nil, tendBin, "agent", "--config", filepath.Join(dir, "agent.hcl"))
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("agent log:\n%s", p.stderr.String())
				}
			})
			fleetWaitFor(t, 15*time.Second, "/health 200", func() bool {
				resp, err := http.Get("http://" + addr + "/health")
				if err != nil {
					return false
				}
				resp.Body.Close()
				return resp.StatusCode == http.StatusOK
			})
			url := "http://" + addr + "/metrics"
			fams := scrape.Families(t, url)
			if v := scrape.Value(fams["tend_agent_store_connected"], nil); v != 1 {
				t.Errorf("tend_agent_store_connected = %v", v)
			}
			if fams["go_goroutines"] == nil || fams["process_resident_memory_bytes"] == nil {
				t.Error("no Go or process collectors")
			}

			rev := putRevision(t, ep, key, "1")
			want, err := strconv.ParseFloat(rev, 64)
			if err != nil {
				t.Fatal(err)
			}
			app := map[string]string{"template": "app"}
			fleetWaitFor(t, 15*time.Second, "the put's revision applied", func() bool {
				f, err := scrape.Get(url)
				return err == nil && scrape.Value(f["tend_agent_last_applied_revision"], app) == want
			})
			fams = scrape.Families(t, url)
			if v := scrape.Value(fams["tend_agent_applies_total"], app); v != 2 {
				t.Errorf("tend_agent_applies_total{template=app} = %v after the first render and one change, want 2", v)
			}
			if b, err := os.ReadFile(filepath.Join(dir, "app.conf")); err != nil || string(b) != "v=1\n" {
				t.Errorf("app.conf = %q, %v", b, err)
			}
		})
	}
}
