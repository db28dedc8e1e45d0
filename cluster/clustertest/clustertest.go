package clustertest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tendkv/tend/cluster"
	"github.com/tendkv/tend/internal/freeport"
	"github.com/tendkv/tend/internal/testcert"
)

// readyTimeout bounds the wait for a member to have a leader and be caught
// up.
const readyTimeout = 20 * time.Second

// Logger is the members' log: errors only, or everything with
// TEND_TEST_LOG set.
func Logger() *slog.Logger {
	lvl := slog.LevelError
	if os.Getenv("TEND_TEST_LOG") != "" {
		lvl = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
}

// Start starts a member with cfg (a temporary DataDir and the test logger
// when unset) and waits until it is ready; the test's Cleanup closes it.
func Start(t testing.TB, cfg cluster.Config) *cluster.Member {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	if cfg.Logger == nil {
		cfg.Logger = Logger()
	}
	m, err := cluster.StartMember(context.Background(), cfg)
	if err != nil {
		t.Fatalf("start member %s: %v", cfg.Name, err)
	}
	t.Cleanup(func() { m.Close() })
	waitReady(t, m, cfg.Name)
	return m
}

func waitReady(t testing.TB, m *cluster.Member, name string) {
	t.Helper()
	select {
	case <-m.ReadyNotify():
	case <-m.Done():
		t.Fatalf("member %s stopped before it was ready: %v", name, m.Err())
	case <-time.After(readyTimeout):
		t.Fatalf("member %s not ready within %v", name, readyTimeout)
	}
}

// StartN starts a new cluster of n members named m1..mn on free loopback
// ports (clients on port 0), each config passed through opts first, and
// waits until every member is ready.
func StartN(t testing.TB, n int, opts ...func(*cluster.Config)) []*cluster.Member {
	t.Helper()
	peers := freeport.URLs(t, n)
	parts := make([]string, n)
	for i := range n {
		parts[i] = fmt.Sprintf("m%d=%s", i+1, peers[i])
	}
	ms := make([]*cluster.Member, n)
	for i := range n {
		cfg := cluster.Config{
			Name:                     fmt.Sprintf("m%d", i+1),
			DataDir:                  t.TempDir(),
			ListenClientURLs:         []string{"http://127.0.0.1:0"},
			ListenPeerURLs:           []string{peers[i]},
			InitialAdvertisePeerURLs: []string{peers[i]},
			InitialCluster:           strings.Join(parts, ","),
			Logger:                   Logger().With("test-member", i+1),
		}
		for _, o := range opts {
			o(&cfg)
		}
		m, err := cluster.StartMember(context.Background(), cfg)
		if err != nil {
			t.Fatalf("start member %s: %v", cfg.Name, err)
		}
		t.Cleanup(func() { m.Close() })
		ms[i] = m
	}
	for i, m := range ms {
		waitReady(t, m, fmt.Sprintf("m%d", i+1))
	}
	return ms
}

// StartTLS starts one member serving https:// clients with a certificate
// ca signed, and requiring client certificates ca signed.
func StartTLS(t testing.TB, ca *testcert.CA) *cluster.Member {
	t.Helper()
	server := ca.Issue(t, "member")
	return Start(t, cluster.Config{
		Name:                     "tls",
		ListenClientURLs:         []string{"https://127.0.0.1:0"},
		ListenPeerURLs:           []string{"http://127.0.0.1:0"},
		InitialAdvertisePeerURLs: []string{"http://127.0.0.1:0"},
		ClientTLS: cluster.TLSFiles{
			CertFile: server.CertFile, KeyFile: server.KeyFile, TrustedCAFile: ca.CertFile, ClientCertAuth: true,
		},
	})
}
