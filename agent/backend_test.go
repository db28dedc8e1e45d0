package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/tendkv/tend/cluster"
	"github.com/tendkv/tend/internal/freeport"
)

// server is a store the agent runs against in tests: an embedded real etcd
// or a tend member. It can be stopped and started again on the same address
// with the same data.
type server interface {
	URL() string
	Stop()
	Start(t testing.TB)
}

// backends are the stores every end-to-end test runs against.
var backends = []struct {
	name  string
	start func(t testing.TB) server
}{
	{"etcd", startEtcd},
	{"tend", startTend},
}

// forEachBackend runs f as a subtest against each backend.
func forEachBackend(t *testing.T, f func(t *testing.T, s server)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			f(t, b.start(t))
		})
	}
}

// etcdServer is an embedded etcd behind a proxy: Stop cuts the proxy
// first, so etcd's graceful close does not wait 5s for the agent's watch
// streams, and to the agent it is the same as a killed server.
type etcdServer struct {
	dir, client, peer string
	px                *proxy
	mu                sync.Mutex
	e                 *embed.Etcd
}

func startEtcd(t testing.TB) server {
	// Port 0 for the peer listener: a one-member etcd never dials it.
	s := &etcdServer{dir: t.TempDir(), client: freeport.URL(t), peer: "http://127.0.0.1:0"}
	s.Start(t)
	s.px = startProxy(t, s.client)
	t.Cleanup(s.Stop)
	return s
}

func (s *etcdServer) URL() string { return s.px.URL() }

func (s *etcdServer) Start(t testing.TB) {
	t.Helper()
	e := runEtcd(t, etcdConfig(s.dir, s.client, s.peer))
	s.mu.Lock()
	s.e = e
	s.mu.Unlock()
	if s.px != nil {
		s.px.setDown(false)
	}
}

// etcdConfig is the configuration of a one-member embedded etcd in dir,
// serving clients on client and its peer port on peer.
func etcdConfig(dir, client, peer string) *embed.Config {
	cfg := embed.NewConfig()
	cfg.Name = "etcd"
	cfg.Dir = dir
	cu, _ := url.Parse(client)
	pu, _ := url.Parse(peer)
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*cu}, []url.URL{*cu}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*pu}, []url.URL{*pu}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.LogLevel = "error"
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	cfg.TickMs = 10
	cfg.ElectionMs = 100
	return cfg
}

// runEtcd starts an embedded etcd and waits until it serves.
func runEtcd(t testing.TB, cfg *embed.Config) *embed.Etcd {
	t.Helper()
	var e *embed.Etcd
	var err error
	// The port may linger for a moment after a stop.
	for deadline := time.Now().Add(5 * time.Second); ; {
		e, err = embed.StartEtcd(cfg)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("start etcd: %v", err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(10 * time.Second):
		e.Close()
		t.Fatal("etcd not ready within 10s")
	}
	return e
}

func (s *etcdServer) Stop() {
	s.px.setDown(true)
	s.mu.Lock()
	e := s.e
	s.e = nil
	s.mu.Unlock()
	if e != nil {
		e.Close()
	}
}

type tendServer struct {
	dir, client, peer string
	mu                sync.Mutex
	m                 *cluster.Member
}

func startTend(t testing.TB) server {
	// The peer URL is advertised, never dialled (one member), so nothing
	// listens on it and no other program can take it first.
	s := &tendServer{dir: t.TempDir(), peer: "http://127.0.0.1:12380"}
	// The client port must stay the same across restarts (agents keep its
	// URL); the first start takes another when it was taken meanwhile.
	for attempt := 1; ; attempt++ {
		s.client = freeport.URL(t)
		m, err := s.start()
		if err == nil {
			s.setReady(t, m)
			break
		}
		if attempt == 4 || !errors.Is(err, syscall.EADDRINUSE) {
			t.Fatalf("start tend member: %v", err)
		}
	}
	t.Cleanup(s.Stop)
	return s
}

func (s *tendServer) URL() string { return s.client }

// Start starts the member again, on the same client port.
func (s *tendServer) Start(t testing.TB) {
	t.Helper()
	var m *cluster.Member
	var err error
	// The port may linger for a moment after a stop.
	for deadline := time.Now().Add(5 * time.Second); ; {
		m, err = s.start()
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("start tend member: %v", err)
	}
	s.setReady(t, m)
}

func (s *tendServer) start() (*cluster.Member, error) {
	lvl := slog.LevelError
	if os.Getenv("TEND_TEST_LOG") != "" {
		lvl = slog.LevelDebug
	}
	cfg := cluster.Config{
		Name:                     "tend",
		DataDir:                  s.dir,
		ListenClientURLs:         []string{s.client},
		ListenPeerURLs:           []string{"http://127.0.0.1:0"},
		InitialAdvertisePeerURLs: []string{s.peer},
		HeartbeatInterval:        10 * time.Millisecond,
		ElectionTimeout:          100 * time.Millisecond,
		Logger:                   slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl})),
	}
	return cluster.StartMember(context.Background(), cfg)
}

