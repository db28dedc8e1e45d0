package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/tendkv/tend/cluster/transport"
)

// writer puts keys through a client that knows every member, until stopped
// or a bound is reached, and remembers which writes were acknowledged.
type writer struct {
	mu    sync.Mutex
	acked map[string]string // guarded by mu
	tried int               // guarded by mu
	stop  context.CancelFunc
	done  chan struct{}
}

// startWriter writes /w/<n> = v<n> through endpoints, at most max writes.
func startWriter(t *testing.T, endpoints []string, max int) *writer {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	w := &writer{acked: map[string]string{}, stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		defer cli.Close()
		for i := 0; i < max && ctx.Err() == nil; i++ {
			k, v := fmt.Sprintf("/w/%05d", i), fmt.Sprintf("v%d", i)
			w.mu.Lock()
			w.tried++
			w.mu.Unlock()
			pctx, pcancel := context.WithTimeout(ctx, 500*time.Millisecond)
			_, err := cli.Put(pctx, k, v)
			pcancel()
			if err == nil {
				w.mu.Lock()
				w.acked[k] = v
				w.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { w.stop(); <-w.done })
	return w
}

// waitAcked waits until at least n writes were acknowledged.
func (w *writer) waitAcked(t *testing.T, n int) {
	t.Helper()
	eventually(t, 30*time.Second, fmt.Sprintf("%d acknowledged writes", n), func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return len(w.acked) >= n
	})
}

// finish stops the writer and returns what was acknowledged.
func (w *writer) finish() map[string]string {
	w.stop()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.acked
}

// endpoints lists the client URLs of the running members.
func (c *testCluster) endpoints() []string {
	var out []string
	for _, i := range c.running() {
		out = append(out, c.member(i).ClientURLs()...)
	}
	return out
}

// checkAcked checks every running member holds every acknowledged write,
// and that all members hold the same keyspace.
func (c *testCluster) checkAcked(acked map[string]string) {
	c.t.Helper()
	if len(acked) == 0 {
		c.t.Fatal("no write was acknowledged")
	}
	// One linearizable write through the cluster, then every member must
	// have applied it.
	if _, err := c.client(c.waitLeader()).Put(ctx(c.t), "/sync", "x"); err != nil {
		c.t.Fatal(err)
	}
	c.waitConverged()
	var hashes []uint32
	var rev int64
	for _, i := range c.running() {
		cli := c.client(i)
		r, err := cli.Get(ctx(c.t), "/w/", clientv3.WithPrefix(), clientv3.WithSerializable())
		if err != nil {
			c.t.Fatal(err)
		}
		got := map[string]string{}
		for _, kv := range r.Kvs {
			got[string(kv.Key)] = string(kv.Value)
		}
		for k, v := range acked {
			if got[k] != v {
				c.t.Fatalf("member %d: acknowledged %s=%s reads %q", i+1, k, v, got[k])
			}
		}
		if rev == 0 {
			rev = r.Header.Revision
		}
		h, err := cli.HashKV(ctx(c.t), c.member(i).ClientURLs()[0], rev)
		if err != nil {
			c.t.Fatal(err)
		}
		hashes = append(hashes, h.Hash)
	}
	for _, h := range hashes[1:] {
		if h != hashes[0] {
			c.t.Fatalf("members' HashKV at revision %d differ: %x", rev, hashes)
		}
	}
}

// TestLeaderLoss stops the leader while a client writes: the others elect
// a new leader, writes go on, and the old leader, restarted from its data
// dir, catches up with everything acknowledged.
func TestLeaderLoss(t *testing.T) {
	c := newTestCluster(t, 3)
	lead := c.waitLeader()
	w := startWriter(t, c.endpoints(), 400)
	w.waitAcked(t, 50)
	oldTerm := c.member(lead).Term()
	c.stop(lead)
	newLead := c.waitLeader()
	if newLead == lead || c.member(newLead).Term() <= oldTerm {
		t.Fatalf("leader after loss: member %d at term %d (old leader %d at term %d)", newLead+1, c.member(newLead).Term(), lead+1, oldTerm)
	}
	n := len(w.finish())
	w2 := startWriter(t, c.endpoints(), 100)
	w2.waitAcked(t, 20)
	c.start(lead)
	c.waitReady(lead)
	acked := w.finish()
	for k, v := range w2.finish() {
		acked[k] = v
	}
	if len(acked) < n {
		t.Fatalf("lost writes: %d acked, now %d", n, len(acked))
	}
	c.checkAcked(acked)
}

// TestFollowerLoss stops a follower; the other two keep serving; the
// follower comes back and catches up — from a snapshot, as the leader
// compacted its log meanwhile.
func TestFollowerLoss(t *testing.T) {
	c := newTestCluster(t, 3, func(cfg *Config) {
		cfg.SnapshotCount = 50
		cfg.SnapshotCatchUpEntries = 10
	})
	lead := c.waitLeader()
	f := (lead + 1) % 3
	c.stop(f)
	w := startWriter(t, c.endpoints(), 300)
	w.waitAcked(t, 300)
	acked := w.finish()
	// The leader's log no longer reaches back to what the follower holds.
	eventually(t, 20*time.Second, "leader compacts its log", func() bool {
		first, _ := c.member(lead).raftStorage.FirstIndex()
		return first > 100
	})
	c.start(f)
	c.waitReady(f)
	c.checkAcked(acked)
	if c.member(f).snapshotsInstalled.Load() == 0 {
		t.Fatal("restarted follower caught up without a snapshot")
	}
}

// TestPartitions isolates the leader (a minority): the majority elects a
// new leader and takes writes, the old leader takes none; after healing
// every member holds the majority's writes. Then a majority partition (no
// group has a quorum) stops all writes until it heals.
func TestPartitions(t *testing.T) {
	c := newTestCluster(t, 3)
	lead := c.waitLeader()
	ids := c.ids()
	c.faults.Isolate(c.member(lead).MemberID(), ids)
	rest := []int{(lead + 1) % 3, (lead + 2) % 3}
	newLead := c.waitLeader(rest...)
	if _, err := c.client(newLead).Put(ctx(t), "/majority", "yes"); err != nil {
		t.Fatalf("put in the majority: %v", err)
	}
	short, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if _, err := c.client(lead).Put(short, "/minority", "no"); err == nil {
		t.Fatal("the isolated old leader acknowledged a write")
	}
	short2, cancel2 := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel2()
	if _, err := c.client(lead).Get(short2, "/majority"); err == nil {
		t.Fatal("the isolated old leader answered a linearizable read")
	}
	c.faults.Heal()
	c.waitLeader()
	c.waitConverged()
	for i := range 3 {
		r, err := c.client(i).Get(ctx(t), "/", clientv3.WithPrefix(), clientv3.WithSerializable())
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Kvs) != 1 || string(r.Kvs[0].Key) != "/majority" {
			t.Fatalf("member %d holds %v, want only /majority", i+1, r.Kvs)
		}
	}

	// Every member alone: no quorum anywhere.
	for _, id := range ids {
		c.faults.Isolate(id, ids)
	}
	short3, cancel3 := context.WithTimeout(context.Background(), 3*multiElection)
	defer cancel3()
	if _, err := c.client(0).Put(short3, "/nobody", "x"); err == nil {
		t.Fatal("a write was acknowledged with no quorum")
	}
	c.faults.Heal()
	c.waitLeader()
	if _, err := c.client(1).Put(ctx(t), "/healed", "x"); err != nil {
		t.Fatalf("put after healing: %v", err)
	}
}

