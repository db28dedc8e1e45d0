package compat

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/tendkv/tend/cluster"
	"github.com/tendkv/tend/cluster/clustertest"
	"github.com/tendkv/tend/internal/etcdtest"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// backend is one server under test, reached through a client.
type backend struct {
	name string
	cli  *clientv3.Client
}

func newClient(t *testing.T, endpoint string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{endpoint},
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
		// Large enough to send a request over the server's limit, so the
		// server (not the client) is the one refusing it.
		MaxCallSendMsgSize: 4 << 20,
	})
	if err != nil {
		t.Fatalf("connect to %s: %v", endpoint, err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// startEtcd runs a real one-member etcd, the oracle.
func startEtcd(t *testing.T) backend {
	t.Helper()
	return startEtcdWith(t, nil)
}

// startEtcdWith runs the oracle with its configuration changed by change
// (nil: etcd's defaults).
func startEtcdWith(t *testing.T, change func(*embed.Config)) backend {
	t.Helper()
	// Fatal and panics only: etcd's Fatal exits the process right after
	// logging, and that line is then the only clue.
	lg, err := zap.NewProduction(zap.IncreaseLevel(zap.DPanicLevel))
	if err != nil {
		t.Fatal(err)
	}
	e := etcdtest.StartT(t, etcdtest.Config{Dir: t.TempDir(), Logger: lg, Change: change})
	return backend{name: "etcd", cli: newClient(t, etcdtest.ClientAddr(e))}
}

// startTend runs a one-member tend cluster with etcd's default limits.
func startTend(t *testing.T) backend {
	t.Helper()
	return startTendWith(t, nil)
}

// startTendWith runs a one-member tend cluster with its configuration
// changed by change (nil: the defaults).
func startTendWith(t *testing.T, change func(*cluster.Config)) backend {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cfg := cluster.Config{
		Name:                     "tend",
		DataDir:                  t.TempDir(),
		ListenClientURLs:         []string{"http://127.0.0.1:0"},
		ListenPeerURLs:           []string{"http://127.0.0.1:0"},
		InitialAdvertisePeerURLs: []string{"http://127.0.0.1:0"},
		// Errors only, to stderr: raft's Fatal exits the process right
		// after logging, and that line is then the only clue.
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
	}
	if change != nil {
		change(&cfg)
	}
	m, err := cluster.StartMember(ctx, cfg)
	if err != nil {
		t.Fatalf("start tend member (cluster.StartMember): %v", err)
	}
	t.Cleanup(func() { m.Close() })
	select {
	case <-m.ReadyNotify():
	case <-m.Done():
		t.Fatalf("tend member stopped before it was ready: %v", m.Err())
	case <-ctx.Done():
		t.Fatal("tend member not ready within 20s")
	}
	u, err := url.Parse(m.ClientURLs()[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := net.SplitHostPort(u.Host); err != nil {
		t.Fatal(err)
	}
	return backend{name: "tend", cli: newClient(t, u.Host)}
}

// startTendCluster runs an n-member tend cluster in-process and returns a
// backend reached through a follower, so every write is forwarded to the
// leader and every linearizable read takes a ReadIndex round.
func startTendCluster(t *testing.T, n int) backend {
	t.Helper()
	ms := clustertest.StartN(t, n, func(cfg *cluster.Config) {
		cfg.HeartbeatInterval = 20 * time.Millisecond
		cfg.ElectionTimeout = time.Second // etcd's: the minimum lease TTL follows it
	})
	for _, m := range ms {
		if m.Leader() != m.MemberID() {
			u, err := url.Parse(m.ClientURLs()[0])
			if err != nil {
				t.Fatal(err)
			}
			return backend{name: fmt.Sprintf("tend (%d members, through a follower)", n), cli: newClient(t, u.Host)}
		}
	}
	t.Fatal("no follower found")
	return backend{}
}
