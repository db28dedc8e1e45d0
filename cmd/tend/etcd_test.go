package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"time"

	"go.etcd.io/etcd/server/v3/embed"

	"github.com/tendkv/tend/cluster"
	"github.com/tendkv/tend/internal/etcdtest"
)

// startEtcd runs a real one-member etcd on loopback ports the kernel picks
// and returns its client endpoint.
func startEtcd(dir string) (endpoint string, stop func(), err error) {
	return startEtcdWith(dir, "http", nil)
}

// startEtcdWith is startEtcd with a URL scheme and a change to the
// configuration, for TLS.
func startEtcdWith(dir, scheme string, change func(*embed.Config)) (endpoint string, stop func(), err error) {
	e, err := etcdtest.Start(etcdtest.Config{Dir: dir, ClientScheme: scheme, Change: change})
	if err != nil {
		return "", nil, err
	}
	return etcdtest.ClientAddr(e), e.Close, nil
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
