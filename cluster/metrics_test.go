package cluster

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tendkv/tend/internal/freeport"
	"github.com/tendkv/tend/internal/scrape"
)

// TestPeerMetrics: on three members, each member's /metrics has etcd's
// per-peer network series for each of its peers, with traffic counted and
// round-trip times probed; a leader change is counted by those who see it.
func TestPeerMetrics(t *testing.T) {
	c := newTestCluster(t, 3)
	lead := c.waitLeader()
	if _, err := c.client(lead).Put(ctx(t), "k", strings.Repeat("v", 1000)); err != nil {
		t.Fatal(err)
	}
	ids := c.ids()
	for i := range 3 {
		url := c.member(i).ClientURLs()[0] + "/metrics"
		var fams = scrape.Families(t, url)
		eventually(t, 10*time.Second, fmt.Sprintf("member %d probes every peer's round trip", i), func() bool {
			fams = scrape.Families(t, url)
			for j, id := range ids {
				if j != i && scrape.Value(fams["etcd_network_peer_round_trip_time_seconds"], map[string]string{"To": fmt.Sprintf("%x", id)}) == 0 {
					return false
				}
			}
			return true
		})
		for j, id := range ids {
			if j == i {
				continue
			}
			peer := fmt.Sprintf("%x", id)
			if f := fams["etcd_network_peer_sent_failures_total"]; f == nil {
				t.Errorf("member %d: no etcd_network_peer_sent_failures_total", i)
			}
			if i != lead && j != lead {
				continue // followers send each other nothing
			}
			if v := scrape.Value(fams["etcd_network_peer_sent_bytes_total"], map[string]string{"To": peer}); v == 0 {
				t.Errorf("member %d: etcd_network_peer_sent_bytes_total{To=%q} = 0", i, peer)
			}
			if v := scrape.Value(fams["etcd_network_peer_received_bytes_total"], map[string]string{"From": peer}); v == 0 {
				t.Errorf("member %d: etcd_network_peer_received_bytes_total{From=%q} = 0", i, peer)
			}
		}
		if v := scrape.Value(fams["etcd_server_has_leader"], nil); v != 1 {
			t.Errorf("member %d: etcd_server_has_leader = %v", i, v)
		}
		if v := scrape.Value(fams["etcd_server_is_leader"], nil); v != map[bool]float64{true: 1}[i == lead] {
			t.Errorf("member %d: etcd_server_is_leader = %v (leader is %d)", i, v, lead)
		}
		if v := scrape.Value(fams["etcd_network_known_peers"], map[string]string{"Local": fmt.Sprintf("%x", ids[i])}); v != 2 {
			t.Errorf("member %d: etcd_network_known_peers = %v, want 2", i, v)
		}
	}

	// The leader goes: the others see a second leader.
	var before [3]float64
	for i := range 3 {
		before[i] = scrape.Value(scrape.Families(t, c.member(i).ClientURLs()[0]+"/metrics")["etcd_server_leader_changes_seen_total"], nil)
		if before[i] < 1 {
			t.Errorf("member %d: etcd_server_leader_changes_seen_total = %v with a leader", i, before[i])
		}
	}
	c.stop(lead)
	rest := c.running()
	next := c.waitLeader(rest...)
	for _, i := range rest {
		fams := scrape.Families(t, c.member(i).ClientURLs()[0]+"/metrics")
		if v := scrape.Value(fams["etcd_server_leader_changes_seen_total"], nil); v != before[i]+1 {
			t.Errorf("member %d: etcd_server_leader_changes_seen_total = %v after a new leader, was %v", i, v, before[i])
		}
	}
	// The new leader keeps sending to the stopped member, and fails.
	peer := fmt.Sprintf("%x", ids[lead])
	eventually(t, 10*time.Second, "the new leader counts failed sends to the stopped member", func() bool {
		f := scrape.Families(t, c.member(next).ClientURLs()[0]+"/metrics")
		return scrape.Value(f["etcd_network_peer_sent_failures_total"], map[string]string{"To": peer}) > 0
	})
}

// TestMetricsListener: --listen-metrics-urls serves /metrics and the health
// endpoints, and nothing of the client API; the client URLs serve /metrics
// too.
func TestMetricsListener(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	addr := freeport.Addr(t)
	cfg.ListenMetricsURLs = []string{"http://" + addr}
	cfg.Metrics = MetricsExtensive
	m := start(t, cfg)
	if _, err := client(t, m).Put(ctx(t), "k", "v"); err != nil {
		t.Fatal(err)
	}
	fams := scrape.Families(t, "http://"+addr+"/metrics")
	for _, name := range []string{"etcd_server_has_leader", "grpc_server_handling_seconds", "etcd_disk_wal_fsync_duration_seconds", "etcd_disk_backend_commit_duration_seconds", "go_goroutines"} {
		if fams[name] == nil {
			t.Errorf("metrics listener: no %s", name)
		}
	}
	if v := scrape.Value(fams["grpc_server_handled_total"], map[string]string{"grpc_method": "Put", "grpc_code": "OK"}); v != 1 {
		t.Errorf(`grpc_server_handled_total{grpc_method="Put",grpc_code="OK"} = %v after one put`, v)
	}
	for path, want := range map[string]int{"/health": 200, "/readyz": 200, "/livez": 200, "/v3/kv/range": 404, "/version": 404} {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want && !(want == 404 && resp.StatusCode == 405) {
			t.Errorf("metrics listener GET %s: %d, want %d", path, resp.StatusCode, want)
		}
	}
	fams = scrape.Families(t, m.ClientURLs()[0]+"/metrics")
	if fams["etcd_server_has_leader"] == nil {
		t.Error("client URL /metrics: no etcd_server_has_leader")
	}
	// The /health above counted, and nothing failed.
	if v := scrape.Value(fams["etcd_server_health_success"], nil); v != 1 {
		t.Errorf("etcd_server_health_success = %v after one healthy /health", v)
	}
	if v := scrape.Value(fams["etcd_server_health_failures"], nil); v != 0 {
		t.Errorf("etcd_server_health_failures = %v", v)
	}
}

func TestMetricsLevelValidated(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Metrics = "full"
	_, err := StartMember(ctx(t), cfg)
	if err == nil || !strings.Contains(err.Error(), `--metrics "full": want "basic" or "extensive"`) {
		t.Errorf("StartMember with --metrics full: %v", err)
	}
}
