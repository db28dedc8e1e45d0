package agent

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// getKV returns key as the store holds it now, or nil.
func getKV(t testing.TB, c *clientv3.Client, key string) *mvccpb.KeyValue {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := c.Get(ctx, key)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	if len(resp.Kvs) == 0 {
		return nil
	}
	return resp.Kvs[0]
}

// waitRegistered waits until key holds value under a lease other than
// notLease, and returns that lease.
func waitRegistered(t testing.TB, c *clientv3.Client, key, value string, notLease int64) int64 {
	t.Helper()
	var lease int64
	waitFor(t, key+" registered with a new lease", 15*time.Second, func() bool {
		kv := getKV(t, c, key)
		if kv == nil || string(kv.Value) != value || kv.Lease == 0 || kv.Lease == notLease {
			return false
		}
		lease = kv.Lease
		return true
	})
	return lease
}

func waitGone(t testing.TB, c *clientv3.Client, key string, within time.Duration) {
	t.Helper()
	waitFor(t, key+" deleted", within, func() bool { return getKV(t, c, key) == nil })
}

// noDeleteFor watches key for d and fails on any change to it.
func noChangeFor(t testing.TB, c *clientv3.Client, key string, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	rev := getKV(t, c, key).ModRevision
	for resp := range c.Watch(ctx, key, clientv3.WithRev(rev+1)) {
		for _, ev := range resp.Events {
			t.Fatalf("%s changed within %s of registering: %s %q (lease %x)", key, d, ev.Type, ev.Kv.Value, ev.Kv.Lease)
		}
	}
}

// A service without a check is registered under a lease of its TTL, kept
// alive past many TTLs, updated by a reload, and revoked on a clean stop:
// the key goes at once, not a TTL later.
func TestServiceRegisterKeepAliveRevoke(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s server) {
		conf := func(value, ttl string) string {
			return `
service "web" {
  key   = "/svc/web/{{ \"a\" | upper }}"
  value = "` + value + `"
  ttl   = "` + ttl + `"
}
`
		}
		// clientv3 renews a lease every ttl/3, on a 500ms tick: a 2s lease
		// leaves room for a loaded machine, a 1s one does not.
		h := startAgent(t, s.URL(), s.URL(), conf("10.0.0.1:80", "2s"), nil)
		lease := waitRegistered(t, h.cli, "/svc/web/A", "10.0.0.1:80", 0)
		ttl, err := h.cli.TimeToLive(context.Background(), clientv3.LeaseID(lease))
		if err != nil {
			t.Fatal(err)
		}
		if ttl.GrantedTTL != 2 {
			t.Errorf("lease granted for %ds, want 2s (the service's ttl)", ttl.GrantedTTL)
		}
		// Kept alive: the key outlives its 2s lease several times over.
		noChangeFor(t, h.cli, "/svc/web/A", 5*time.Second)

		// A reload with a new value re-registers; with a long ttl, the clean
		// stop below can only be a revoke.
		h.agent.Reload(loadConfig(t, h.dir, s.URL(), conf("10.0.0.1:81", "60s"), nil))
		waitRegistered(t, h.cli, "/svc/web/A", "10.0.0.1:81", lease)
		waitFor(t, "Services() to say registered", 10*time.Second, func() bool {
			st := h.agent.Services()
			return len(st) == 1 && st[0].Registered && st[0].Healthy && st[0].Key == "/svc/web/A"
		})
		if n := h.logs.count("service deregistered", "reason=configuration changed"); n != 1 {
			t.Errorf("%d deregistrations for the reload, want 1", n)
		}
		h.stop()
		if kv := getKV(t, h.cli, "/svc/web/A"); kv != nil {
			t.Fatalf("after a clean stop the key is still there: %q (lease %x)", kv.Value, kv.Lease)
		}
	})
}

