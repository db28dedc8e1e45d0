package cluster

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"go.etcd.io/etcd/api/v3/version"
	"google.golang.org/grpc/stats"
)

// Metrics levels, etcd's --metrics values.
const (
	MetricsBasic     = "basic"
	MetricsExtensive = "extensive" // adds gRPC handling-time histograms
)

// metrics are a member's Prometheus metrics, named, typed and labelled as
// etcd's are, so that etcd's dashboards and alerts (its mixin) work on a
// tend cluster unchanged. Each member has its own registry (a process may
// run several: the playground, tests); /metrics serves it together with
// the process-wide families of the default registry (processWide).
type metrics struct {
	reg *prometheus.Registry

	grpc               *grpcprom.ServerMetrics
	grpcSent, grpcRecv prometheus.Counter
	leaderChanges      prometheus.Counter
	proposalsFailed    prometheus.Counter
	readIndexesFailed  prometheus.Counter
	backendCommit      prometheus.Histogram
	peerRTT            *prometheus.HistogramVec
	proposalsPending   atomic.Int64
	healthSuccess      prometheus.Counter
	healthFailures     prometheus.Counter
}

func newMetrics(m *Member, level string) *metrics {
	reg := prometheus.NewRegistry()
	var gopts []grpcprom.ServerMetricsOption
	if level == MetricsExtensive {
		gopts = append(gopts, grpcprom.WithServerHandlingTimeHistogram(
			grpcprom.WithHistogramBuckets(prometheus.ExponentialBuckets(0.0005, 2, 16))))
	}
	mt := &metrics{
		reg:  reg,
		grpc: grpcprom.NewServerMetrics(gopts...),
		grpcSent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "etcd_network_client_grpc_sent_bytes_total",
			Help: "The total number of bytes sent to grpc clients.",
		}),
		grpcRecv: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "etcd_network_client_grpc_received_bytes_total",
			Help: "The total number of bytes received from grpc clients.",
		}),
		leaderChanges: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "etcd_server_leader_changes_seen_total",
			Help: "The number of leader changes seen.",
		}),
		proposalsFailed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "etcd_server_proposals_failed_total",
			Help: "The total number of failed proposals seen.",
		}),
		readIndexesFailed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "etcd_server_read_indexes_failed_total",
			Help: "The total number of failed read indexes seen.",
		}),
		backendCommit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "etcd_disk_backend_commit_duration_seconds",
			Help:    "The latency distributions of commit called by backend.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		peerRTT: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "etcd_network_peer_round_trip_time_seconds",
			Help:    "Round-Trip-Time histogram between peers",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 14),
		}, []string{"To"}),
		healthSuccess: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "etcd_server_health_success",
			Help: "The total number of successful health checks",
		}),
		healthFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "etcd_server_health_failures",
			Help: "The total number of failed health checks",
		}),
	}
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	labelled := func(name, help, label, value string) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: prometheus.Labels{label: value}},
			func() float64 { return 1 })
	}
	boolean := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	reg.MustRegister(
		mt.grpc, mt.grpcSent, mt.grpcRecv, mt.leaderChanges, mt.proposalsFailed, mt.readIndexesFailed,
		mt.backendCommit, mt.peerRTT, mt.healthSuccess, mt.healthFailures,
		gauge("etcd_server_has_leader", "Whether or not a leader exists. 1 is existence, 0 is not.",
			func() float64 { return boolean(m.Leader() != 0) }),
		gauge("etcd_server_is_leader", "Whether or not this member is a leader. 1 if is, 0 otherwise.",
			func() float64 { return boolean(m.Leader() == m.id) }),
		gauge("etcd_server_is_learner", "Whether or not this member is a learner. 1 if is, 0 otherwise.",
			func() float64 { return boolean(m.IsLearner()) }),
		gauge("etcd_server_proposals_committed_total", "The total number of consensus proposals committed.",
			func() float64 { return float64(m.CommittedIndex()) }),
		gauge("etcd_server_proposals_applied_total", "The total number of consensus proposals applied.",
			func() float64 { return float64(m.AppliedIndex()) }),
		gauge("etcd_server_proposals_pending", "The current number of pending proposals to commit.",
			func() float64 { return float64(mt.proposalsPending.Load()) }),
		gauge("etcd_server_quota_backend_bytes", "Current backend storage quota size in bytes.",
			func() float64 { return float64(m.cfg.QuotaBackendBytes) }),
		labelled("etcd_server_id", "Server or member ID in hexadecimal format. 1 for 'server_id' label with current ID.",
			"server_id", fmt.Sprintf("%x", m.id)),
		labelled("etcd_server_version", "Which version is running. 1 for 'server_version' label with current version.",
			"server_version", version.Version),
		labelled("etcd_cluster_version", "Which version is running. 1 for 'cluster_version' label with current cluster version",
			"cluster_version", version.Cluster(version.Version)),
		gauge("etcd_mvcc_db_total_size_in_bytes", "Total size of the underlying database physically allocated in bytes.",
			func() float64 { return float64(m.store.Size()) }),
		gauge("etcd_mvcc_db_total_size_in_use_in_bytes", "Total size of the underlying database logically in use in bytes.",
			func() float64 { return float64(m.store.SizeInUse()) }),
		gauge("etcd_debugging_mvcc_current_revision", "The current revision of store.",
			func() float64 { return float64(m.store.Rev()) }),
		gauge("etcd_debugging_mvcc_compact_revision", "The revision of the last compaction in store.",
			func() float64 { return float64(m.store.CompactRev()) }),
		storeCounters{m},
		peerCounters{m},
	)
	return mt
}

