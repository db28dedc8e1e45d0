package cluster

import (
	"net"
	"net/url"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

func loopbackURL(t *testing.T) url.URL {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return url.URL{Scheme: "http", Host: l.Addr().String()}
}

// TestIDsMatchEtcd starts a real etcd and a tend member with the same
// name, peer URL and cluster token: both derive the same member and
// cluster IDs.
func TestIDsMatchEtcd(t *testing.T) {
	peer, clientURL := loopbackURL(t), loopbackURL(t)
	ecfg := embed.NewConfig()
	ecfg.Name = "m1"
	ecfg.Dir = t.TempDir()
	ecfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	ecfg.ListenPeerUrls, ecfg.AdvertisePeerUrls = []url.URL{peer}, []url.URL{peer}
	ecfg.ListenClientUrls, ecfg.AdvertiseClientUrls = []url.URL{clientURL}, []url.URL{clientURL}
	ecfg.InitialCluster = "m1=" + peer.String()
	ecfg.InitialClusterToken = "tok"
	e, err := embed.StartEtcd(ecfg)
	if err != nil {
		t.Fatalf("start etcd: %v", err)
	}
	defer e.Close()
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(10 * time.Second):
		t.Fatal("etcd not ready within 10s")
	}

	cfg := testConfig(t, t.TempDir())
	cfg.InitialAdvertisePeerURLs = []string{peer.String()}
	cfg.InitialClusterToken = "tok"
	m := start(t, cfg)
	if got, want := m.MemberID(), uint64(e.Server.MemberID()); got != want {
		t.Errorf("member ID = %x, etcd's = %x", got, want)
	}
	if got, want := m.ClusterID(), uint64(e.Server.Cluster().ID()); got != want {
		t.Errorf("cluster ID = %x, etcd's = %x", got, want)
	}
}
