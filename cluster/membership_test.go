package cluster

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tendkv/tend/internal/freeport"
)

// addMemberConfig is the config of a member joining c with peer URL peer.
func (c *testCluster) joinConfig(name, peer string) Config {
	var parts []string
	for _, mi := range c.member(c.running()[0]).Members() {
		if len(mi.PeerURLs) > 0 && mi.Name != "" {
			parts = append(parts, mi.Name+"="+mi.PeerURLs[0])
		}
	}
	parts = append(parts, name+"="+peer)
	cfg := c.cfgs[0]
	cfg.Name = name
	cfg.DataDir = c.t.TempDir()
	cfg.ListenClientURLs = []string{"http://127.0.0.1:0"}
	cfg.ListenPeerURLs = []string{peer}
	cfg.InitialAdvertisePeerURLs = []string{peer}
	cfg.InitialCluster = strings.Join(parts, ",")
	cfg.InitialClusterState = ClusterStateExisting
	cfg.Logger = testLogger().With("test-member", name)
	return cfg
}

// TestMembershipWhileWriting adds a learner while a client writes, lets it
// join and catch up (by snapshot: the leader's log is compacted), promotes
// it, removes an original member — which stops and says why — and checks
// every acknowledged write on the members left.
func TestMembershipWhileWriting(t *testing.T) {
	c := newTestCluster(t, 3, func(cfg *Config) {
		cfg.SnapshotCount = 100
		cfg.SnapshotCatchUpEntries = 10
	})
	lead := c.waitLeader()
	w := startWriter(t, c.endpoints(), 600)
	w.waitAcked(t, 150)

	admin := c.client(lead)
	peer := freeport.URL(t)
	added, err := admin.MemberAddAsLearner(ctx(t), []string{peer})
	if err != nil {
		t.Fatalf("member add --learner: %v", err)
	}
	if !added.Member.IsLearner || len(added.Members) != 4 {
		t.Fatalf("member add answered %+v", added)
	}
	// A second learner is one too many.
	if _, err := admin.MemberAddAsLearner(ctx(t), []string{freeport.URL(t)}); !errors.Is(rpctypes.Error(err), rpctypes.Error(rpctypes.ErrGRPCTooManyLearners)) {
		t.Fatalf("second learner: %v, want %v", err, rpctypes.ErrGRPCTooManyLearners)
	}

	c.cfgs = append(c.cfgs, c.joinConfig("m4", peer))
	c.members = append(c.members, nil)
	c.start(3)
	c.waitReady(3)
	if c.member(3).MemberID() != added.Member.ID {
		t.Fatalf("joined as %x, added as %x", c.member(3).MemberID(), added.Member.ID)
	}
	// A learner serves serializable reads only.
	if _, err := c.client(3).Put(ctx(t), "/x", "y"); !errors.Is(rpctypes.Error(err), rpctypes.Error(rpctypes.ErrGRPCNotSupportedForLearner)) {
		t.Fatalf("put through learner: %v, want %v", err, rpctypes.ErrGRPCNotSupportedForLearner)
	}
	if st, err := c.client(3).Status(ctx(t), c.member(3).ClientURLs()[0]); err != nil || !st.IsLearner {
		t.Fatalf("learner's status = %+v, %v; want is_learner", st, err)
	}
	eventually(t, 20*time.Second, "learner promoted", func() bool {
		_, err := c.client((lead+1)%3).MemberPromote(ctx(t), added.Member.ID)
		return err == nil
	})
	if c.member(3).snapshotsInstalled.Load() == 0 {
		t.Fatal("the new member caught up without a snapshot")
	}

	// Remove a follower that is not the one we talk through.
	gone := (c.waitLeader() + 1) % 3
	goneID := c.member(gone).MemberID()
	eventually(t, 20*time.Second, "member removed", func() bool {
		_, err := c.client(3).MemberRemove(ctx(t), goneID)
		return err == nil
	})
	select {
	case <-c.member(gone).Done():
	case <-time.After(20 * time.Second):
		t.Fatal("removed member still running after 20s")
	}
	if err := c.member(gone).Err(); !errors.Is(err, ErrRemoved) {
		t.Fatalf("removed member stopped with %v, want %v", err, ErrRemoved)
	}
	c.mu.Lock()
	c.members[gone] = nil
	c.mu.Unlock()

	ml, err := c.client(3).MemberList(ctx(t))
	if err != nil || len(ml.Members) != 3 {
		t.Fatalf("member list after remove: %v, %v", ml, err)
	}
	for _, m := range ml.Members {
		if m.ID == goneID || m.IsLearner || m.Name == "" {
			t.Fatalf("member list after remove: %v", ml.Members)
		}
	}
	acked := w.finish()
	c.checkAcked(acked)
	// The removed member cannot come back with its old data.
	if _, err := c.client(3).MemberRemove(ctx(t), goneID); !errors.Is(err, rpctypes.ErrMemberNotFound) {
		t.Fatalf("remove again: %v, want %v", err, rpctypes.ErrMemberNotFound)
	}
}

// TestJoinUnknownMember starts a member with --initial-cluster-state
// existing that was never added: it refuses to start and says how to add
// it.
func TestJoinUnknownMember(t *testing.T) {
	c := newTestCluster(t, 1)
	cfg := c.joinConfig("stranger", freeport.URL(t))
	_, err := StartMember(ctx(t), cfg)
	if err == nil || !strings.Contains(err.Error(), "tend member add stranger") {
		t.Fatalf("start unknown member: %v, want a hint to add it", err)
	}
}