// A lease lost while the agent runs (revoked by someone, or expired while
// the agent was cut off from the store) leads to a new lease and the key
// put again.
func TestServiceLeaseLost(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s server) {
		p := startProxy(t, s.URL())
		h := startAgent(t, p.URL(), s.URL(), `
service "web" {
  key   = "/svc/web/a"
  value = "up"
  ttl   = "2s"
}
`, nil)
		lease := waitRegistered(t, h.cli, "/svc/web/a", "up", 0)

		// Revoked by an operator: the key goes with it, and comes back.
		if _, err := h.cli.Revoke(context.Background(), clientv3.LeaseID(lease)); err != nil {
			t.Fatal(err)
		}
		lease = waitRegistered(t, h.cli, "/svc/web/a", "up", lease)
		if h.logs.count("service lease lost") == 0 {
			t.Errorf("re-registered without noticing the lost lease")
		}

		// Cut off for longer than the TTL: the store expires the lease and
		// the key; once reachable again the agent registers anew.
		p.setDown(true)
		waitGone(t, h.cli, "/svc/web/a", 15*time.Second)
		p.setDown(false)
		lease = waitRegistered(t, h.cli, "/svc/web/a", "up", lease)
		noChangeFor(t, h.cli, "/svc/web/a", 2*time.Second)

		// The store restarts after the agent gave the lease up: registered
		// again, and kept alive.
		// (Counted from here: whether the cut-off above ended a
		// registration or a registration attempt depends on timing.)
		lost := h.logs.count("service lease lost")
		s.Stop()
		waitFor(t, "the agent to notice the lease is lost", 15*time.Second, func() bool {
			return h.logs.count("service lease lost") > lost
		})
		s.Start(t)
		waitFor(t, "registered after the restart", 15*time.Second, func() bool {
			st := h.agent.Services()
			return len(st) == 1 && st[0].Registered && st[0].Lease != lease
		})
		kv := getKV(t, h.cli, "/svc/web/a")
		if kv == nil || string(kv.Value) != "up" || kv.Lease == 0 {
			t.Fatalf("after the restart: %v", kv)
		}
		noChangeFor(t, h.cli, "/svc/web/a", 2*time.Second)
	})
}

// A health check gates the registration: registered only while it passes,
// revoked at once when it fails, registered again when it passes again.
func TestServiceCheckGates(t *testing.T) {
	for _, tc := range []struct {
		name  string
		check string
		// set makes the checked thing healthy or not.
		set func(t *testing.T, dir string, healthy bool)
	}{
		{
			name: "http",
			check: `http = "$URL/health"
    expect_status = [204]`,
		},
		{
			name:  "command",
			check: `command = ["test", "-e", "$DIR/ready"]`,
			set: func(t *testing.T, dir string, healthy bool) {
				if healthy {
					writeFiles(t, dir, map[string]string{"ready": ""})
				} else if err := os.Remove(dir + "/ready"); err != nil && !os.IsNotExist(err) {
					t.Fatal(err)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			forEachBackend(t, func(t *testing.T, s server) {
				var status atomic.Int32
				status.Store(http.StatusServiceUnavailable)
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					w.WriteHeader(int(status.Load()))
				}))
				defer srv.Close()
				set := tc.set
				if set == nil {
					set = func(t *testing.T, _ string, healthy bool) {
						// 200 is a success in general, but not the 204 this
						// check expects.
						status.Store(map[bool]int32{true: http.StatusNoContent, false: http.StatusOK}[healthy])
					}
				}
				conf := `
service "web" {
  key   = "/svc/checked/a"
  value = "up"
  ttl   = "60s"
  check {
    ` + tc.check + `
    interval = "100ms"
    timeout  = "100ms"
  }
}
`
				h := startAgent(t, s.URL(), s.URL(), strings.ReplaceAll(conf, "$URL", srv.URL), nil)
				set(t, h.dir, false)
				waitFor(t, "a failed check", 10*time.Second, func() bool {
					st := h.agent.Services()
					return len(st) == 1 && !st[0].Healthy && st[0].Error != ""
				})
				if kv := getKV(t, h.cli, "/svc/checked/a"); kv != nil {
					t.Fatalf("registered although the check fails: %q", kv.Value)
				}
				set(t, h.dir, true)
				lease := waitRegistered(t, h.cli, "/svc/checked/a", "up", 0)
				// The ttl is 60s: only a revoke removes the key this fast.
				set(t, h.dir, false)
				waitGone(t, h.cli, "/svc/checked/a", 5*time.Second)
				set(t, h.dir, true)
				waitRegistered(t, h.cli, "/svc/checked/a", "up", lease)
				if n := h.logs.count("service deregistered", "reason=check failed"); n != 1 {
					t.Errorf("%d deregistrations for a failed check, want 1", n)
				}
			})
		})
	}
}
