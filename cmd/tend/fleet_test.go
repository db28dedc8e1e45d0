package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tendkv/tend/fleet"
)

// startFleetAgent runs `tend agent` for host in a folder of its own: one
// template reading prefix+"v" (with check, if given, in its block), its
// status published under prefix+"status/"+host with a 3s ttl.
func startFleetAgent(t *testing.T, ep, prefix, host, check string) *proc {
	t.Helper()
	dir := t.TempDir()
	conf := fmt.Sprintf(`store {
  endpoints    = [%q]
  dial_timeout = "2s"
}
template "app" {
  contents    = %q
  destination = "app.conf"
  %s
}
status {
  key = %q
  ttl = "3s"
}
`, ep, fmt.Sprintf("v={{ keyOrDefault %q \"\" }}\n", prefix+"v"), check, prefix+"status/"+host)
	if err := os.WriteFile(filepath.Join(dir, "agent.hcl"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startProc(t, nil, tendBin, "agent", "--config", filepath.Join(dir, "agent.hcl"))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("agent %s log:\n%s", host, p.stderr.String())
		}
	})
	return p
}

// putRevision puts key=value with tend put -w json, as a CI job would, and
// returns the revision it printed.
func putRevision(t *testing.T, ep, key, value string) string {
	t.Helper()
	r := tendAt(t, ep, nil, "put", "-w", "json", key, value)
	if r.err != nil {
		t.Fatalf("put %s: %v: %s", key, r.err, r.stderr)
	}
	var resp struct {
		Header struct {
			Revision int64 `json:"revision"`
		} `json:"header"`
	}
	if err := json.Unmarshal(r.stdout, &resp); err != nil || resp.Header.Revision == 0 {
		t.Fatalf("put -w json printed %q: %v", r.stdout, err)
	}
	return strconv.FormatInt(resp.Header.Revision, 10)
}

// fleetExitCode is the exit status of a finished tend run.
func fleetExitCode(r result) int {
	if ee, ok := r.err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if r.err != nil {
		return -1
	}
	return 0
}