// TestGrowFromOne adds a voting member to a one-member cluster, the way a
// cluster is grown from a restored backup, and writes through both.
func TestGrowFromOne(t *testing.T) {
	c := newTestCluster(t, 1)
	peer := freeport.URL(t)
	if _, err := c.client(0).MemberAdd(ctx(t), []string{peer}); err != nil {
		t.Fatalf("member add: %v", err)
	}
	c.cfgs = append(c.cfgs, c.joinConfig("m2", peer))
	c.members = append(c.members, nil)
	c.start(1)
	c.waitReady(1)
	for i := range 2 {
		if _, err := c.client(i).Put(ctx(t), fmt.Sprintf("/k%d", i), "v"); err != nil {
			t.Fatalf("put through member %d: %v", i+1, err)
		}
	}
	r, err := c.client(1).Get(ctx(t), "/k", clientv3.WithPrefix())
	if err != nil || len(r.Kvs) != 2 {
		t.Fatalf("get = %v, %v; want both keys", r, err)
	}
}

// TestMemberUpdate moves a follower to a new peer URL: Cluster.MemberUpdate
// through another member, then the follower restarts listening on the new
// URL only. Every member lists the new URL, and the leader's writes reach
// the follower there (its old URL has nobody listening).
func TestMemberUpdate(t *testing.T) {
	c := newTestCluster(t, 3)
	lead := c.waitLeader()
	f, other := (lead+1)%3, (lead+2)%3
	id := c.member(f).MemberID()
	oldPeer, newPeer := c.cfgs[f].ListenPeerURLs[0], freeport.URL(t)
	resp, err := c.client(other).MemberUpdate(ctx(t), id, []string{newPeer})
	if err != nil {
		t.Fatalf("member update: %v", err)
	}
	if got := peerURLsOf(resp.Members, id); !slices.Equal(got, []string{newPeer}) {
		t.Fatalf("member update answered peer URLs %v for %x, want [%s]", got, id, newPeer)
	}

	c.stop(f)
	c.cfgs[f].ListenPeerURLs = []string{newPeer}
	c.cfgs[f].InitialAdvertisePeerURLs = []string{newPeer}
	c.start(f)
	c.waitReady(f)
	for i := range 3 {
		eventually(t, 20*time.Second, fmt.Sprintf("member %d lists the new peer URL", i+1), func() bool {
			ml, err := c.client(i).MemberList(ctx(t), clientv3.WithSerializable())
			return err == nil && len(ml.Members) == 3 && slices.Equal(peerURLsOf(ml.Members, id), []string{newPeer})
		})
	}
	// Writes through the leader reach the moved follower, so the leader
	// sends to the new URL.
	for i := range 20 {
		if _, err := c.client(c.waitLeader()).Put(ctx(t), fmt.Sprintf("/moved/%02d", i), "v"); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 20*time.Second, "moved follower holds the writes made after its move", func() bool {
		r, err := c.client(f).Get(ctx(t), "/moved/", clientv3.WithPrefix(), clientv3.WithSerializable(), clientv3.WithCountOnly())
		return err == nil && r.Count == 20
	})
	if conn, err := net.DialTimeout("tcp", strings.TrimPrefix(oldPeer, "http://"), time.Second); err == nil {
		conn.Close()
		t.Fatalf("something still listens on the old peer URL %s", oldPeer)
	}
}

// peerURLsOf returns the peer URLs members lists for member id.
func peerURLsOf(members []*etcdserverpb.Member, id uint64) []string {
	for _, m := range members {
		if m.ID == id {
			return m.PeerURLs
		}
	}
	return nil
}

// TestJoinAsksUntilAMemberKnows: a joining member asks the members its
// --initial-cluster names for the member list until one lists it; a
// follower that has not applied the MemberAdd yet (here: cut off) does not.
// With only that follower to ask, the join fails and says to add the member.
func TestJoinAsksUntilAMemberKnows(t *testing.T) {
	c := newTestCluster(t, 3)
	lead := c.waitLeader()
	behind := (lead + 1) % 3
	c.faults.Isolate(c.member(behind).MemberID(), c.ids())
	peer := freeport.URL(t)
	// A learner: a voter would need the cut-off member for a quorum.
	if _, err := c.client(lead).MemberAddAsLearner(ctx(t), []string{peer}); err != nil {
		t.Fatal(err)
	}
	entry := func(i int) string { return c.cfgs[i].Name + "=" + c.cfgs[i].InitialAdvertisePeerURLs[0] }

	cfg := c.joinConfig("m4", peer)
	cfg.InitialCluster = entry(behind) + ",m4=" + peer
	if _, err := StartMember(ctx(t), cfg); err == nil || !strings.Contains(err.Error(), "has no member with peer URLs "+peer+": add it first") {
		t.Fatalf("join asking only a member behind: %v", err)
	}

	cfg = c.joinConfig("m4", peer)
	cfg.InitialCluster = entry(behind) + "," + entry(lead) + ",m4=" + peer
	m, err := StartMember(ctx(t), cfg)
	if err != nil {
		t.Fatalf("join asking a member behind, then the leader: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	select {
	case <-m.ReadyNotify():
	case <-m.Done():
		t.Fatalf("joined member stopped: %v", m.Err())
	case <-time.After(20 * time.Second):
		t.Fatal("joined member not ready within 20s")
	}
}
