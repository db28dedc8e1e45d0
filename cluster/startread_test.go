package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/tendkv/tend/cluster/transport"
)

// startAck is a write the cluster acknowledged: a read that starts after it
// must see its revision or a later one.
type startAck struct {
	through int
	rev     int64
	last    bool // the round's last put
}

// TestStartupReadsSeeAckedWrites starts fresh clusters and writes through
// one member as soon as it can (during the first election, or right after
// every member is ready), while every member serves linearizable reads in a
// loop from the moment it starts. Every read that starts after the write was
// acknowledged, through any member, must see it: the read-after-write a
// playground test once saw fail on a busy machine (a put through m1 at
// revision 2, then a linearizable get through m4 answering "not found at
// revision 1"). Reordered links stir the Raft messages of the reads
// (ReadIndex, heartbeats and their answers) while leaders come and go.
func TestStartupReadsSeeAckedWrites(t *testing.T) {
	for _, tc := range []struct {
		name      string
		members   int
		waitReady bool
		link      transport.Link // every link between members
		// slowLast delays every link into the last member: it learns
		// of commits late, so it lags behind the member written through.
		slowLast   time.Duration
		etcdTiming bool // the playground's: 100 ms heartbeats, 1 s elections
	}{
		{name: "3-during-election", members: 3},
		{name: "5-during-election", members: 5},
		{name: "5-after-ready", members: 5, waitReady: true},
		{name: "5-reordered-during-election", members: 5, link: transport.Link{Reorder: true}},
		// A lagging member's ReadIndex rounds are long, so reads that
		// start after the write often find a round under way there, one
		// the leader answered before the write and that must not answer
		// them; and it has not applied the write yet.
		{name: "5-lagging-after-ready", members: 5, waitReady: true, slowLast: 30 * time.Millisecond},
		{name: "5-after-ready-etcd-timing", members: 5, waitReady: true, etcdTiming: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			startupReadRound(t, tc.members, tc.waitReady, tc.link, tc.slowLast, tc.etcdTiming)
		})
	}
}

