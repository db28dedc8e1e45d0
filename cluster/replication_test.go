package cluster

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestThreeMembersReplicate is the seed's first example: a write through one
// member is read through another; every member lists the same members with
// their client URLs, serves watches from its own state, and holds the same
// keyspace (HashKV).
func TestThreeMembersReplicate(t *testing.T) {
	c := newTestCluster(t, 3)
	lead := c.waitLeader()
	follower := (lead + 1) % 3
	other := (lead + 2) % 3

	wch := c.client(other).Watch(ctx(t), "/my_key")
	// A write sent to a follower reaches the leader.
	if _, err := c.client(follower).Put(ctx(t), "/my_key", "my value"); err != nil {
		t.Fatalf("put through follower: %v", err)
	}
	resp, err := c.client(other).Get(ctx(t), "/my_key")
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "my value" {
		t.Fatalf("get through member %d = %v, %v; want my value", other+1, resp, err)
	}
	select {
	case wr := <-wch:
		if len(wr.Events) != 1 || string(wr.Events[0].Kv.Value) != "my value" {
			t.Fatalf("watch on member %d got %+v", other+1, wr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no watch event on the third member")
	}

	// Every member knows every member's name and client URLs.
	for i := range 3 {
		i := i
		eventually(t, 20*time.Second, fmt.Sprintf("member %d lists all members with client URLs", i+1), func() bool {
			ml, err := c.client(i).MemberList(ctx(t), clientv3.WithSerializable())
			if err != nil || len(ml.Members) != 3 {
				return false
			}
			for _, m := range ml.Members {
				j := c.index(m.ID)
				if j < 0 || m.Name != fmt.Sprintf("m%d", j+1) || !slices.Equal(m.ClientURLs, c.member(j).ClientURLs()) {
					return false
				}
			}
			return true
		})
	}

	// Status names the leader everywhere; HashKV agrees at one revision.
	rev := resp.Header.Revision
	var hashes []uint32
	for i := range 3 {
		st, err := c.client(i).Status(ctx(t), c.member(i).ClientURLs()[0])
		if err != nil || st.Leader != c.member(lead).MemberID() || st.RaftTerm == 0 {
			t.Fatalf("status of member %d = %+v, %v", i+1, st, err)
		}
		h, err := c.client(i).HashKV(ctx(t), c.member(i).ClientURLs()[0], rev)
		if err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, h.Hash)
	}
	if hashes[0] != hashes[1] || hashes[1] != hashes[2] {
		t.Fatalf("HashKV at %d differs between members: %x", rev, hashes)
	}
}

// TestFollowerLeases grants a lease through a follower, keeps it alive and
// asks its TTL through followers: only the leader keeps lease time, and the
// followers forward to it. A lease left alone expires on every member.
func TestFollowerLeases(t *testing.T) {
	c := newTestCluster(t, 3)
	lead := c.waitLeader()
	f := c.client((lead + 1) % 3)
	g, err := f.Grant(ctx(t), 2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Put(ctx(t), "/leased", "x", clientv3.WithLease(g.ID)); err != nil {
		t.Fatal(err)
	}
	ka, err := f.KeepAliveOnce(ctx(t), g.ID)
	if err != nil || ka.TTL != 2 {
		t.Fatalf("keep-alive through follower = %v, %v; want TTL 2", ka, err)
	}
	ttl, err := c.client((lead+2)%3).TimeToLive(ctx(t), g.ID, clientv3.WithAttachedKeys())
	if err != nil || ttl.TTL <= 0 || ttl.GrantedTTL != 2 || len(ttl.Keys) != 1 {
		t.Fatalf("TTL through follower = %+v, %v", ttl, err)
	}
	// Left alone, the leader revokes it, and the key goes on every member.
	for i := range 3 {
		eventually(t, 20*time.Second, fmt.Sprintf("leased key gone on member %d", i+1), func() bool {
			r, err := c.client(i).Get(ctx(t), "/leased", clientv3.WithSerializable())
			return err == nil && len(r.Kvs) == 0
		})
	}
	if ka, err := f.KeepAliveOnce(ctx(t), g.ID); !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		t.Fatalf("keep-alive of expired lease = %v, %v; want %v", ka, err, rpctypes.ErrLeaseNotFound)
	}
}

// TestMoveLeader hands leadership to a chosen follower.
func TestMoveLeader(t *testing.T) {
	c := newTestCluster(t, 3)
	lead := c.waitLeader()
	target := c.member((lead + 1) % 3).MemberID()
	if _, err := c.client((lead+2)%3).MoveLeader(ctx(t), target); !errors.Is(err, rpctypes.ErrNotLeader) {
		t.Fatalf("move-leader through a follower: %v, want %v", err, rpctypes.ErrNotLeader)
	}
	if _, err := c.client(lead).MoveLeader(ctx(t), target); err != nil {
		t.Fatalf("move-leader: %v", err)
	}
	if got := c.waitLeader(); c.member(got).MemberID() != target {
		t.Fatalf("leader is member %d, want %x", got+1, target)
	}
	if _, err := c.client((lead+1)%3).MoveLeader(ctx(t), 12345); !errors.Is(err, rpctypes.ErrBadLeaderTransferee) {
		t.Fatalf("move-leader to a stranger: %v, want %v", err, rpctypes.ErrBadLeaderTransferee)
	}
}

// TestStatusAndSlowMotion reads each member's role and indexes, then slows
// every member's clock: a new election after the leader stops takes longer
// than the normal election timeout, and Status shows the new leader.
func TestStatusAndSlowMotion(t *testing.T) {
	c := newTestCluster(t, 3)
	lead := c.waitLeader()
	for i := range 3 {
		st := c.member(i).Status()
		wantRole := RoleFollower
		if i == lead {
			wantRole = RoleLeader
		}
		if st.Role != wantRole || st.Leader != c.member(lead).MemberID() || st.Term == 0 || st.Commit == 0 || st.Name != fmt.Sprintf("m%d", i+1) {
			t.Fatalf("member %d status %+v, want role %s", i+1, st, wantRole)
		}
	}
	if m := c.member(lead).Status().Match; len(m) != 3 {
		t.Fatalf("leader's match indexes %v, want three", m)
	}
	const slow = 5 * multiHeartbeat
	for _, i := range c.running() {
		if err := c.member(i).SetTickInterval(slow); err != nil {
			t.Fatal(err)
		}
	}
	c.stop(lead)
	stopped := time.Now()
	newLead := c.waitLeader()
	// An election needs at least one election timeout of ticks, now five
	// times longer — less the tick already under way when the leader
	// stopped; at normal speed it would take at most two timeouts.
	if took, least := time.Since(stopped), 5*multiElection-slow; took < least {
		t.Fatalf("new leader after %v in slow motion, want at least %v", took, least)
	}
	if c.member(newLead).Status().Role != RoleLeader {
		t.Fatalf("member %d status %+v", newLead+1, c.member(newLead).Status())
	}
}

// TestNewLeaderRefreshesLeases: when the leader is lost, the new leader
// gives every lease a fresh TTL (as etcd does), so a lease that was about to
// expire survives the election; the leased key survives with it.
func TestNewLeaderRefreshesLeases(t *testing.T) {
	c := newTestCluster(t, 3)
	lead := c.waitLeader()
	cli := c.client((lead + 1) % 3)
	g, err := cli.Grant(ctx(t), 3)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx(t), "/leased", "x", clientv3.WithLease(g.ID)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "lease down to 1s", func() bool {
		r, err := cli.TimeToLive(ctx(t), g.ID)
		return err == nil && r.TTL <= 1
	})
	c.stop(lead)
	c.waitLeader()
	r, err := cli.TimeToLive(ctx(t), g.ID)
	if err != nil || r.TTL < 2 {
		t.Fatalf("TTL after the new leader took over = %+v, %v; want a fresh TTL (>= 2s of 3s)", r, err)
	}
	if gr, err := cli.Get(ctx(t), "/leased"); err != nil || len(gr.Kvs) != 1 {
		t.Fatalf("leased key after election = %v, %v", gr, err)
	}
}

