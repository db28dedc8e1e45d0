package agent

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// readHostStatus returns the status published under key and its kv, or
// nils when there is none.
func readHostStatus(t testing.TB, c *clientv3.Client, key string) (*HostStatus, *mvccpb.KeyValue) {
	t.Helper()
	kv := getKV(t, c, key)
	if kv == nil {
		return nil, nil
	}
	var hs HostStatus
	if err := json.Unmarshal(kv.Value, &hs); err != nil {
		t.Fatalf("%s holds %q, not a HostStatus: %v", key, kv.Value, err)
	}
	return &hs, kv
}

// waitHostStatus waits until key holds a status for which cond holds.
func waitHostStatus(t testing.TB, c *clientv3.Client, key, what string, cond func(HostStatus, *mvccpb.KeyValue) bool) (HostStatus, *mvccpb.KeyValue) {
	t.Helper()
	var hs *HostStatus
	var kv *mvccpb.KeyValue
	waitFor(t, key+": "+what, 15*time.Second, func() bool {
		hs, kv = readHostStatus(t, c, key)
		return hs != nil && cond(*hs, kv)
	})
	return *hs, kv
}

func templateStatus(hs HostStatus, name string) Status {
	for _, s := range hs.Templates {
		if s.Template == name {
			return s
		}
	}
	return Status{}
}

// The agent publishes its status under a lease of the status ttl: the
// host, its pid and start, and per template the revision on disk and the
// outcome of the last attempt, and per service whether it is registered.
// It rewrites it when a render fails, when a change is applied (the
// revision moves to the put's) and when a check refuses one (the revision
// stays, the outcome and error say why), and revokes it on a clean stop.
func TestFleetStatusPublished(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	forEachBackend(t, func(t *testing.T, s server) {
		h := startAgent(t, s.URL(), s.URL(), `
template "app" {
  contents    = "v={{ key \"/fleet/v\" }}\n"
  destination = "app.conf"
  check       = ["sh", "-c", "! grep -q bad {{ .path }} || { echo refused bad value >&2; exit 1; }"]
}
service "web" {
  key   = "/fleet/svc/a"
  value = "up"
  ttl   = "60s"
}
status {
  key = "/fleet/status/{{ hostname }}"
  ttl = "60s"
}
`, nil)
		key := "/fleet/status/" + host
		start := time.Now()
		// The key is missing: the first render fails, and says so.
		hs, kv := waitHostStatus(t, h.cli, key, "a failed render", func(hs HostStatus, _ *mvccpb.KeyValue) bool {
			st := templateStatus(hs, "app")
			return st.Outcome == "render-failed" && strings.Contains(st.Error, "/fleet/v")
		})
		if hs.Host != host || hs.PID != os.Getpid() || hs.StartedAt.IsZero() || hs.StartedAt.After(start) || hs.UpdatedAt.Before(hs.StartedAt) {
			t.Errorf("host %q pid %d started %s updated %s; want %q, %d, a start before %s and an update after it",
				hs.Host, hs.PID, hs.StartedAt, hs.UpdatedAt, host, os.Getpid(), start)
		}
		if kv.Lease == 0 {
			t.Fatalf("%s is not under a lease", key)
		}
		ttl, err := h.cli.TimeToLive(context.Background(), clientv3.LeaseID(kv.Lease))
		if err != nil {
			t.Fatal(err)
		}
		if ttl.GrantedTTL != 60 {
			t.Errorf("lease granted for %ds, want 60s (the status ttl)", ttl.GrantedTTL)
		}

		rev := h.put("/fleet/v", "1")
		h.waitFile("app.conf", "v=1\n")
		hs, _ = waitHostStatus(t, h.cli, key, "the change applied", func(hs HostStatus, _ *mvccpb.KeyValue) bool {
			st := templateStatus(hs, "app")
			return st.Revision == rev && st.Outcome == "applied"
		})
		st := templateStatus(hs, "app")
		if st.Error != "" || st.AppliedAt.IsZero() || st.Destination != h.path("app.conf") {
			t.Errorf("after the change: %+v; want no error, an applied_at and destination %s", st, h.path("app.conf"))
		}
		if len(hs.Services) != 1 || hs.Services[0].Service != "web" || !hs.Services[0].Registered || !hs.Services[0].Healthy {
			t.Errorf("services = %+v, want web registered and healthy", hs.Services)
		}

		h.put("/fleet/v", "bad")
		hs, _ = waitHostStatus(t, h.cli, key, "the change refused", func(hs HostStatus, _ *mvccpb.KeyValue) bool {
			return templateStatus(hs, "app").Outcome == "check-failed"
		})
		if st := templateStatus(hs, "app"); st.Revision != rev || !strings.Contains(st.Error, "refused bad value") {
			t.Errorf("after the refused change: %+v; want revision %d (the file on disk) and the check's output", st, rev)
		}
		if got := h.read("app.conf"); got != "v=1\n" {
			t.Errorf("app.conf = %q after a refused change", got)
		}

		// A 60s lease: only a revoke removes the key at once.
		h.stop()
		if kv := getKV(t, h.cli, key); kv != nil {
			t.Fatalf("after a clean stop %s is still there: %s", key, kv.Value)
		}
		if n := h.logs.count("fleet status revoked", "reason=agent stopping"); n != 1 {
			t.Errorf("%d revoke lines, want 1", n)
		}
	})
}

