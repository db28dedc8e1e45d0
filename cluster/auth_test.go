package cluster

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/metadata"
)

// userClient connects to member i as user.
func (c *testCluster) userClient(i int, user, password string) *clientv3.Client {
	c.t.Helper()
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   c.member(i).ClientURLs(),
		DialTimeout: 5 * time.Second,
		Username:    user,
		Password:    password,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		c.t.Fatalf("connect to member %d as %s: %v", i+1, user, err)
	}
	c.t.Cleanup(func() { cli.Close() })
	return cli
}

// setupAuth creates root and alice (read on /app1/, write on /app1/w) and
// enables auth, through member i.
func setupAuth(t *testing.T, ctx context.Context, cli *clientv3.Client) {
	t.Helper()
	for _, step := range []func() error{
		func() error { _, err := cli.UserAdd(ctx, "root", "rootpw"); return err },
		func() error { _, err := cli.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := cli.RoleAdd(ctx, "app1"); return err },
		func() error {
			_, err := cli.RoleGrantPermission(ctx, "app1", "/app1/", clientv3.GetPrefixRangeEnd("/app1/"), clientv3.PermissionType(clientv3.PermRead))
			return err
		},
		func() error {
			_, err := cli.RoleGrantPermission(ctx, "app1", "/app1/w", "", clientv3.PermissionType(clientv3.PermWrite))
			return err
		},
		func() error { _, err := cli.UserAdd(ctx, "alice", "alicepw"); return err },
		func() error { _, err := cli.UserGrantRole(ctx, "alice", "app1"); return err },
		func() error { _, err := cli.AuthEnable(ctx); return err },
	} {
		if err := step(); err != nil {
			t.Fatalf("set up auth: %v", err)
		}
	}
}

