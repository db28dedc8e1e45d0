package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/proto"
)

// testConfig is a one-member cluster on a free loopback port with fast
// Raft timing.
func testConfig(t *testing.T, dir string) Config {
	t.Helper()
	lvl := slog.LevelWarn
	if os.Getenv("TEND_TEST_LOG") != "" {
		lvl = slog.LevelDebug
	}
	return Config{
		Name:                     "m1",
		DataDir:                  dir,
		ListenClientURLs:         []string{"http://127.0.0.1:0"},
		ListenPeerURLs:           []string{"http://127.0.0.1:0"},
		InitialAdvertisePeerURLs: []string{"http://127.0.0.1:12380"},
		HeartbeatInterval:        10 * time.Millisecond,
		ElectionTimeout:          100 * time.Millisecond,
		Logger:                   slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl})),
	}
}

// start starts a member and waits until it is ready; Cleanup closes it.
func start(t *testing.T, cfg Config) *Member {
	t.Helper()
	m, err := StartMember(context.Background(), cfg)
	if err != nil {
		t.Fatalf("StartMember: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	select {
	case <-m.ReadyNotify():
	case <-m.Done():
		t.Fatalf("member stopped before ready: %v", m.Err())
	case <-time.After(10 * time.Second):
		t.Fatal("member not ready within 10s")
	}
	return m
}

// client connects clientv3 to m; Cleanup closes it.
func client(t *testing.T, m *Member) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   m.ClientURLs(),
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		t.Fatalf("clientv3.New: %v", err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// ctx is a per-call deadline for test requests.
func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

// eventually polls cond every 20ms until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestPutGetTxnDelete(t *testing.T) {
	m := start(t, testConfig(t, t.TempDir()))
	cli := client(t, m)

	put, err := cli.Put(ctx(t), "/a", "1")
	if err != nil {
		t.Fatalf("put: %v", err)
	}
	h := put.Header
	if h.ClusterId != m.ClusterID() || h.MemberId != m.MemberID() || h.RaftTerm == 0 || h.Revision != 2 {
		t.Errorf("put header = %+v, want cluster %x member %x, term > 0, revision 2", h, m.ClusterID(), m.MemberID())
	}
	if _, err := cli.Put(ctx(t), "/b", "2"); err != nil {
		t.Fatalf("put: %v", err)
	}
	get, err := cli.Get(ctx(t), "/", clientv3.WithPrefix())
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if len(get.Kvs) != 2 || string(get.Kvs[0].Value) != "1" || string(get.Kvs[1].Value) != "2" || get.Header.Revision != 3 {
		t.Fatalf("get = %v at %d, want /a=1 /b=2 at 3", get.Kvs, get.Header.Revision)
	}
	ser, err := cli.Get(ctx(t), "/a", clientv3.WithSerializable())
	if err != nil || len(ser.Kvs) != 1 {
		t.Fatalf("serializable get = %v, %v", ser, err)
	}

	txn, err := cli.Txn(ctx(t)).
		If(clientv3.Compare(clientv3.Value("/a"), "=", "1")).
		Then(clientv3.OpPut("/a", "10"), clientv3.OpGet("/b")).
		Else(clientv3.OpPut("/a", "bad")).Commit()
	if err != nil {
		t.Fatalf("txn: %v", err)
	}
	if !txn.Succeeded || string(txn.Responses[1].GetResponseRange().Kvs[0].Value) != "2" {
		t.Fatalf("txn = %v, want success reading /b=2", txn)
	}
	ro, err := cli.Txn(ctx(t)).If(clientv3.Compare(clientv3.Value("/a"), "=", "1")).Else(clientv3.OpGet("/a")).Commit()
	if err != nil || ro.Succeeded || string(ro.Responses[0].GetResponseRange().Kvs[0].Value) != "10" {
		t.Fatalf("read-only txn = %v, %v; want failure branch reading /a=10", ro, err)
	}

	del, err := cli.Delete(ctx(t), "/", clientv3.WithPrefix(), clientv3.WithPrevKV())
	if err != nil || del.Deleted != 2 || len(del.PrevKvs) != 2 {
		t.Fatalf("delete = %v, %v; want 2 deleted with prev kvs", del, err)
	}
	get, err = cli.Get(ctx(t), "/", clientv3.WithPrefix())
	if err != nil || len(get.Kvs) != 0 {
		t.Fatalf("get after delete = %v, %v", get, err)
	}
}

func TestMemberList(t *testing.T) {
	m := start(t, testConfig(t, t.TempDir()))
	cli := client(t, m)
	resp, err := cli.MemberList(ctx(t))
	if err != nil {
		t.Fatalf("member list: %v", err)
	}
	if len(resp.Members) != 1 {
		t.Fatalf("members = %v, want one", resp.Members)
	}
	got := resp.Members[0]
	if got.ID != m.MemberID() || got.Name != "m1" || len(got.ClientURLs) != 1 || got.ClientURLs[0] != m.ClientURLs()[0] {
		t.Errorf("member = %v, want ID %x name m1 client URL %s", got, m.MemberID(), m.ClientURLs()[0])
	}
	// etcd's derivation: the same peer URLs and token give the same IDs.
	if want := memberID([]string{"http://127.0.0.1:12380"}, "etcd-cluster"); got.ID != want {
		t.Errorf("member ID = %x, want %x", got.ID, want)
	}
	if want := clusterID([]uint64{m.MemberID()}); resp.Header.ClusterId != want {
		t.Errorf("cluster ID = %x, want %x", resp.Header.ClusterId, want)
	}
}

func TestHealth(t *testing.T) {
	m := start(t, testConfig(t, t.TempDir()))
	cli := client(t, m)
	resp, err := healthpb.NewHealthClient(cli.ActiveConnection()).Check(ctx(t), &healthpb.HealthCheckRequest{})
	if err != nil || resp.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health = %v, %v; want SERVING", resp, err)
	}
}