// An agent cut off from the store (as good as killed, to the store) loses
// its entry once the ttl passes; when it is back it publishes again under
// a new lease, with what it knew, and then follows changes again.
func TestFleetStatusExpiresAndComesBack(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s server) {
		p := startProxy(t, s.URL())
		h := startAgent(t, p.URL(), s.URL(), `
template "app" {
  contents    = "v={{ key \"/fleet-x/v\" }}\n"
  destination = "app.conf"
}
status {
  key = "/fleet-x/status/a"
  ttl = "2s"
}
`, nil)
		rev := h.put("/fleet-x/v", "1")
		_, kv := waitHostStatus(t, h.cli, "/fleet-x/status/a", "revision "+itoa(int(rev)), func(hs HostStatus, _ *mvccpb.KeyValue) bool {
			return templateStatus(hs, "app").Revision == rev
		})
		lease := kv.Lease
		// Kept alive past its ttl.
		noChangeFor(t, h.cli, "/fleet-x/status/a", 3*time.Second)

		p.setDown(true)
		waitGone(t, h.cli, "/fleet-x/status/a", 15*time.Second)
		p.setDown(false)
		_, kv = waitHostStatus(t, h.cli, "/fleet-x/status/a", "published again under a new lease", func(hs HostStatus, kv *mvccpb.KeyValue) bool {
			return kv.Lease != 0 && kv.Lease != lease && templateStatus(hs, "app").Revision == rev
		})
		if h.logs.count("fleet status lease lost") == 0 {
			t.Errorf("published again without noticing the lost lease")
		}
		rev = h.put("/fleet-x/v", "2")
		waitHostStatus(t, h.cli, "/fleet-x/status/a", "revision "+itoa(int(rev)), func(hs HostStatus, _ *mvccpb.KeyValue) bool {
			return templateStatus(hs, "app").Revision == rev
		})
	})
}

// A storm of changes, each applied, makes a few status writes a second,
// not one per change; the last one carries the last revision.
func TestFleetStatusDebounced(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s server) {
		h := startAgent(t, s.URL(), s.URL(), `
template "app" {
  contents    = "v={{ keyOrDefault \"/fleet-d/v\" \"\" }}\n"
  destination = "app.conf"
}
status {
  key = "/fleet-d/status/a"
  ttl = "10s"
}
`, nil)
		_, kv := waitHostStatus(t, h.cli, "/fleet-d/status/a", "published", func(hs HostStatus, _ *mvccpb.KeyValue) bool {
			return templateStatus(hs, "app").Outcome == "applied"
		})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		writes := h.cli.Watch(ctx, "/fleet-d/status/a", clientv3.WithRev(kv.ModRevision+1))
		start := time.Now()
		var rev int64
		for i := 0; time.Since(start) < 1500*time.Millisecond; i++ {
			rev = h.put("/fleet-d/v", itoa(i))
		}
		storm := time.Since(start)
		_, last := waitHostStatus(t, h.cli, "/fleet-d/status/a", "the last revision", func(hs HostStatus, _ *mvccpb.KeyValue) bool {
			return templateStatus(hs, "app").Revision == rev
		})
		elapsed := time.Since(start)
		n := 0
		for seen := int64(0); seen < last.ModRevision; {
			select {
			case resp := <-writes:
				for _, ev := range resp.Events {
					n++
					seen = ev.Kv.ModRevision
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("the watch did not deliver the write at revision %d", last.ModRevision)
			}
		}
		applied := h.logs.count("file replaced", "template=app")
		limit := int(elapsed/statusMinGap) + 2
		t.Logf("%d status writes for %d files replaced in a %s storm (%s to the last status)", n, applied, storm, elapsed)
		if n > limit {
			t.Errorf("%d status writes in %s, want at most %d", n, elapsed, limit)
		}
		if n == 0 || applied < 2*n {
			t.Errorf("%d writes for %d applied changes: the storm did not test the debounce", n, applied)
		}
	})
}

// A reload that changes the status key moves the entry (the old one is
// revoked at once); one that drops the status block revokes it.
func TestFleetStatusReload(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s server) {
		conf := func(status string) string {
			return `
template "app" {
  contents    = "x"
  destination = "app.conf"
}
` + status
		}
		h := startAgent(t, s.URL(), s.URL(), conf(`status {
  key = "/fleet-r/a"
  ttl = "60s"
}`), nil)
		waitHostStatus(t, h.cli, "/fleet-r/a", "published", func(HostStatus, *mvccpb.KeyValue) bool { return true })
		h.agent.Reload(loadConfig(t, h.dir, s.URL(), conf(`status {
  key = "/fleet-r/b"
  ttl = "60s"
}`), nil))
		waitHostStatus(t, h.cli, "/fleet-r/b", "published", func(HostStatus, *mvccpb.KeyValue) bool { return true })
		if kv := getKV(t, h.cli, "/fleet-r/a"); kv != nil {
			t.Errorf("the old key is still there after the key changed: %s", kv.Value)
		}
		h.agent.Reload(loadConfig(t, h.dir, s.URL(), conf(""), nil))
		waitGone(t, h.cli, "/fleet-r/b", 5*time.Second)
		// The revoke is logged after it is done: the key can go first.
		revokes := func() int { return h.logs.count("fleet status revoked", "reason=configuration changed") }
		waitFor(t, "the second revoke logged", 5*time.Second, func() bool { return revokes() >= 2 })
		if n := revokes(); n != 2 {
			t.Errorf("%d revokes for the reloads, want 2", n)
		}
	})
}
