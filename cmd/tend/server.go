package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/tendkv/tend/cluster"
	"github.com/tendkv/tend/cluster/autocompact"
)

// newServerCmd is `tend server`: one cluster member, with etcd's flags.
func newServerCmd() *cobra.Command {
	def := cluster.NewConfig()
	var (
		cfg                              cluster.Config
		listenClient, advertiseClient    string
		listenPeer, initialAdvertisePeer string
		listenMetrics                    string
		compactionMode                   string
		compactionRetention              string
		heartbeatMS, electionMS          uint
		logLevel                         string
		preVote                          bool
	)
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run a member of the key-value cluster (etcd v3 API)",
		Long: `Run a member of tend's Raft key-value cluster. It serves the etcd v3 gRPC
API on --listen-client-urls, so etcdctl and every etcd client work against it.
The flags are etcd's. Stop it with SIGINT or SIGTERM.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("--log-level %q: want debug, info, warn or error", logLevel)
			}
			cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
			cfg.ListenClientURLs = splitURLs(listenClient)
			cfg.AdvertiseClientURLs = splitURLs(advertiseClient)
			cfg.ListenPeerURLs = splitURLs(listenPeer)
			cfg.InitialAdvertisePeerURLs = splitURLs(initialAdvertisePeer)
			cfg.ListenMetricsURLs = splitURLs(listenMetrics)
			if heartbeatMS == 0 {
				return fmt.Errorf("--heartbeat-interval 0: give the interval in milliseconds, such as 100")
			}
			if electionMS == 0 {
				return fmt.Errorf("--election-timeout 0: give the timeout in milliseconds, such as 1000")
			}
			cfg.DisablePreVote = !preVote
			cfg.HeartbeatInterval = time.Duration(heartbeatMS) * time.Millisecond
			cfg.ElectionTimeout = time.Duration(electionMS) * time.Millisecond
			if cfg.SnapshotCount == 0 {
				return fmt.Errorf("--snapshot-count 0: give a positive count, such as %d", cluster.DefaultSnapshotCount)
			}
			policy, err := autocompact.Parse(compactionMode, compactionRetention)
			if err != nil {
				return err
			}
			cfg.AutoCompaction = policy
			return runServer(cmd.Context(), cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Name, "name", def.Name, "human-readable name for this member")
	f.StringVar(&cfg.DataDir, "data-dir", "", "path to the data directory (default \"<name>.etcd\")")
	f.StringVar(&listenClient, "listen-client-urls", cluster.DefaultListenClientURL, "comma-separated URLs to serve client traffic on")
	f.StringVar(&advertiseClient, "advertise-client-urls", "", "comma-separated client URLs to advertise to the cluster (default: --listen-client-urls)")
	f.StringVar(&listenPeer, "listen-peer-urls", cluster.DefaultListenPeerURL, "comma-separated URLs to listen on for peer traffic")
	f.StringVar(&initialAdvertisePeer, "initial-advertise-peer-urls", cluster.DefaultListenPeerURL, "comma-separated peer URLs of this member to advertise to the cluster")
	f.StringVar(&cfg.InitialCluster, "initial-cluster", "", "initial cluster configuration, name=peer-url,... (default \"<name>=<initial-advertise-peer-url>\")")
	f.StringVar(&cfg.InitialClusterState, "initial-cluster-state", cluster.ClusterStateNew, "initial cluster state: new or existing")
	f.StringVar(&cfg.InitialClusterToken, "initial-cluster-token", def.InitialClusterToken, "initial cluster token, which makes the cluster's and members' IDs unique")
	f.UintVar(&cfg.MaxRequestBytes, "max-request-bytes", def.MaxRequestBytes, "maximum client request size in bytes the server will accept")
	f.UintVar(&cfg.MaxTxnOps, "max-txn-ops", def.MaxTxnOps, "maximum number of operations permitted in a transaction")
	f.Int64Var(&cfg.QuotaBackendBytes, "quota-backend-bytes", def.QuotaBackendBytes, "raise an alarm when the backend size exceeds this many bytes")
	f.UintVar(&heartbeatMS, "heartbeat-interval", uint(def.HeartbeatInterval/time.Millisecond), "time (in milliseconds) of a heartbeat interval")
	f.UintVar(&electionMS, "election-timeout", uint(def.ElectionTimeout/time.Millisecond), "time (in milliseconds) for an election to timeout")
	f.Uint64Var(&cfg.SnapshotCount, "snapshot-count", def.SnapshotCount, "number of committed transactions to trigger a snapshot to disk")
	f.BoolVar(&preVote, "pre-vote", true, "enable Raft's pre-vote (a cut-off member does not disrupt the cluster when it returns)")
	f.Uint64Var(&cfg.SnapshotCatchUpEntries, "snapshot-catchup-entries", def.SnapshotCatchUpEntries, "number of entries kept behind a snapshot for slow followers to catch up from the log")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	f.StringVar(&cfg.Metrics, "metrics", cluster.MetricsBasic, "set level of detail for exported metrics, specify 'extensive' to include server side grpc histogram metrics")
	f.BoolVar(&cfg.EnablePprof, "enable-pprof", false, "Enable runtime profiling data via HTTP server. Address is at client URL + \"/debug/pprof/\"")
	f.StringVar(&compactionMode, "auto-compaction-mode", string(autocompact.Periodic), "interpret 'auto-compaction-retention' one of: periodic|revision. 'periodic' for duration based retention, defaulting to hours if no time unit is provided (e.g. '5m'). 'revision' for revision number based retention.")
	f.StringVar(&compactionRetention, "auto-compaction-retention", "0", "Auto compaction retention for mvcc key value store. 0 means disable auto compaction.")
	f.StringVar(&listenMetrics, "listen-metrics-urls", "", "comma-separated URLs to serve /metrics and the health endpoints on, besides the client URLs")
	addAuthServerFlags(f, &cfg)
	addTLSServerFlags(f, &cfg)
	return cmd
}

func splitURLs(s string) []string {
	var out []string
	for _, u := range strings.Split(s, ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	return out
}

// runServer runs a member until SIGINT/SIGTERM or a fatal error.
func runServer(ctx context.Context, cfg cluster.Config) error {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	m, err := cluster.StartMember(ctx, cfg)
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped by a signal while starting
		}
		return err
	}
	ready := m.ReadyNotify()
	for {
		select {
		case <-ready:
			cfg.Logger.Info("ready to serve client requests", "client-urls", m.ClientURLs())
			ready = nil
		case <-ctx.Done():
			cfg.Logger.Info("received signal, stopping")
			return m.Close()
		case <-m.Done():
			return m.Err()
		}
	}
}