// storeCounters exports the store's Stats.
type storeCounters struct{ m *Member }

var (
	descPuts     = prometheus.NewDesc("etcd_mvcc_put_total", "Total number of puts seen by this member.", nil, nil)
	descDeletes  = prometheus.NewDesc("etcd_mvcc_delete_total", "Total number of deletes seen by this member.", nil, nil)
	descRanges   = prometheus.NewDesc("etcd_mvcc_range_total", "Total number of ranges seen by this member.", nil, nil)
	descTxns     = prometheus.NewDesc("etcd_mvcc_txn_total", "Total number of txns seen by this member.", nil, nil)
	descPutBytes = prometheus.NewDesc("etcd_debugging_mvcc_total_put_size_in_bytes", "The total size of put kv pairs seen by this member.", nil, nil)
	descKeys     = prometheus.NewDesc("etcd_debugging_mvcc_keys_total", "Total number of keys.", nil, nil)
	descStreams  = prometheus.NewDesc("etcd_debugging_mvcc_watch_stream_total", "Total number of watch streams.", nil, nil)
	descWatchers = prometheus.NewDesc("etcd_debugging_mvcc_watcher_total", "Total number of watchers.", nil, nil)
	descSlow     = prometheus.NewDesc("etcd_debugging_mvcc_slow_watcher_total", "Total number of unsynced slow watchers.", nil, nil)
)

func (c storeCounters) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descPuts, descDeletes, descRanges, descTxns, descPutBytes, descKeys, descStreams, descWatchers, descSlow} {
		ch <- d
	}
}

func (c storeCounters) Collect(ch chan<- prometheus.Metric) {
	st := c.m.store.Stats()
	counter := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	gauge := func(d *prometheus.Desc, v int) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v))
	}
	counter(descPuts, st.Puts)
	counter(descDeletes, st.Deletes)
	counter(descRanges, st.Ranges)
	counter(descTxns, st.Txns)
	gauge(descPutBytes, int(st.PutBytes))
	gauge(descKeys, st.Keys)
	gauge(descStreams, st.WatchStreams)
	gauge(descWatchers, st.Watchers)
	gauge(descSlow, st.SlowWatchers)
}

// peerCounters exports the transport's per-peer counts.
type peerCounters struct{ m *Member }