// TestLeaseExpiresOnlyThroughLeader cuts a member off — a follower, then
// in a second cluster the leader — while a leased key's TTL runs out. The
// majority's leader revokes the lease through Raft; the cut-off member,
// well past the TTL, still holds the key: it neither expires leases by
// itself nor, as an old leader without a quorum, gets its own revoke
// committed. Healed, it applies the majority's revoke, and every member's
// keyspace hashes alike.
func TestLeaseExpiresOnlyThroughLeader(t *testing.T) {
	for _, which := range []string{"follower", "leader"} {
		t.Run(which, func(t *testing.T) {
			c := newTestCluster(t, 3)
			lead := c.waitLeader()
			cut := (lead + 1) % 3
			if which == "leader" {
				cut = lead
			}
			g, err := c.client(lead).Grant(ctx(t), 2)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.client(lead).Put(ctx(t), "/leased", "x", clientv3.WithLease(g.ID)); err != nil {
				t.Fatal(err)
			}
			c.waitConverged()
			granted := time.Now()
			c.faults.Isolate(c.member(cut).MemberID(), c.ids())
			holds := func(i int) bool {
				r, err := c.client(i).Get(ctx(t), "/leased", clientv3.WithSerializable())
				if err != nil {
					t.Fatalf("serializable get through member %d: %v", i+1, err)
				}
				return len(r.Kvs) == 1
			}
			for _, i := range c.running() {
				if i == cut {
					continue
				}
				eventually(t, 20*time.Second, fmt.Sprintf("majority member %d applies the revoke", i+1), func() bool { return !holds(i) })
			}
			if since := time.Since(granted); since < 2*time.Second {
				t.Fatalf("the majority revoked a lease of TTL 2s after %v", since)
			}
			if !holds(cut) {
				t.Fatalf("the cut-off %s dropped the leased key by itself", which)
			}
			if ids := c.member(cut).store.Expired(); len(ids) != 0 {
				t.Fatalf("the cut-off %s keeps lease time: expired %x", which, ids)
			}
			c.faults.Heal()
			eventually(t, 20*time.Second, "the healed member applies the revoke", func() bool { return !holds(cut) })
			c.waitConverged()
			var hashes []uint32
			for _, i := range c.running() {
				h, err := c.client(i).HashKV(ctx(t), c.member(i).ClientURLs()[0], 0)
				if err != nil {
					t.Fatal(err)
				}
				hashes = append(hashes, h.Hash)
			}
			if hashes[0] != hashes[1] || hashes[1] != hashes[2] {
				t.Fatalf("members' HashKV differ after the heal: %x", hashes)
			}
		})
	}
}

