package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/tendkv/tend/internal/scrape"
)

// metricsOf scrapes the agent's /metrics.
func metricsOf(t testing.TB, h *harness) map[string]*dto.MetricFamily {
	t.Helper()
	return scrape.Families(t, "http://"+telemetryAddr(t, h)+"/metrics")
}

// telemetryAddr waits for the agent's telemetry listener.
func telemetryAddr(t testing.TB, h *harness) string {
	t.Helper()
	waitFor(t, "the telemetry listener", 10*time.Second, func() bool { return h.agent.TelemetryAddr() != "" })
	return h.agent.TelemetryAddr()
}

// waitMetric waits until the series of name whose labels include labels
// sum to want.
func waitMetric(t testing.TB, h *harness, name string, labels map[string]string, want float64) {
	t.Helper()
	var got float64
	deadline := time.Now().Add(15 * time.Second)
	for {
		got = scrape.Value(metricsOf(t, h)[name], labels)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s%v = %v, want %v", name, labels, got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// health GETs /health and decodes it.
func health(t testing.TB, h *harness) (int, Health) {
	t.Helper()
	resp, err := http.Get("http://" + telemetryAddr(t, h) + "/health")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var hl Health
	if err := json.NewDecoder(resp.Body).Decode(&hl); err != nil {
		t.Fatalf("/health answered %s with no JSON: %v", resp.Status, err)
	}
	return resp.StatusCode, hl
}

func waitHealth(t testing.TB, h *harness, code int, what string) Health {
	t.Helper()
	var got int
	var hl Health
	deadline := time.Now().Add(15 * time.Second)
	for {
		if got, hl = health(t, h); got == code {
			return hl
		}
		if time.Now().After(deadline) {
			t.Fatalf("/health = %d %+v, want %d (%s)", got, hl, code, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The agent's /metrics follow what it does: a failed render, a change
// applied (counts, the revision and time of the file, the durations, the
// hook), a hook that fails and the rollback after it, a check that
// refuses a change, the service's registration, the watches and the store
// connection; /health is 503 until every template rendered and while the
// store is out of reach, 200 otherwise.
func TestTelemetry(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s server) {
		p := startProxy(t, s.URL())
		h := startAgent(t, p.URL(), s.URL(), `
template "app" {
  contents    = "v={{ key \"/tm/v\" }}\n"
  destination = "app.conf"
  check       = ["sh", "-c", "! grep -q bad {{ .path }}"]
  on_change   = ["reload"]
}
hook "reload" {
  exec {
    command = ["sh", "-c", "! grep -q hookfail $DIR/app.conf"]
  }
}
service "web" {
  key   = "/tm/svc"
  value = "up"
  ttl   = "60s"
}
telemetry {
  listen = "127.0.0.1:0"
}
`, nil)
		tmpl := map[string]string{"template": "app"}
		// The key is missing: no file yet, and not healthy.
		waitMetric(t, h, "tend_agent_renders_total", map[string]string{"template": "app", "outcome": "render-failed"}, 1)
		code, hl := health(t, h)
		if code != http.StatusServiceUnavailable || hl.Healthy || hl.Rendered != 0 || hl.Templates != 1 || len(hl.Reasons) != 1 ||
			!strings.Contains(hl.Reasons[0], `template "app" not rendered yet: render-failed:`) || !strings.Contains(hl.Reasons[0], "/tm/v") {
			t.Errorf("/health before the first render = %d %+v, want 503 naming template app and the missing key", code, hl)
		}
		waitMetric(t, h, "tend_agent_services_registered", map[string]string{"service": "web"}, 1)
		waitMetric(t, h, "tend_agent_watch_streams", nil, 1)
		waitMetric(t, h, "tend_agent_store_connected", nil, 1)

		rev := h.put("/tm/v", "1")
		h.waitFile("app.conf", "v=1\n")
		before := time.Now()
		waitMetric(t, h, "tend_agent_applies_total", tmpl, 1)
		waitMetric(t, h, "tend_agent_renders_total", map[string]string{"template": "app", "outcome": "applied"}, 1)
		waitMetric(t, h, "tend_agent_last_applied_revision", tmpl, float64(rev))
		waitMetric(t, h, "tend_agent_hook_runs_total", map[string]string{"hook": "reload", "outcome": "ok"}, 1)
		waitMetric(t, h, "tend_agent_apply_duration_seconds", nil, 1)
		fams := metricsOf(t, h)
		if at := scrape.Value(fams["tend_agent_last_apply_timestamp_seconds"], tmpl); at < float64(before.Add(-time.Minute).Unix()) || at > float64(before.Unix()+1) {
			t.Errorf("last_apply_timestamp_seconds = %v, want about %d", at, before.Unix())
		}
		if n := scrape.Value(fams["tend_agent_render_duration_seconds"], nil); n < 2 {
			t.Errorf("render_duration_seconds counts %v renders, want 2 or more", n)
		}
		for _, name := range []string{"go_goroutines", "process_resident_memory_bytes"} {
			if fams[name] == nil {
				t.Errorf("no %s: the Go and process collectors are missing", name)
			}
		}
		for name, f := range fams {
			if !strings.HasPrefix(name, "tend_agent_") && !strings.HasPrefix(name, "go_") && !strings.HasPrefix(name, "process_") {
				t.Errorf("series %s (%s) from outside the agent's registry", name, scrape.Shape(f))
			}
		}
		if hl := waitHealth(t, h, http.StatusOK, "rendered and connected"); !hl.Healthy || hl.Rendered != 1 || !hl.StoreConnected || len(hl.Reasons) != 0 {
			t.Errorf("/health after the first render = %+v, want healthy", hl)
		}

		// The hook refuses the next change: rolled back, and the hook runs
		// again on the previous file.
		h.put("/tm/v", "hookfail")
		waitMetric(t, h, "tend_agent_rollbacks_total", tmpl, 1)
		h.waitFile("app.conf", "v=1\n")
		waitMetric(t, h, "tend_agent_hook_runs_total", map[string]string{"hook": "reload", "outcome": "failed"}, 1)
		waitMetric(t, h, "tend_agent_hook_runs_total", map[string]string{"hook": "reload", "outcome": "ok"}, 2)
		waitMetric(t, h, "tend_agent_applies_total", tmpl, 2)
		waitMetric(t, h, "tend_agent_last_applied_revision", tmpl, float64(rev))

		// The check refuses the next: nothing replaced.
		h.put("/tm/v", "bad")
		waitMetric(t, h, "tend_agent_renders_total", map[string]string{"template": "app", "outcome": "check-failed"}, 1)
		waitMetric(t, h, "tend_agent_applies_total", tmpl, 2)

		// Cut off from the store: not connected, not healthy; and back.
		p.setDown(true)
		waitMetric(t, h, "tend_agent_store_connected", nil, 0)
		if hl := waitHealth(t, h, http.StatusServiceUnavailable, "the store cut off"); hl.StoreConnected || len(hl.Reasons) != 1 || !strings.Contains(hl.Reasons[0], "store connection is") {
			t.Errorf("/health while cut off = %+v, want the store connection named", hl)
		}
		p.setDown(false)
		waitMetric(t, h, "tend_agent_store_connected", nil, 1)
		waitHealth(t, h, http.StatusOK, "the store back")
	})
}

// A telemetry listen address that is taken ends Run at once with an error
// naming the block and the fix, before anything is rendered.
func TestTelemetryListenTaken(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s server) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		dir := t.TempDir()
		cfg := loadConfig(t, dir, s.URL(), fmt.Sprintf(`
template "app" {
  contents    = "x"
  destination = "app.conf"
}
telemetry {
  listen = %q
}
`, l.Addr().String()), nil)
		a, err := New(cfg, Options{Client: newClient(t, s.URL())})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err = a.Run(ctx)
		// The store block and a blank line come before the test's block.
		want := dir + "/agent.hcl:10,1: telemetry listen " + l.Addr().String() + ": "
		if err == nil || !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), "address already in use (stop what listens there, or change listen)") {
			t.Fatalf("Run = %v, want %q… address already in use and the fix", err, want)
		}
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			t.Fatal("Run waited for its context")
		}
	})
}