// TestReadsShareReadIndex sends many linearizable reads at once: they are
// all served, each sees the write acknowledged before it, and they share
// fewer ReadIndex rounds than there are reads.
func TestReadsShareReadIndex(t *testing.T) {
	m := start(t, testConfig(t, t.TempDir()))
	cli := client(t, m)
	put, err := cli.Put(ctx(t), "r", "v")
	if err != nil {
		t.Fatal(err)
	}
	before := m.readRounds.Load()
	const n = 64
	errc := make(chan error, n)
	for range n {
		go func() {
			get, err := cli.Get(ctx(t), "r")
			if err == nil && (len(get.Kvs) != 1 || get.Header.Revision < put.Header.Revision) {
				err = fmt.Errorf("read %v at %d, want r=v at >= %d", get.Kvs, get.Header.Revision, put.Header.Revision)
			}
			errc <- err
		}()
	}
	for range n {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	if rounds := m.readRounds.Load() - before; rounds >= n {
		t.Errorf("%d reads took %d ReadIndex rounds, want them shared", n, rounds)
	}
}

// TestBusyPortCreatesNothing starts a member on a port in use: it fails
// naming the flag, and a later start on a free port still bootstraps.
func TestBusyPortCreatesNothing(t *testing.T) {
	m := start(t, testConfig(t, t.TempDir()))
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	cfg.ListenClientURLs = m.ClientURLs()
	if _, err := StartMember(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "--listen-client-urls") {
		t.Fatalf("start on a busy port: %v, want an error naming --listen-client-urls", err)
	}
	m2 := start(t, testConfig(t, dir))
	if _, err := client(t, m2).Put(ctx(t), "k", "v"); err != nil {
		t.Fatalf("put after a failed first start: %v", err)
	}
}

// TestApplyFailureStopsMember breaks the store under a running member: the
// next committed write cannot be applied, and the member stops with that
// error instead of carrying on diverged.
func TestApplyFailureStopsMember(t *testing.T) {
	m := start(t, testConfig(t, t.TempDir()))
	cli := client(t, m)
	if _, err := cli.Put(ctx(t), "k", "v"); err != nil {
		t.Fatal(err)
	}
	if err := m.store.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx(t), "k", "v2"); err == nil {
		t.Fatal("put succeeded on a broken store")
	}
	select {
	case <-m.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("member still running 10s after a failed apply")
	}
	if err := m.Err(); err == nil || !strings.Contains(err.Error(), "apply entry") {
		t.Fatalf("Err() = %v, want the apply failure", err)
	}
}