var (
	descPeerSent          = prometheus.NewDesc("etcd_network_peer_sent_bytes_total", "The total number of bytes sent to peers.", []string{"To"}, nil)
	descPeerRecv          = prometheus.NewDesc("etcd_network_peer_received_bytes_total", "The total number of bytes received from peers.", []string{"From"}, nil)
	descPeerFailures      = prometheus.NewDesc("etcd_network_peer_sent_failures_total", "The total number of send failures from peers.", []string{"To"}, nil)
	descKnownPeers        = prometheus.NewDesc("etcd_network_known_peers", "The current number of known peers.", []string{"Local", "Remote"}, nil)
	descHeartbeatFailures = prometheus.NewDesc("etcd_server_heartbeat_send_failures_total", "The total number of leader heartbeat send failures (likely overloaded from slow disk).", nil, nil)
)

func (c peerCounters) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descPeerSent, descPeerRecv, descPeerFailures, descKnownPeers, descHeartbeatFailures} {
		ch <- d
	}
}

func (c peerCounters) Collect(ch chan<- prometheus.Metric) {
	t := c.m.transport
	self := fmt.Sprintf("%x", c.m.id)
	for id, ps := range t.PeerStats() {
		peer := fmt.Sprintf("%x", id)
		ch <- prometheus.MustNewConstMetric(descKnownPeers, prometheus.GaugeValue, 1, self, peer)
		ch <- prometheus.MustNewConstMetric(descPeerSent, prometheus.CounterValue, float64(ps.SentBytes), peer)
		ch <- prometheus.MustNewConstMetric(descPeerRecv, prometheus.CounterValue, float64(ps.ReceivedBytes), peer)
		ch <- prometheus.MustNewConstMetric(descPeerFailures, prometheus.CounterValue, float64(ps.SentFailures), peer)
	}
	ch <- prometheus.MustNewConstMetric(descHeartbeatFailures, prometheus.CounterValue, float64(c.m.lateHeartbeats.Load()))
}

// observeRTT records a peer's round-trip time, from the transport's probe.
func (mt *metrics) observeRTT(peer uint64, rtt time.Duration) {
	mt.peerRTT.WithLabelValues(fmt.Sprintf("%x", peer)).Observe(rtt.Seconds())
}

// handler serves the member's metrics and the process-wide ones.
func (mt *metrics) handler() http.Handler {
	return promhttp.HandlerFor(prometheus.Gatherers{mt.reg, processWide}, promhttp.HandlerOpts{})
}

// processWide are the families of the default registry that belong to the
// whole process: the Go runtime's, the process's, and the WAL's (etcd's wal
// package registers those there). Anything else registered there (an
// embedded etcd in a test) is not this member's.
var processWide = prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
	fams, err := prometheus.DefaultGatherer.Gather()
	out := fams[:0]
	for _, f := range fams {
		n := f.GetName()
		if strings.HasPrefix(n, "go_") || strings.HasPrefix(n, "process_") || strings.HasPrefix(n, "etcd_disk_wal_") {
			out = append(out, f)
		}
	}
	return out, err
})

// grpcBytes counts the payload bytes of every gRPC message in and out, for
// etcd_network_client_grpc_{sent,received}_bytes_total.
type grpcBytes struct{ mt *metrics }

func (g grpcBytes) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context   { return ctx }
func (g grpcBytes) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }
func (g grpcBytes) HandleConn(context.Context, stats.ConnStats)                       {}

func (g grpcBytes) HandleRPC(_ context.Context, s stats.RPCStats) {
	switch p := s.(type) {
	case *stats.InPayload:
		g.mt.grpcRecv.Add(float64(p.Length))
	case *stats.OutPayload:
		g.mt.grpcSent.Add(float64(p.Length))
	}
}

// newMetricsServer serves --listen-metrics-urls: /metrics and the health
// endpoints, as etcd's metrics listeners do.
func (m *Member) newMetricsServer() *http.Server {
	mux := http.NewServeMux()
	mux.Handle("/metrics", m.metrics.handler())
	m.handleHealth(mux)
	return &http.Server{Handler: mux, ReadHeaderTimeout: time.Minute, ErrorLog: log.New(io.Discard, "", 0)}
}
