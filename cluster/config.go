package cluster

import (
	"fmt"
	"log/slog"
	"net/url"
	"sort"
	"strings"
	"time"

	raftpb "go.etcd.io/raft/v3/raftpb"

	"github.com/tendkv/tend/cluster/autocompact"
	"github.com/tendkv/tend/cluster/transport"
)

// Defaults, as etcd's.
const (
	DefaultName                = "default"
	DefaultListenClientURL     = "http://127.0.0.1:2379"
	DefaultListenPeerURL       = "http://127.0.0.1:2380"
	DefaultInitialClusterToken = "etcd-cluster"
	DefaultMaxRequestBytes     = 1536 * 1024
	DefaultMaxTxnOps           = 128
	DefaultQuotaBackendBytes   = 2 * 1024 * 1024 * 1024
	DefaultHeartbeatInterval   = 100 * time.Millisecond
	DefaultElectionTimeout     = 1000 * time.Millisecond
	DefaultSnapshotCount       = 10000
	DefaultSnapshotCatchUp     = 5000

	ClusterStateNew      = "new"
	ClusterStateExisting = "existing"
)

// Config configures one member. Field names follow etcd's flags; a zero
// field takes etcd's default (see NewConfig).
type Config struct {
	Name    string
	DataDir string // "<Name>.etcd" when empty

	ListenClientURLs    []string
	AdvertiseClientURLs []string // ListenClientURLs when empty

	ListenPeerURLs           []string
	InitialAdvertisePeerURLs []string
	// InitialCluster is "name=peer-url,..."; "<Name>=<first advertised peer
	// URL>" when empty.
	InitialCluster      string
	InitialClusterState string // "new" or "existing"
	InitialClusterToken string

	MaxRequestBytes   uint
	MaxTxnOps         uint
	QuotaBackendBytes int64
	HeartbeatInterval time.Duration
	ElectionTimeout   time.Duration
	// SnapshotCount is how many applied entries trigger a snapshot and WAL
	// compaction.
	SnapshotCount uint64
	// SnapshotCatchUpEntries is how many entries stay in Raft's memory
	// behind a snapshot, so a slightly slow follower catches up from the
	// log instead of a snapshot.
	SnapshotCatchUpEntries uint64
	// DisablePreVote turns Raft's pre-vote off (etcd's --pre-vote=false):
	// a member cut off from the others then raises its term at every
	// election timeout and, once back, forces an election. For showing
	// what pre-vote prevents; keep it on in production.
	DisablePreVote bool

	// AuthToken is --auth-token: "simple", or "jwt,sign-method=ALG,
	// priv-key=FILE,pub-key=FILE,ttl=DUR". AuthTokenTTL is
	// --auth-token-ttl (simple tokens), BcryptCost --bcrypt-cost. Zero
	// values take etcd's defaults.
	AuthToken    string
	AuthTokenTTL time.Duration
	BcryptCost   int

	// ClientTLS is TLS for the https:// client URLs (--cert-file,
	// --key-file, --trusted-ca-file, --client-cert-auth, --auto-tls);
	// PeerTLS for the https:// peer URLs (the same flags with "peer-").
	ClientTLS TLSFiles
	PeerTLS   TLSFiles

	Logger *slog.Logger

	// Metrics is etcd's --metrics: MetricsBasic (the default) or
	// MetricsExtensive, which adds gRPC handling-time histograms.
	Metrics string
	// ListenMetricsURLs are extra listeners (etcd's --listen-metrics-urls)
	// that serve /metrics and the health endpoints only, over http:// or
	// https:// (with the client certificate).
	ListenMetricsURLs []string
	// EnablePprof is etcd's --enable-pprof: the client URLs also serve Go's
	// profiles under /debug/pprof/.
	EnablePprof bool

	// AutoCompaction is etcd's --auto-compaction-mode and
	// --auto-compaction-retention (see autocompact.Parse); the zero value
	// compacts nothing, as etcd's default does. Only the leader compacts.
	AutoCompaction autocompact.Policy

	// Faults, when set, injects faults into what this member sends to its
	// peers (tests and the playground share one between members).
	Faults *transport.Faults
	// ObserveMessage, when set, sees every Raft message this member sends;
	// it must not block.
	ObserveMessage func(m *raftpb.Message)
}

// NewConfig returns a Config with every default filled in.
func NewConfig() Config {
	c := Config{}
	c.setDefaults()
	return c
}