// TestNoLeader starts one member of a two-member cluster whose peer never
// comes: the member lists both, Status reports no leader, and calls that
// require a leader fail at once with etcd's error.
func TestNoLeader(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.InitialCluster = "m1=http://127.0.0.1:12380,m2=http://127.0.0.1:12381"
	m, err := StartMember(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	// clientv3 retries "no leader" 100 times; once shows the error.
	cli, err := clientv3.New(clientv3.Config{Endpoints: m.ClientURLs(), Logger: zap.NewNop(), MaxUnaryRetries: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()

	ml, err := cli.MemberList(ctx(t), clientv3.WithSerializable())
	if err != nil || len(ml.Members) != 2 {
		t.Fatalf("member list = %v, %v; want two members", ml, err)
	}
	st, err := cli.Status(ctx(t), m.ClientURLs()[0])
	if err != nil || st.Leader != 0 || len(st.Errors) != 1 || st.Errors[0] != rpctypes.ErrNoLeader.Error() {
		t.Fatalf("status = %+v, %v; want no leader", st, err)
	}
	rctx := clientv3.WithRequireLeader(ctx(t))
	if _, err := cli.Get(rctx, "k"); !errors.Is(err, rpctypes.ErrNoLeader) {
		t.Fatalf("get requiring a leader: %v, want %v", err, rpctypes.ErrNoLeader)
	}
	if _, err := cli.Grant(rctx, 10); !errors.Is(err, rpctypes.ErrNoLeader) {
		t.Fatalf("grant requiring a leader: %v, want %v", err, rpctypes.ErrNoLeader)
	}
	// A serializable read needs no leader.
	if _, err := cli.Get(ctx(t), "k", clientv3.WithSerializable()); err != nil {
		t.Fatalf("serializable get without a leader: %v", err)
	}
}

// TestGetStream reads a range through RangeStream: several chunks that
// merge into what Get returns, with etcd's Count and More under a limit.
func TestGetStream(t *testing.T) {
	m := start(t, testConfig(t, t.TempDir()))
	cli := client(t, m)
	const n = 100
	var ops []clientv3.Op
	for i := range n {
		ops = append(ops, clientv3.OpPut(fmt.Sprintf("/s/%03d", i), "v"))
	}
	if _, err := cli.Txn(ctx(t)).Then(ops...).Commit(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		limit     int64
		wantKVs   int
		wantMore  bool
		minChunks int
	}{
		{0, n, false, 3},
		{30, 30, true, 2},
	} {
		ch, err := cli.GetStream(ctx(t), "/s/", clientv3.WithPrefix(), clientv3.WithLimit(tc.limit))
		if err != nil {
			t.Fatal(err)
		}
		var chunks []clientv3.RangeStreamResponse
		for r := range ch {
			chunks = append(chunks, r)
		}
		got := &pb.RangeResponse{}
		for _, c := range chunks {
			if err := c.Err(); err != nil {
				t.Fatal(err)
			}
			proto.Merge(got, c.RangeResponse)
		}
		if len(chunks) < tc.minChunks || len(got.Kvs) != tc.wantKVs || got.More != tc.wantMore || got.Count != n || got.Header.GetRevision() != 2 {
			t.Errorf("limit %d: %d chunks, %d kvs, more %v, count %d, header %v; want >= %d chunks, %d kvs, more %v, count %d at %d",
				tc.limit, len(chunks), len(got.Kvs), got.More, got.Count, got.Header, tc.minChunks, tc.wantKVs, tc.wantMore, n, 2)
		}
		for i, kv := range got.Kvs {
			if want := fmt.Sprintf("/s/%03d", i); string(kv.Key) != want {
				t.Fatalf("limit %d: key %d = %s, want %s", tc.limit, i, kv.Key, want)
			}
		}
	}
}