// TestFollowerReadsShareReadIndex sends many linearizable reads at once to
// a follower right after a write through the leader: every read sees the
// write (the follower asks the leader for its commit index and waits to
// apply it), and the reads share ReadIndex rounds instead of one each.
func TestFollowerReadsShareReadIndex(t *testing.T) {
	c := newTestCluster(t, 3)
	lead := c.waitLeader()
	f := (lead + 1) % 3
	fcli, lcli := c.client(f), c.client(lead)
	if _, err := fcli.Get(ctx(t), "/warm"); err != nil { // connects
		t.Fatal(err)
	}
	const n = 64
	for round := range 3 {
		put, err := lcli.Put(ctx(t), "/r", fmt.Sprint(round))
		if err != nil {
			t.Fatal(err)
		}
		before := c.member(f).readRounds.Load()
		errc := make(chan error, n)
		for range n {
			go func() {
				get, err := fcli.Get(ctx(t), "/r")
				if err == nil && (len(get.Kvs) != 1 || string(get.Kvs[0].Value) != fmt.Sprint(round) || get.Header.Revision < put.Header.Revision) {
					err = fmt.Errorf("read %v at %d, want /r=%d at >= %d", get.Kvs, get.Header.Revision, round, put.Header.Revision)
				}
				errc <- err
			}()
		}
		for range n {
			if err := <-errc; err != nil {
				t.Fatalf("linearizable read through the follower: %v", err)
			}
		}
		rounds := c.member(f).readRounds.Load() - before
		t.Logf("%d reads through the follower took %d ReadIndex rounds", n, rounds)
		if rounds == 0 || rounds >= n {
			t.Fatalf("%d reads through the follower took %d ReadIndex rounds, want at least one, shared", n, rounds)
		}
	}
}