// Two agents publish their status; tend fleet status lists both, per
// template. --revision N --wait returns 0 once both reach N, and 1 naming
// the host whose check refuses the change (the other one is at N). An
// agent killed outright loses its entry once its ttl passes, and a wait
// that saw it counts it as gone.
func TestFleetStatus(t *testing.T) {
	t.Parallel()
	for name, ep := range agentEndpoints() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			prefix := fmt.Sprintf("/fleetcmd/%s/%d/", name, time.Now().UnixNano())
			status := prefix + "status/"
			startFleetAgent(t, ep, prefix, "host-a", "")
			b := startFleetAgent(t, ep, prefix, "host-b", `check = ["sh", "-c", "! grep -q fail-b {{ .path }}"]`)
			// A wait covers the hosts listed: let both publish first.
			fleetWaitFor(t, 15*time.Second, "both agents to publish", func() bool {
				out := okAt(t, ep, "fleet", "status", "--prefix", status)
				return strings.Contains(out, "host-a, app, ") && strings.Contains(out, "host-b, app, ")
			})

			rev := putRevision(t, ep, prefix+"v", "1")
			r := tendAt(t, ep, nil, "fleet", "status", "--prefix", status, "--revision", rev, "--hosts", "2", "--wait", "20s", "-w", "table")
			if r.err != nil {
				t.Fatalf("fleet status --revision %s --wait 20s: %v\nstdout:\n%s\nstderr: %s", rev, r.err, r.stdout, r.stderr)
			}
			for _, host := range []string{"host-a", "host-b"} {
				if want := "| " + host + " | app      | " + rev + " "; !strings.Contains(string(r.stdout), want) {
					t.Errorf("table has no row %q:\n%s", want, r.stdout)
				}
			}
			if n := len(regexp.MustCompile(`(?m)\| ok +\|$`).FindAll(r.stdout, -1)); n != 2 {
				t.Errorf("%d rows marked ok, want 2:\n%s", n, r.stdout)
			}

			// A third host that never published counts as missing.
			r = tendAt(t, ep, nil, "fleet", "status", "--prefix", status, "--revision", rev, "--hosts", "3", "--wait", "500ms")
			if fleetExitCode(r) != 1 || !strings.Contains(string(r.stderr), "2 of 3 hosts (--hosts) publish under "+status) {
				t.Errorf("fleet status --hosts 3 with two agents: exit %d, stderr %q; want 1 and the count", fleetExitCode(r), r.stderr)
			}

			// The plain listing, and JSON.
			out := okAt(t, ep, "fleet", "status", "--prefix", status)
			for _, host := range []string{"host-a", "host-b"} {
				if want := host + ", app, " + rev + ", applied, "; !strings.Contains(out, want) {
					t.Errorf("fleet status printed\n%s\nwant a line starting %q", out, want)
				}
			}
			var report fleet.Report
			if err := json.Unmarshal([]byte(okAt(t, ep, "fleet", "status", "--prefix", status, "-w", "json")), &report); err != nil {
				t.Fatal(err)
			}
			if len(report.Hosts) != 2 || report.Hosts[0].Name != "host-a" || report.Hosts[1].Name != "host-b" {
				t.Fatalf("-w json hosts = %+v, want host-a and host-b", report.Hosts)
			}
			for _, h := range report.Hosts {
				if h.Status == nil || len(h.Status.Templates) != 1 || strconv.FormatInt(h.Status.Templates[0].Revision, 10) != rev || h.Status.PID == 0 {
					t.Errorf("-w json %s = %+v, want template app at revision %s and a pid", h.Name, h.Status, rev)
				}
			}

			// host-b's check refuses the next change: it cannot reach it.
			rev2 := putRevision(t, ep, prefix+"v", "fail-b")
			r = tendAt(t, ep, nil, "fleet", "status", "--prefix", status, "--revision", rev2, "--wait", "3s")
			if fleetExitCode(r) != 1 {
				t.Fatalf("fleet status --revision %s with a refusing host: exit %d, want 1\nstdout:\n%s\nstderr: %s", rev2, fleetExitCode(r), r.stdout, r.stderr)
			}
			stderr := string(r.stderr)
			if !strings.Contains(stderr, "host-b/app check-failed at revision "+rev) || strings.Contains(stderr, "host-a") || !strings.Contains(stderr, "fix what the error says") {
				t.Errorf("stderr = %q, want host-b/app named as check-failed at revision %s, host-a not named, and what to do", stderr, rev)
			}
			out = string(r.stdout)
			if !strings.Contains(out, "host-a, app, "+rev2+", applied, ") || !strings.Contains(out, "host-b, app, "+rev+", check-failed, ") {
				t.Errorf("stdout:\n%s\nwant host-a at %s and host-b at %s, check-failed", out, rev2, rev)
			}
			if !strings.HasSuffix(strings.TrimSpace(strings.Split(out, "\n")[0]), ", ok") || !strings.Contains(out, ", failed") {
				t.Errorf("stdout:\n%s\nwant host-a marked ok and host-b failed", out)
			}

			// Killed outright, host-b revokes nothing: its entry is still
			// there when this wait reads it, and goes once its 3s ttl
			// passes. The wait names it as gone.
			b.cmd.Process.Kill()
			<-b.done
			start := time.Now()
			r = tendAt(t, ep, nil, "fleet", "status", "--prefix", status, "--revision", rev2, "--template", "app", "--wait", "8s")
			if fleetExitCode(r) != 1 || !strings.Contains(string(r.stderr), "host-b gone") {
				t.Errorf("fleet status --wait after killing host-b: exit %d, stderr %q; want 1 and host-b gone", fleetExitCode(r), r.stderr)
			}
			fleetWaitFor(t, 15*time.Second-time.Since(start), "host-b's entry to go", func() bool {
				out := okAt(t, ep, "fleet", "status", "--prefix", status)
				return strings.Contains(out, "host-a, app, "+rev2) && !strings.Contains(out, "host-b")
			})
		})
	}
}

// Wrong flags exit 128 naming the fix; an empty prefix says where the
// entries come from, and fails a --revision check.
func TestFleetStatusArguments(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--wait", "1s"}, 128, "--wait needs --revision N"},
		{[]string{"--prefix", ""}, 128, "--prefix is empty"},
		{[]string{"--hosts", "2"}, 128, "--hosts needs --revision N"},
		{[]string{"-w", "yaml"}, 1, `--write-out "yaml" is not supported by fleet status`},
		{[]string{"--prefix", "/fleetcmd-none/"}, 0, "no agent publishes its status under /fleetcmd-none/ (give the agents a status block"},
		{[]string{"--prefix", "/fleetcmd-none/", "--revision", "5"}, 1, "no agent publishes its status under /fleetcmd-none/"},
	} {
		r := tendAt(t, etcdEndpoint, nil, append([]string{"fleet", "status"}, tc.args...)...)
		if fleetExitCode(r) != tc.code || !strings.Contains(string(r.stderr), tc.want) {
			t.Errorf("fleet status %q: exit %d, stderr %q; want %d and %q", tc.args, fleetExitCode(r), r.stderr, tc.code, tc.want)
		}
	}
}

// fleetWaitFor polls cond every 50ms until it holds or d passes.
func fleetWaitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
