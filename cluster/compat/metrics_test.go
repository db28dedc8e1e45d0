package compat

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/tendkv/tend/internal/freeport"
	"github.com/tendkv/tend/internal/scrape"
	"github.com/tendkv/tend/internal/testenv"
)

// mixinMetrics are the metrics etcd's own monitoring mixin (its Prometheus
// alerts and Grafana dashboard, etcd/contrib/mixin) reads. A tend cluster
// must export each as etcd does, so that mixin works on it unchanged.
var mixinMetrics = []string{
	"etcd_server_has_leader",
	"etcd_server_leader_changes_seen_total",
	"etcd_server_proposals_failed_total",
	"etcd_server_proposals_pending",
	"etcd_server_proposals_committed_total",
	"etcd_server_proposals_applied_total",
	"etcd_server_quota_backend_bytes",
	"etcd_mvcc_db_total_size_in_bytes",
	"etcd_mvcc_db_total_size_in_use_in_bytes",
	"etcd_disk_wal_fsync_duration_seconds",
	"etcd_disk_backend_commit_duration_seconds",
	"etcd_network_client_grpc_sent_bytes_total",
	"etcd_network_client_grpc_received_bytes_total",
	"etcd_network_peer_sent_bytes_total",        // peers only: TestPeerMetrics
	"etcd_network_peer_received_bytes_total",    // peers only
	"etcd_network_peer_sent_failures_total",     // peers only
	"etcd_network_peer_round_trip_time_seconds", // peers only
	"grpc_server_started_total",
	"grpc_server_handled_total",
	"grpc_server_handling_seconds", // with --metrics extensive
	"process_resident_memory_bytes",
}

// peerOnly are the mixin's metrics etcd exports only once it has peers.
var peerOnly = []string{
	"etcd_network_peer_sent_bytes_total",
	"etcd_network_peer_received_bytes_total",
	"etcd_network_peer_sent_failures_total",
	"etcd_network_peer_round_trip_time_seconds",
}

// TestMetricsAgainstEtcd runs a real etcd and `tend server`, both with
// --metrics extensive, does the same work on each, and compares /metrics:
// every metric of etcd's mixin, and every etcd_* metric tend exports, must
// have etcd's type and labels; counts of the same work must agree.
func TestMetricsAgainstEtcd(t *testing.T) {
	t.Parallel()
	etcd, _ := testenv.EtcdBinaries(t)
	tend := buildTend(t)
	// Scraped on --listen-metrics-urls, a flag both take.
	metricsAddrs := freeport.URLs(t, 2)
	servers := []server{
		startServer(t, "oracle", etcd, "--metrics", "extensive", "--listen-metrics-urls", metricsAddrs[0]),
		startServer(t, "tendmember", tend, "server", "--metrics", "extensive", "--listen-metrics-urls", metricsAddrs[1]),
	}
	var scraped []map[string]*dto.MetricFamily
	for i, s := range servers {
		cli, err := clientv3.New(clientv3.Config{Endpoints: []string{s.endpoint}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		for i := range 5 {
			if _, err := cli.Put(ctx, fmt.Sprintf("/m/%d", i), "v"); err != nil {
				t.Fatal(err)
			}
		}
		for range 3 {
			if _, err := cli.Get(ctx, "/m/", clientv3.WithPrefix()); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := cli.Delete(ctx, "/m/0"); err != nil {
			t.Fatal(err)
		}
		if _, err := cli.Delete(ctx, "/none"); err != nil {
			t.Fatal(err)
		}
		cancel()
		cli.Close()
		scraped = append(scraped, scrape.Families(t, metricsAddrs[i]+"/metrics"))
	}
	want, got := scraped[0], scraped[1]

	for _, name := range mixinMetrics {
		w, g := want[name], got[name]
		switch {
		case w == nil && slices.Contains(peerOnly, name):
		case w == nil:
			t.Errorf("%s: etcd does not export it (the list is out of date)", name)
		case g == nil:
			t.Errorf("%s: not exported (etcd: %s)", name, scrape.Shape(w))
		}
	}
	for name, g := range got {
		if !strings.HasPrefix(name, "etcd_") && !strings.HasPrefix(name, "grpc_") {
			continue
		}
		w := want[name]
		if w == nil {
			t.Errorf("%s: exported by tend, not by etcd", name)
			continue
		}
		if scrape.Shape(w) != scrape.Shape(g) {
			t.Errorf("%s: %s, etcd has %s", name, scrape.Shape(g), scrape.Shape(w))
		}
	}

	// The same work counts the same.
	for _, c := range []struct {
		name   string
		labels map[string]string
	}{
		{"etcd_mvcc_put_total", nil},
		{"etcd_mvcc_delete_total", nil},
		{"etcd_debugging_mvcc_keys_total", nil},
		{"etcd_debugging_mvcc_current_revision", nil},
		{"etcd_server_has_leader", nil},
		{"etcd_server_is_leader", nil},
		{"grpc_server_handled_total", map[string]string{"grpc_method": "Put", "grpc_code": "OK"}},
		{"grpc_server_handled_total", map[string]string{"grpc_method": "DeleteRange", "grpc_code": "OK"}},
		{"grpc_server_started_total", map[string]string{"grpc_method": "Range"}},
	} {
		w, g := want[c.name], got[c.name]
		if w == nil || g == nil {
			t.Errorf("%s: etcd %v, tend %v", c.name, w != nil, g != nil)
			continue
		}
		if wv, gv := scrape.Value(w, c.labels), scrape.Value(g, c.labels); wv != gv {
			t.Errorf("%s%v = %v, etcd %v", c.name, c.labels, gv, wv)
		}
	}
	if v := scrape.Value(got["etcd_mvcc_range_total"], nil); v < 3 {
		t.Errorf("etcd_mvcc_range_total = %v after 3 gets", v)
	}
}
