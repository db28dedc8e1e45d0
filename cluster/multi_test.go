package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/tendkv/tend/cluster/transport"
	"github.com/tendkv/tend/internal/freeport"
)

// testCluster is n in-process members on loopback, sharing one fault seam.
type testCluster struct {
	t       testing.TB
	faults  *transport.Faults
	cfgs    []Config
	mu      sync.Mutex
	members []*Member // nil while a member is down
}

// Multi-member timing: slower than one member's, so that a loaded machine
// (two cores, race detector) does not see spurious elections.
const (
	multiHeartbeat = 20 * time.Millisecond
	multiElection  = 200 * time.Millisecond
)

func testLogger() *slog.Logger {
	lvl := slog.LevelError
	if os.Getenv("TEND_TEST_LOG") != "" {
		lvl = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
}

// newTestCluster starts n members and waits until every one is ready.
func newTestCluster(t testing.TB, n int, opts ...func(*Config)) *testCluster {
	t.Helper()
	c := startTestCluster(t, n, opts...)
	for i := range n {
		c.waitReady(i)
	}
	return c
}

// startTestCluster starts n members of a new cluster without waiting for
// them: they may still be electing their first leader. When a reserved
// peer port was taken before its member listened, it starts again on
// others (up to three tries).
func startTestCluster(t testing.TB, n int, opts ...func(*Config)) *testCluster {
	t.Helper()
	for attempt := 1; ; attempt++ {
		c, err := tryStartTestCluster(t, n, opts...)
		if err == nil {
			return c
		}
		if attempt == 3 || !errors.Is(err, syscall.EADDRINUSE) {
			t.Fatal(err)
		}
	}
}

// tryStartTestCluster is startTestCluster that returns why a member did not
// start, having closed those that did. A port freeport found free may be
// taken before its member listens (by another program, or as the local port
// of a connection the members already started open to their peers): then
// the error is EADDRINUSE, and the caller may start again on other ports.
func tryStartTestCluster(t testing.TB, n int, opts ...func(*Config)) (*testCluster, error) {
	t.Helper()
	c := &testCluster{t: t, faults: transport.NewFaults()}
	var parts []string
	peers := freeport.URLs(t, n)
	for i := range n {
		parts = append(parts, fmt.Sprintf("m%d=%s", i+1, peers[i]))
	}
	for i := range n {
		cfg := Config{
			Name:                     fmt.Sprintf("m%d", i+1),
			DataDir:                  t.TempDir(),
			ListenClientURLs:         []string{"http://127.0.0.1:0"},
			ListenPeerURLs:           []string{peers[i]},
			InitialAdvertisePeerURLs: []string{peers[i]},
			InitialCluster:           strings.Join(parts, ","),
			HeartbeatInterval:        multiHeartbeat,
			ElectionTimeout:          multiElection,
			Faults:                   c.faults,
			Logger:                   testLogger().With("test-member", i+1),
		}
		for _, o := range opts {
			o(&cfg)
		}
		c.cfgs = append(c.cfgs, cfg)
	}
	c.members = make([]*Member, n)
	for i := range n {
		if _, err := c.tryStart(i); err != nil {
			c.closeAll()
			return nil, err
		}
	}
	t.Cleanup(c.closeAll)
	return c, nil
}

func (c *testCluster) closeAll() {
	c.mu.Lock()
	ms := slices.Clone(c.members)
	c.mu.Unlock()
	var wg sync.WaitGroup
	for _, m := range ms {
		if m != nil {
			wg.Add(1)
			go func() { defer wg.Done(); m.Close() }()
		}
	}
	wg.Wait()
}

// start starts member i from its data dir (without waiting for it).
func (c *testCluster) start(i int) *Member {
	c.t.Helper()
	m, err := c.tryStart(i)
	if err != nil {
		c.t.Fatal(err)
	}
	return m
}

// tryStart is start that returns the error instead.
func (c *testCluster) tryStart(i int) (*Member, error) {
	m, err := StartMember(context.Background(), c.cfgs[i])
	if err != nil {
		return nil, fmt.Errorf("start member %d: %w", i+1, err)
	}
	// A restart listens where the member first did, so clients bound to
	// it find it again.
	c.cfgs[i].ListenClientURLs = m.ClientURLs()
	c.mu.Lock()
	c.members[i] = m
	c.mu.Unlock()
	return m, nil
}

func (c *testCluster) waitReady(i int) {
	c.t.Helper()
	m := c.member(i)
	select {
	case <-m.ReadyNotify():
	case <-m.Done():
		c.t.Fatalf("member %d stopped before ready: %v", i+1, m.Err())
	case <-time.After(20 * time.Second):
		c.t.Fatalf("member %d not ready within 20s", i+1)
	}
}

// stop closes member i (a clean stop; kill -9 is the process tests').
func (c *testCluster) stop(i int) {
	c.t.Helper()
	m := c.member(i)
	if err := m.Close(); err != nil {
		c.t.Fatalf("close member %d: %v", i+1, err)
	}
	c.mu.Lock()
	c.members[i] = nil
	c.mu.Unlock()
}

func (c *testCluster) member(i int) *Member {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.members[i]
}

// running lists the indexes of the members that are up.
func (c *testCluster) running() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []int
	for i, m := range c.members {
		if m != nil {
			out = append(out, i)
		}
	}
	return out
}

func (c *testCluster) ids() []uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []uint64
	for _, m := range c.members {
		if m != nil {
			out = append(out, m.MemberID())
		}
	}
	return out
}

// index returns the index of the member with id.
func (c *testCluster) index(id uint64) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, m := range c.members {
		if m != nil && m.MemberID() == id {
			return i
		}
	}
	return -1
}

// waitLeader waits until every member of among (all running when empty)
// agrees on one leader that is among them too, and returns its index.
func (c *testCluster) waitLeader(among ...int) int {
	c.t.Helper()
	if len(among) == 0 {
		among = c.running()
	}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		lead := c.member(among[0]).Leader()
		agreed := lead != 0
		for _, i := range among[1:] {
			if c.member(i).Leader() != lead {
				agreed = false
			}
		}
		if li := c.index(lead); agreed && slices.Contains(among, li) && c.member(li).Leader() == lead {
			return li
		}
		time.Sleep(5 * time.Millisecond)
	}
	c.t.Fatalf("members %v agree on no leader within 20s", among)
	return -1
}

// client connects to member i only.
func (c *testCluster) client(i int) *clientv3.Client {
	c.t.Helper()
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   c.member(i).ClientURLs(),
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { cli.Close() })
	return cli
}

// waitConverged waits until every running member has applied as far as
// any of them knows to be committed.
func (c *testCluster) waitConverged() {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		// The highest commit index any member knows: a member that was
		// cut off knows an old one.
		run := c.running()
		var want uint64
		for _, i := range run {
			want = max(want, c.member(i).CommittedIndex())
		}
		ok := true
		for _, i := range run {
			m := c.member(i)
			if m.AppliedIndex() < want || m.CommittedIndex() < want {
				ok = false
			}
		}
		if ok {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	c.t.Fatal("members did not converge within 20s")
}
