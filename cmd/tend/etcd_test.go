package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/tendkv/tend/cluster"
)

// startEtcd runs a real one-member etcd on loopback ports the kernel picks
// and returns its client endpoint. It stops when the test ends.
func startEtcd(dir string) (endpoint string, stop func(), err error) {
	return startEtcdWith(dir, "http", nil)
}

// startEtcdWith is startEtcd with a URL scheme and a change to the
// configuration, for TLS.
func startEtcdWith(dir, scheme string, change func(*embed.Config)) (endpoint string, stop func(), err error) {
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
	cu, _ := url.Parse(scheme + "://" + l.Addr().String())
	l.Close()
	cfg.ListenClientUrls = []url.URL{*cu}
	cfg.AdvertiseClientUrls = []url.URL{*cu}
	cfg.ListenPeerUrls = []url.URL{*u}
	cfg.AdvertisePeerUrls = []url.URL{*u}
	cfg.InitialCluster = cfg.Name + "=" + u.String()
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	if change != nil {
		change(cfg)
	}
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

// startTendMember runs tend's own one-member cluster in this process.
func startTendMember(dir string) (endpoint string, stop func(), err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	m, err := cluster.StartMember(ctx, cluster.Config{
		Name:                     "tend",
		DataDir:                  dir,
		ListenClientURLs:         []string{"http://127.0.0.1:0"},
		ListenPeerURLs:           []string{"http://127.0.0.1:0"},
		InitialAdvertisePeerURLs: []string{"http://127.0.0.1:0"},
		Logger:                   slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		return "", nil, fmt.Errorf("start tend member: %w", err)
	}
	select {
	case <-m.ReadyNotify():
	case <-ctx.Done():
		m.Close()
		return "", nil, fmt.Errorf("tend member not ready within 20s")
	}
	u, err := url.Parse(m.ClientURLs()[0])
	if err != nil {
		m.Close()
		return "", nil, err
	}
	return u.Host, func() { m.Close() }, nil
}