// startupReadRound runs one fresh cluster of n members (see
// TestStartupReadsSeeAckedWrites).
func startupReadRound(t *testing.T, n int, waitReady bool, link transport.Link, slowLast time.Duration, etcdTiming bool) {
	faults := transport.NewFaults()
	opt := func(cfg *Config) {
		cfg.Faults = faults
		if etcdTiming {
			cfg.HeartbeatInterval, cfg.ElectionTimeout = DefaultHeartbeatInterval, DefaultElectionTimeout
		}
		// The IDs are known before any member starts, so the links are
		// set from the first message on.
		from := memberID(cfg.InitialAdvertisePeerURLs, DefaultInitialClusterToken)
		peers := strings.Split(cfg.InitialCluster, ",")
		for i, peer := range peers {
			_, url, _ := strings.Cut(peer, "=")
			to := memberID([]string{url}, DefaultInitialClusterToken)
			l := link
			if i == len(peers)-1 {
				l.Delay += slowLast
			}
			if to != from && l != (transport.Link{}) {
				faults.Set(from, to, l)
			}
		}
	}
	var c *testCluster
	for attempt := 1; c == nil; attempt++ {
		var err error
		if c, err = tryStartTestCluster(t, n, opt); err != nil && (attempt == 3 || !errors.Is(err, syscall.EADDRINUSE)) {
			t.Fatal(err)
		}
	}
	clis := make([]*clientv3.Client, n)
	for i := range n {
		cli, err := clientv3.New(clientv3.Config{
			Endpoints:   c.member(i).ClientURLs(),
			DialTimeout: 5 * time.Second,
			Logger:      zap.NewNop(),
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cli.Close() })
		clis[i] = cli
	}
	if waitReady {
		for i := range n {
			c.waitReady(i)
		}
	}

	// Bounded: at most 30 s, a few puts, and each reader stops after a
	// few reads that started after the last put was acknowledged.
	const puts, readsAfter = 3, 3
	rctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const key = "/startup"
	var acked atomic.Pointer[startAck]
	var wg sync.WaitGroup
	var readsAfterLast atomic.Int64
	check := func(i int, a *startAck, get *clientv3.GetResponse) {
		if a.last {
			readsAfterLast.Add(1)
		}
		if len(get.Kvs) == 1 && get.Kvs[0].ModRevision >= a.rev {
			return
		}
		t.Errorf("linearizable get %s through m%d after a put through m%d acknowledged at revision %d: %v at revision %d (members: %s)",
			key, i+1, a.through+1, a.rev, get.Kvs, get.Header.Revision, describeMembers(c))
	}
	get := func(i int, timeout time.Duration) (*clientv3.GetResponse, error) {
		cctx, ccancel := context.WithTimeout(rctx, timeout)
		defer ccancel()
		return clis[i].Get(cctx, key)
	}
	// Two readers a member: reads that share a ReadIndex round too.
	const readers = 2
	for i := range readers * n {
		i := i % n
		wg.Add(1)
		go func() {
			defer wg.Done()
			for after := 0; after < readsAfter && rctx.Err() == nil; {
				// Loaded before the read starts: an ack is in the
				// read's past.
				a := acked.Load()
				resp, err := get(i, 3*time.Second)
				if err != nil {
					retryPause() // no leader yet
					continue
				}
				if a == nil {
					continue // a read before the first put
				}
				check(i, a, resp)
				if a.last {
					after++
				}
			}
		}()
	}

	// Puts through m1, m2, ... (never the last member, which may lag).
	for p := range puts {
		w := p % (n - 1)
		var a *startAck
		for attempt := 0; a == nil && rctx.Err() == nil; attempt++ {
			cctx, ccancel := context.WithTimeout(rctx, 3*time.Second)
			put, err := clis[w].Put(cctx, key, fmt.Sprintf("%d.%d", p, attempt))
			ccancel()
			if err != nil {
				// No leader yet, or the proposal was dropped: a put
				// that timed out may still apply later, at a higher
				// revision.
				retryPause()
				continue
			}
			a = &startAck{through: w, rev: put.Header.Revision, last: p == puts-1}
		}
		if a == nil {
			t.Errorf("no put through m%d acknowledged within 30 s (members: %s)", w+1, describeMembers(c))
			break
		}
		acked.Store(a)
		// The playground's step: at once, a linearizable get through
		// every other member (all together, so the lagging one is
		// asked while its rounds from before the put are under way).
		var now sync.WaitGroup
		for i := range n {
			if i == w {
				continue
			}
			now.Add(1)
			go func() {
				defer now.Done()
				// A read that fails (a leader change on a busy
				// machine) is asked again: that one starts after
				// the put too.
				resp, err := get(i, 10*time.Second)
				for err != nil && rctx.Err() == nil {
					retryPause()
					resp, err = get(i, 10*time.Second)
				}
				if err != nil {
					t.Errorf("linearizable get through m%d right after the put: %v", i+1, err)
					return
				}
				check(i, a, resp)
			}()
		}
		now.Wait()
	}
	wg.Wait()
	if got, want := readsAfterLast.Load(), int64(n-1+readers*n*readsAfter); got < want && !t.Failed() {
		t.Errorf("%d reads after the last put answered within 30 s, want %d (members: %s)", got, want, describeMembers(c))
	}
}

// describeMembers says what each member knows, for a failure message.
func describeMembers(c *testCluster) string {
	var parts []string
	for i := range c.cfgs {
		m := c.member(i)
		if m == nil {
			continue
		}
		parts = append(parts, fmt.Sprintf("m%d %x: term %d, leader %x, committed %d, applied %d, revision %d",
			i+1, m.MemberID(), m.Term(), m.Leader(), m.CommittedIndex(), m.AppliedIndex(), m.Store().Rev()))
	}
	return strings.Join(parts, "; ")
}

// retryPause keeps a call that fails at once (a proposal dropped while there
// is no leader) from spinning until the election ends.
func retryPause() { time.Sleep(5 * time.Millisecond) }