// TestFlakyNetwork writes while links flap, delay and reorder messages;
// every acknowledged write survives on every member.
func TestFlakyNetwork(t *testing.T) {
	c := newTestCluster(t, 3)
	c.waitLeader()
	ids := c.ids()
	w := startWriter(t, c.endpoints(), 300)
	faults := []func(){
		func() { c.faults.Cut(ids[0], ids[1]) },
		func() { c.faults.Set(ids[1], ids[2], transport.Link{Delay: 30 * time.Millisecond}) },
		func() { c.faults.Set(ids[2], ids[0], transport.Link{Reorder: true}) },
		func() { c.faults.Set(ids[0], ids[2], transport.Link{Reorder: true, Delay: 10 * time.Millisecond}) },
		func() { c.faults.Isolate(ids[1], ids) },
	}
	for round := range 10 {
		start := time.Now()
		faults[round%len(faults)]()
		w.waitAcked(t, 10*(round+1))
		c.faults.Heal()
		t.Logf("round %d: %v", round, time.Since(start))
	}
	acked := w.finish()
	c.checkAcked(acked)
}

// TestRequireLeaderWatchMovesOn: a watch opened with WithRequireLeader on a
// member that is cut off is cancelled with etcd's "no leader" once the
// member has had no leader for a few election timeouts, so its client can
// go to a member that has one; a plain watch stays open.
func TestRequireLeaderWatchMovesOn(t *testing.T) {
	c := newTestCluster(t, 3)
	lead := c.waitLeader()
	f := (lead + 1) % 3
	cli := c.client(f)
	required := cli.Watch(clientv3.WithRequireLeader(context.Background()), "/k")
	plain := cli.Watch(context.Background(), "/k")
	// Both watches are registered once a put through f reaches them.
	if _, err := cli.Put(ctx(t), "/k", "1"); err != nil {
		t.Fatal(err)
	}
	for _, w := range []clientv3.WatchChan{required, plain} {
		select {
		case wr := <-w:
			if len(wr.Events) != 1 {
				t.Fatalf("first watch response %+v", wr)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no event")
		}
	}
	c.faults.Isolate(c.member(f).MemberID(), c.ids())
	select {
	case wr, ok := <-required:
		if !ok || !errors.Is(wr.Err(), rpctypes.ErrNoLeader) {
			t.Fatalf("require-leader watch on the cut-off member: %+v (open %v), want %v", wr, ok, rpctypes.ErrNoLeader)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("require-leader watch still open 20s after its member lost the leader")
	}
	select {
	case wr, ok := <-plain:
		t.Fatalf("plain watch ended: %+v (open %v)", wr, ok)
	default:
	}
}

// TestPreVote isolates a follower, with Raft's pre-vote on (the default)
// and off: with it, the follower's term stays and its return leaves the
// leader in place; without it, its term climbs and its return forces an
// election at a higher term.
func TestPreVote(t *testing.T) {
	for _, preVote := range []bool{true, false} {
		t.Run(fmt.Sprintf("pre-vote=%v", preVote), func(t *testing.T) {
			c := newTestCluster(t, 3, func(cfg *Config) { cfg.DisablePreVote = !preVote })
			lead := c.waitLeader()
			f := (lead + 1) % 3
			term := c.member(lead).Term()
			c.faults.Isolate(c.member(f).MemberID(), c.ids())
			// Three election timeouts: without pre-vote the follower
			// campaigns at least twice.
			deadline := time.Now().Add(3 * 2 * multiElection)
			for time.Now().Before(deadline) && c.member(f).Term() < term+2 {
				time.Sleep(10 * time.Millisecond)
			}
			climbed := c.member(f).Term() > term
			if climbed == preVote {
				t.Fatalf("isolated follower's term %d (leader's %d): climbed %v with pre-vote %v", c.member(f).Term(), term, climbed, preVote)
			}
			if _, err := c.client(lead).Put(ctx(t), "/k", "v"); err != nil {
				t.Fatalf("the majority stops serving: %v", err)
			}
			c.faults.Heal()
			// Back in: a write through the returned follower commits.
			eventually(t, 20*time.Second, "write through the returned follower", func() bool {
				_, err := c.client(f).Put(ctx(t), "/back", "v")
				return err == nil
			})
			newLead := c.waitLeader()
			if preVote {
				if newLead != lead || c.member(newLead).Term() != term {
					t.Fatalf("with pre-vote the return of a follower changed the leader: member %d at term %d (was member %d at %d)", newLead+1, c.member(newLead).Term(), lead+1, term)
				}
			} else if c.member(newLead).Term() <= term {
				t.Fatalf("without pre-vote the return of a follower at a higher term left the leader's term at %d", c.member(newLead).Term())
			}
		})
	}
}

// TestCheckQuorum isolates the leader of a cluster running etcd's default
// timing: with check-quorum on, the old leader notices it hears from no
// quorum and steps down to follower within two election timeouts (it
// checks once per timeout; the first check may still count what it heard
// just before the cut), while the majority elects a new leader. Without
// check-quorum the cut-off leader would go on leading alone, and clients
// bound to it would wait instead of moving on.
func TestCheckQuorum(t *testing.T) {
	const heartbeat, election = DefaultHeartbeatInterval, DefaultElectionTimeout
	c := newTestCluster(t, 3, func(cfg *Config) {
		cfg.HeartbeatInterval, cfg.ElectionTimeout = heartbeat, election
	})
	lead := c.waitLeader()
	old := c.member(lead)
	term := old.Term()
	c.faults.Isolate(old.MemberID(), c.ids())
	cut := time.Now()
	// One election timeout of slack for a loaded machine, whose ticks
	// come late.
	limit := 2*election + election
	var st Status
	for st = old.Status(); st.Role == RoleLeader; st = old.Status() {
		if time.Since(cut) > limit {
			t.Fatalf("isolated leader still leads %v after the cut, want it to step down within about 2 election timeouts (%v)", time.Since(cut), 2*election)
		}
		time.Sleep(5 * time.Millisecond)
	}
	took := time.Since(cut)
	t.Logf("isolated leader stepped down %v after the cut", took)
	if st.Role != RoleFollower || st.Leader != 0 || st.Term != term {
		t.Fatalf("isolated leader after stepping down: %+v, want a follower without leader at term %d", st, term)
	}
	var rest []int
	for i := range 3 {
		if i != lead {
			rest = append(rest, i)
		}
	}
	newLead := c.waitLeader(rest...)
	if c.member(newLead).Term() <= term {
		t.Fatalf("new leader member %d at term %d, want a term above %d", newLead+1, c.member(newLead).Term(), term)
	}
	if _, err := c.client(newLead).Put(ctx(t), "/after-cut", "x"); err != nil {
		t.Fatalf("put through the new leader: %v", err)
	}
	// Back in, the old leader follows the new one.
	c.faults.Heal()
	if got := c.waitLeader(); got != newLead {
		t.Fatalf("after healing member %d leads, want member %d", got+1, newLead+1)
	}
}
