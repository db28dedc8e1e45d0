package etcdtest

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/tendkv/tend/internal/freeport"
)

// Config says how to start the member. Only Dir is required.
type Config struct {
	// Dir is the data directory.
	Dir string
	// Name is the member's name; "oracle" when empty.
	Name string
	// ClientScheme is "http" (the default) or "https".
	ClientScheme string
	// Logger receives etcd's log; nil discards it.
	Logger *zap.Logger
	// Change, when set, edits the configuration last, after the ports are
	// chosen.
	Change func(*embed.Config)
}

// attempts bounds how often Start begins again on other ports.
const attempts = 4

// Start runs the member and waits until it serves clients. The caller
// closes it.
func Start(c Config) (*embed.Etcd, error) {
	for attempt := 1; ; attempt++ {
		e, err := start(c)
		if err == nil || attempt == attempts || !portTaken(err) {
			return e, err
		}
	}
}

// StartT is Start for a test: it fails the test on error and closes the
// member when the test ends.
func StartT(t testing.TB, c Config) *embed.Etcd {
	t.Helper()
	e, err := Start(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}

// ClientAddr is the host:port the member serves clients on.
func ClientAddr(e *embed.Etcd) string { return e.Clients[0].Addr().String() }

func start(c Config) (*embed.Etcd, error) {
	cfg := embed.NewConfig()
	cfg.Dir = c.Dir
	cfg.Name = c.Name
	if cfg.Name == "" {
		cfg.Name = "oracle"
	}
	scheme := c.ClientScheme
	if scheme == "" {
		scheme = "http"
	}
	hosts, err := freeport.Addrs(1)
	if err != nil {
		return nil, err
	}
	cu := url.URL{Scheme: scheme, Host: hosts[0]}
	// The peer URL is never dialled by a one-member cluster: port 0 spares
	// a second chance of a taken port.
	pu := url.URL{Scheme: "http", Host: "127.0.0.1:0"}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{cu}, []url.URL{cu}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{pu}, []url.URL{pu}
	cfg.InitialCluster = cfg.Name + "=" + pu.String()
	lg := c.Logger
	if lg == nil {
		lg = zap.NewNop()
	}
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(lg)
	if c.Change != nil {
		c.Change(cfg)
	}
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("start embedded etcd: %w", err)
	}
	select {
	case <-e.Server.ReadyNotify():
		return e, nil
	case <-time.After(20 * time.Second):
		e.Close()
		return nil, errors.New("embedded etcd not ready within 20s")
	}
}

// portTaken reports whether err is a listen on a port someone else took.
// etcd does not always wrap the errno, so the text is checked too.
func portTaken(err error) bool {
	return errors.Is(err, syscall.EADDRINUSE) || strings.Contains(err.Error(), "address already in use")
}