// A reload does not take /health down while the file it rendered stays in
// place, even when the new definition fails to render; a template moved to
// a new destination is not rendered until it renders there.
func TestHealthAcrossReload(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s server) {
		conf := func(contents, dest string) string {
			return fmt.Sprintf(`
template "app" {
  contents    = %q
  destination = %q
}
telemetry {
  listen = "127.0.0.1:0"
}
`, contents, dest)
		}
		h := startAgent(t, s.URL(), s.URL(), conf(`v={{ key "/hr/v" }}`, "app.conf"), nil)
		h.put("/hr/v", "1")
		h.waitFile("app.conf", "v=1")
		waitHealth(t, h, http.StatusOK, "rendered")
		failed := map[string]string{"template": "app", "outcome": "render-failed"}
		before := scrape.Value(metricsOf(t, h)["tend_agent_renders_total"], failed)

		// The new text reads a missing key: the render after the reload
		// fails, the file stays, and so does /health.
		h.agent.Reload(loadConfig(t, h.dir, s.URL(), conf(`w={{ key "/hr/missing" }}`, "app.conf"), nil))
		waitMetric(t, h, "tend_agent_renders_total", failed, before+1)
		if code, hl := health(t, h); code != http.StatusOK || !hl.Healthy || hl.Rendered != 1 {
			t.Errorf("/health after a reload whose render failed = %d %+v, want 200: app.conf is still the last good file", code, hl)
		}
		h.waitFile("app.conf", "v=1")

		// Moved: not rendered until the new file is there.
		h.agent.Reload(loadConfig(t, h.dir, s.URL(), conf(`w={{ key "/hr/missing" }}`, "moved.conf"), nil))
		hl := waitHealth(t, h, http.StatusServiceUnavailable, "the template moved to a file not rendered yet")
		if hl.Rendered != 0 || len(hl.Reasons) != 1 || !strings.Contains(hl.Reasons[0], `template "app" not rendered yet`) {
			t.Errorf("/health after the move = %+v, want template app named", hl)
		}
		h.put("/hr/missing", "2")
		h.waitFile("moved.conf", "w=2")
		waitHealth(t, h, http.StatusOK, "rendered at the new destination")
	})
}
