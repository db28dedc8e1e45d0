package bench

import (
	"fmt"
	"net"
	"net/url"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// startEtcd runs a real one-member etcd on loopback ports the kernel picks
// and returns its client endpoint. It stops when the test ends.
func startEtcd(dir string) (endpoint string, stop func(), err error) {
	cfg := embed.NewConfig()
	cfg.Dir = dir
	cfg.Name = "oracle"
	u, _ := url.Parse("http://127.0.0.1:0")
	// The client URL is advertised (member list, endpoint --cluster), so it
	// needs its real port: take one the kernel picks and hand it over.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("pick a client port: %w", err)
	}
	cu, _ := url.Parse("http://" + l.Addr().String())
	l.Close()
	cfg.ListenClientUrls = []url.URL{*cu}
	cfg.AdvertiseClientUrls = []url.URL{*cu}
	cfg.ListenPeerUrls = []url.URL{*u}
	cfg.AdvertisePeerUrls = []url.URL{*u}
	cfg.InitialCluster = cfg.Name + "=" + u.String()
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return "", nil, fmt.Errorf("start embedded etcd: %w", err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(20 * time.Second):
		e.Close()
		return "", nil, fmt.Errorf("embedded etcd not ready within 20s")
	}
	return e.Clients[0].Addr().String(), e.Close, nil
}
