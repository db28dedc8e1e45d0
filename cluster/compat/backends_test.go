package compat

import (
	"context"
	"log/slog"
	"net"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/tendkv/tend/cluster"
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
	cfg := embed.NewConfig()
	cfg.Dir = t.TempDir()
	cfg.Name = "oracle"
	u, _ := url.Parse("http://127.0.0.1:0")
	cfg.ListenClientUrls = []url.URL{*u}
	cfg.AdvertiseClientUrls = []url.URL{*u}
	cfg.ListenPeerUrls = []url.URL{*u}
	cfg.AdvertisePeerUrls = []url.URL{*u}
	cfg.InitialCluster = cfg.Name + "=" + u.String()
	// Fatal and panics only: etcd's Fatal exits the process right after
	// logging, and that line is then the only clue.
	lg, err := zap.NewProduction(zap.IncreaseLevel(zap.DPanicLevel))
	if err != nil {
		t.Fatal(err)
	}
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(lg)
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		t.Fatalf("start embedded etcd: %v", err)
	}
	t.Cleanup(e.Close)
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(20 * time.Second):
		t.Fatal("embedded etcd not ready within 20s")
	}
	return backend{name: "etcd", cli: newClient(t, e.Clients[0].Addr().String())}
}

// startTend runs a one-member tend cluster with etcd's default limits.
func startTend(t *testing.T) backend {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	m, err := cluster.StartMember(ctx, cluster.Config{
		Name:                     "tend",
		DataDir:                  t.TempDir(),
		ListenClientURLs:         []string{"http://127.0.0.1:0"},
		ListenPeerURLs:           []string{"http://127.0.0.1:0"},
		InitialAdvertisePeerURLs: []string{"http://127.0.0.1:0"},
		// Errors only, to stderr: raft's Fatal exits the process right
		// after logging, and that line is then the only clue.
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
	})
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