// TestAuthOnEveryMember: auth state is replicated (enabled, users and
// permissions on every member), a simple token issued through one member
// works on the others at once, calls forwarded to the leader keep their
// caller, an expired lease is revoked whatever its keys, and the state
// survives a restart and a snapshot install.
func TestAuthOnEveryMember(t *testing.T) {
	c := newTestCluster(t, 3, func(cfg *Config) {
		cfg.SnapshotCount = 20
		cfg.SnapshotCatchUpEntries = 5
	})
	lead := c.waitLeader()
	follower := (lead + 1) % 3
	other := (lead + 2) % 3
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	setupAuth(t, ctx, c.client(follower))

	// Every member refuses anonymous reads now.
	for i := range 3 {
		_, err := c.client(i).Get(ctx, "/app1/x", clientv3.WithSerializable())
		if !errors.Is(err, rpctypes.ErrUserEmpty) {
			// A member that has not applied the enable yet answers; wait
			// for it with a linearizable read instead.
			if _, err = c.client(i).Get(ctx, "/app1/x"); !errors.Is(err, rpctypes.ErrUserEmpty) {
				t.Errorf("member %d: anonymous get: %v, want %v", i+1, err, rpctypes.ErrUserEmpty)
			}
		}
	}

	// A token from one member, used on another straight away.
	resp, err := pb.NewAuthClient(c.client(follower).ActiveConnection()).Authenticate(ctx, &pb.AuthenticateRequest{Name: "alice", Password: "alicepw"})
	if err != nil {
		t.Fatal(err)
	}
	tctx := metadata.AppendToOutgoingContext(ctx, rpctypes.TokenFieldNameGRPC, resp.Token)
	kv := pb.NewKVClient(c.client(other).ActiveConnection())
	if _, err := kv.Range(tctx, &pb.RangeRequest{Key: []byte("/app1/x"), Serializable: true}); err != nil {
		t.Errorf("alice's token from member %d on member %d: %v", follower+1, other+1, err)
	}
	if _, err := kv.Range(tctx, &pb.RangeRequest{Key: []byte("/app2/x")}); !errors.Is(rpctypes.Error(err), rpctypes.ErrPermissionDenied) {
		t.Errorf("alice reads /app2/x on member %d: %v, want permission denied", other+1, err)
	}
	if _, err := kv.Range(metadata.AppendToOutgoingContext(ctx, rpctypes.TokenFieldNameGRPC, resp.Token+"0"), &pb.RangeRequest{Key: []byte("/app1/x")}); !errors.Is(rpctypes.Error(err), rpctypes.ErrInvalidAuthToken) {
		t.Errorf("a made-up token: %v, want invalid auth token", err)
	}

	// Lease calls on a follower are forwarded to the leader with the
	// caller: alice keeps her lease alive, and may not look into root's.
	alice := c.userClient(follower, "alice", "alicepw")
	root := c.userClient(follower, "root", "rootpw")
	al, err := alice.Grant(ctx, 30)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Put(ctx, "/app1/w", "v", clientv3.WithLease(al.ID)); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.KeepAliveOnce(ctx, al.ID); err != nil {
		t.Errorf("alice keeps her lease alive through member %d: %v", follower+1, err)
	}
	if _, err := alice.TimeToLive(ctx, al.ID, clientv3.WithAttachedKeys()); err != nil {
		t.Errorf("alice's lease time-to-live through member %d: %v", follower+1, err)
	}
	// root's lease holds a key alice may not write: she may neither keep
	// it alive nor look into it. (A long TTL: an expired lease has nothing
	// left to deny, as in etcd.)
	held, err := root.Grant(ctx, 60)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := root.Put(ctx, "/app2/held", "v", clientv3.WithLease(held.ID)); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.KeepAliveOnce(ctx, held.ID); !errors.Is(err, rpctypes.ErrPermissionDenied) {
		t.Errorf("alice keeps root's lease alive: %v, want permission denied", err)
	}
	if _, err := alice.TimeToLive(ctx, held.ID, clientv3.WithAttachedKeys()); !errors.Is(err, rpctypes.ErrPermissionDenied) {
		t.Errorf("alice reads root's lease keys: %v, want permission denied", err)
	}
	// root's short lease expires even so (the leader revokes as root).
	rl, err := root.Grant(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := root.Put(ctx, "/app2/expiring", "v", clientv3.WithLease(rl.ID)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		r, err := root.Get(ctx, "/app2/expiring")
		if err != nil {
			t.Fatal(err)
		}
		if r.Count == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("root's 1s lease did not expire within 20s with auth on")
		}
		time.Sleep(50 * time.Millisecond)
	}

	// A restarted member keeps its auth state; a member that was away
	// while the log moved past it gets it in a snapshot.
	stoppedAt := c.member(other).AppliedIndex()
	c.stop(other)
	for i := range 40 {
		if _, err := root.Put(ctx, fmt.Sprintf("/fill/%d", i), "x"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := root.RoleGrantPermission(ctx, "app1", "/app3/", clientv3.GetPrefixRangeEnd("/app3/"), clientv3.PermissionType(clientv3.PermRead)); err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		if _, err := root.Put(ctx, fmt.Sprintf("/fill2/%d", i), "x"); err != nil {
			t.Fatal(err)
		}
	}
	want := c.member(lead).CommittedIndex()
	if first, err := c.member(lead).raftStorage.FirstIndex(); err != nil || first <= stoppedAt+1 {
		t.Fatalf("the leader's log starts at %d (%v): member %d (stopped at %d) would catch up without a snapshot", first, err, other+1, stoppedAt)
	}
	c.start(other)
	c.waitReady(other)
	for deadline := time.Now().Add(20 * time.Second); c.member(other).AppliedIndex() < want; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("member %d applied %d within 20s, want %d", other+1, c.member(other).AppliedIndex(), want)
		}
	}
	st := c.member(other).Store().Auth()
	if !st.Enabled() {
		t.Fatalf("member %d after restart and catch-up: auth is off", other+1)
	}
	if st.Revision() != c.member(lead).Store().Auth().Revision() {
		t.Errorf("member %d auth revision %d, leader's %d", other+1, st.Revision(), c.member(lead).Store().Auth().Revision())
	}
	back := c.userClient(other, "alice", "alicepw")
	if _, err := back.Get(ctx, "/app3/x", clientv3.WithSerializable()); err != nil {
		t.Errorf("member %d: alice reads /app3/ (granted while it was away): %v", other+1, err)
	}
	if _, err := back.Put(ctx, "/app1/x", "v"); !errors.Is(err, rpctypes.ErrPermissionDenied) {
		t.Errorf("member %d: alice writes /app1/x: %v, want permission denied", other+1, err)
	}
}
