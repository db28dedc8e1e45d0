package main

import (
	"net/url"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// startEtcd runs a real one-member etcd on loopback ports the kernel picks
// and returns its client endpoint. It stops when the test ends.
func startEtcd(tb testing.TB, dir string) (endpoint string, stop func()) {
	tb.Helper()
	cfg := embed.NewConfig()
	cfg.Dir = dir
	cfg.Name = "oracle"
	u, _ := url.Parse("http://127.0.0.1:0")
	cfg.ListenClientUrls = []url.URL{*u}
	cfg.AdvertiseClientUrls = []url.URL{*u}
	cfg.ListenPeerUrls = []url.URL{*u}
	cfg.AdvertisePeerUrls = []url.URL{*u}
	cfg.InitialCluster = cfg.Name + "=" + u.String()
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		tb.Fatalf("start embedded etcd: %v", err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(20 * time.Second):
		e.Close()
		tb.Fatal("embedded etcd not ready within 20s")
	}
	return e.Clients[0].Addr().String(), e.Close
}
