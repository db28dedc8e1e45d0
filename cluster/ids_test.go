package cluster

import (
	"net"
	"net/url"
	"testing"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/types"
	"go.etcd.io/etcd/server/v3/embed"
	etcdmembership "go.etcd.io/etcd/server/v3/etcdserver/api/membership"
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

// TestClusterIDsMatchEtcd derives a three-member cluster's IDs from its
// --initial-cluster and token as etcd's membership package does.
func TestClusterIDsMatchEtcd(t *testing.T) {
	const initial = "a=http://127.0.0.1:2380,b=http://127.0.0.1:2390,c=http://10.0.0.3:2380,c=http://10.0.0.3:12380"
	um, err := types.NewURLsMap(initial)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := etcdmembership.NewClusterFromURLsMap(zap.NewNop(), "tok", um)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Name: "b", InitialCluster: initial, InitialClusterToken: "tok",
		InitialAdvertisePeerURLs: []string{"http://127.0.0.1:2390"}}
	members, self, err := initialMembers(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	var ids []uint64
	for _, m := range members {
		em := ec.MemberByName(m.Name)
		if em == nil || uint64(em.ID) != m.ID {
			t.Errorf("member %s: ID %x, etcd's %v", m.Name, m.ID, em)
		}
		ids = append(ids, m.ID)
	}
	if self != uint64(ec.MemberByName("b").ID) {
		t.Errorf("self ID %x, etcd's %x", self, ec.MemberByName("b").ID)
	}
	if got, want := clusterID(ids), uint64(ec.ID()); got != want {
		t.Errorf("cluster ID %x, etcd's %x", got, want)
	}
}