func (c *Config) setDefaults() {
	if c.Name == "" {
		c.Name = DefaultName
	}
	if c.DataDir == "" {
		c.DataDir = c.Name + ".etcd"
	}
	if len(c.ListenClientURLs) == 0 {
		c.ListenClientURLs = []string{DefaultListenClientURL}
	}
	if len(c.AdvertiseClientURLs) == 0 {
		c.AdvertiseClientURLs = c.ListenClientURLs
	}
	if len(c.ListenPeerURLs) == 0 {
		c.ListenPeerURLs = []string{DefaultListenPeerURL}
	}
	if len(c.InitialAdvertisePeerURLs) == 0 {
		c.InitialAdvertisePeerURLs = []string{DefaultListenPeerURL}
	}
	if c.InitialCluster == "" {
		c.InitialCluster = c.Name + "=" + c.InitialAdvertisePeerURLs[0]
	}
	if c.InitialClusterState == "" {
		c.InitialClusterState = ClusterStateNew
	}
	if c.InitialClusterToken == "" {
		c.InitialClusterToken = DefaultInitialClusterToken
	}
	if c.MaxRequestBytes == 0 {
		c.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if c.Metrics == "" {
		c.Metrics = MetricsBasic
	}
	if c.MaxTxnOps == 0 {
		c.MaxTxnOps = DefaultMaxTxnOps
	}
	if c.QuotaBackendBytes == 0 {
		c.QuotaBackendBytes = DefaultQuotaBackendBytes
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if c.ElectionTimeout == 0 {
		c.ElectionTimeout = DefaultElectionTimeout
	}
	if c.SnapshotCount == 0 {
		c.SnapshotCount = DefaultSnapshotCount
	}
	if c.SnapshotCatchUpEntries == 0 {
		c.SnapshotCatchUpEntries = DefaultSnapshotCatchUp
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// validate checks the filled Config; each error names the setting (by its
// flag name) and the fix.
func (c *Config) validate() error {
	for _, l := range []struct {
		flag string
		urls []string
	}{
		{"listen-client-urls", c.ListenClientURLs},
		{"advertise-client-urls", c.AdvertiseClientURLs},
		{"listen-peer-urls", c.ListenPeerURLs},
		{"initial-advertise-peer-urls", c.InitialAdvertisePeerURLs},
		{"listen-metrics-urls", c.ListenMetricsURLs},
	} {
		for _, u := range l.urls {
			if err := checkURL(u); err != nil {
				return fmt.Errorf("--%s %q: %w", l.flag, u, err)
			}
		}
	}
	if c.Metrics != MetricsBasic && c.Metrics != MetricsExtensive {
		return fmt.Errorf("--metrics %q: want %q or %q", c.Metrics, MetricsBasic, MetricsExtensive)
	}
	switch c.InitialClusterState {
	case ClusterStateNew, ClusterStateExisting:
	default:
		return fmt.Errorf("--initial-cluster-state %q: want %q or %q", c.InitialClusterState, ClusterStateNew, ClusterStateExisting)
	}
	if c.HeartbeatInterval <= 0 {
		return fmt.Errorf("--heartbeat-interval %v: must be positive", c.HeartbeatInterval)
	}
	if c.ElectionTimeout < 5*c.HeartbeatInterval {
		return fmt.Errorf("--election-timeout %v: must be at least 5 times --heartbeat-interval (%v): raise it to %v or more", c.ElectionTimeout, c.HeartbeatInterval, 5*c.HeartbeatInterval)
	}
	if c.QuotaBackendBytes < 0 {
		return fmt.Errorf("--quota-backend-bytes %d: must not be negative", c.QuotaBackendBytes)
	}
	initial, err := parseInitialCluster(c.InitialCluster)
	if err != nil {
		return err
	}
	return c.validateTLS(initial)
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("not a URL: want scheme://host:port such as http://127.0.0.1:2379")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("want an http:// or https:// URL such as http://127.0.0.1:2379")
	}
	if u.Host == "" {
		return fmt.Errorf("want host:port, as in %s://127.0.0.1:2379", u.Scheme)
	}
	if u.Path != "" && u.Path != "/" {
		return fmt.Errorf("a URL must not have a path (%q)", u.Path)
	}
	return nil
}

// parseInitialCluster parses "name=url,name=url2,..." into each name's peer
// URLs, sorted.
func parseInitialCluster(s string) (map[string][]string, error) {
	out := map[string][]string{}
	for _, part := range strings.Split(s, ",") {
		name, u, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || name == "" || u == "" {
			return nil, fmt.Errorf("--initial-cluster %q: entry %q: want name=http://host:port", s, part)
		}
		if err := checkURL(u); err != nil {
			return nil, fmt.Errorf("--initial-cluster %q: entry %q: %w", s, part, err)
		}
		out[name] = append(out[name], u)
	}
	for _, urls := range out {
		sort.Strings(urls)
	}
	return out, nil
}