// setReady waits until m serves and makes it the server's member.
func (s *tendServer) setReady(t testing.TB, m *cluster.Member) {
	t.Helper()
	select {
	case <-m.ReadyNotify():
	case <-m.Done():
		t.Fatalf("tend member stopped before ready: %v", m.Err())
	case <-time.After(10 * time.Second):
		m.Close()
		t.Fatal("tend member not ready within 10s")
	}
	s.mu.Lock()
	s.m = m
	s.mu.Unlock()
}

func (s *tendServer) Stop() {
	s.mu.Lock()
	m := s.m
	s.m = nil
	s.mu.Unlock()
	if m != nil {
		m.Close()
	}
}

// newClient connects a clientv3 client to endpoint; Cleanup closes it.
func newClient(t testing.TB, endpoint string) *clientv3.Client {
	t.Helper()
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatalf("clientv3.New: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// proxy forwards TCP from a loopback port to a target, and can cut every
// connection and refuse new ones, to disconnect the agent from a store that
// keeps running.
type proxy struct {
	l      net.Listener
	target string
	mu     sync.Mutex
	down   bool
	conns  map[net.Conn]bool
	served int // connections let through
	wg     sync.WaitGroup
}

func startProxy(t testing.TB, targetURL string) *proxy {
	t.Helper()
	u, _ := url.Parse(targetURL)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{l: l, target: u.Host, conns: map[net.Conn]bool{}}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return // the listener was closed
			}
			p.serve(c)
		}
	}()
	t.Cleanup(func() {
		l.Close()
		p.setDown(true)
		p.wg.Wait()
	})
	return p
}

func (p *proxy) URL() string { return "http://" + p.l.Addr().String() }

func (p *proxy) serve(c net.Conn) {
	p.mu.Lock()
	if p.down {
		p.mu.Unlock()
		c.Close()
		return
	}
	up, err := net.DialTimeout("tcp", p.target, time.Second)
	if err != nil {
		p.mu.Unlock()
		c.Close()
		return
	}
	p.conns[c], p.conns[up] = true, true
	p.served++
	p.mu.Unlock()
	pipe := func(dst, src net.Conn) {
		defer p.wg.Done()
		io.Copy(dst, src)
		dst.Close()
		src.Close()
	}
	p.wg.Add(2)
	go pipe(up, c)
	go pipe(c, up)
}

// connections returns how many connections the proxy let through.
func (p *proxy) connections() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.served
}

// setDown cuts every connection and refuses new ones (true), or lets
// connections through again (false).
func (p *proxy) setDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	if down {
		for c := range p.conns {
			c.Close()
		}
		p.conns = map[net.Conn]bool{}
	}
}

var _ = fmt.Sprint
