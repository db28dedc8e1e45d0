package cluster

import (
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/snapshot"
	"go.uber.org/zap"
)

func TestStatusHashKVDefragment(t *testing.T) {
	m := start(t, testConfig(t, t.TempDir()))
	cli := client(t, m)
	c := ctx(t)
	ep := m.ClientURLs()[0]
	for _, v := range []string{"1", "2"} {
		if _, err := cli.Put(c, "k", v); err != nil {
			t.Fatal(err)
		}
	}
	st, err := cli.Status(c, ep)
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	if st.Leader != m.MemberID() || st.RaftTerm == 0 || st.RaftIndex == 0 || st.RaftAppliedIndex > st.RaftIndex ||
		st.DbSize == 0 || st.DbSizeInUse == 0 || st.Version == "" || len(st.Errors) != 0 || st.Header.Revision != 3 {
		t.Fatalf("status = %+v", st)
	}
	// An entry the member proposed itself (its attributes, the cluster
	// version) may be committed and not yet applied; an idle member's
	// applied index reaches its commit index.
	for deadline := time.Now().Add(5 * time.Second); st.RaftAppliedIndex != st.RaftIndex; {
		if time.Now().After(deadline) {
			t.Fatalf("applied index stays at %d, commit index %d", st.RaftAppliedIndex, st.RaftIndex)
		}
		time.Sleep(5 * time.Millisecond)
		if st, err = cli.Status(c, ep); err != nil {
			t.Fatalf("status: %v", err)
		}
	}

	h1, err := cli.HashKV(c, ep, 0)
	if err != nil {
		t.Fatalf("hashkv: %v", err)
	}
	if h1.HashRevision != 3 {
		t.Errorf("hash revision = %d, want 3", h1.HashRevision)
	}
	if _, err := cli.Defragment(c, ep); err != nil {
		t.Fatalf("defragment: %v", err)
	}
	h2, err := cli.HashKV(c, ep, 0)
	if err != nil || h2.Hash != h1.Hash {
		t.Fatalf("hash after defragment = %v, %v; want %d", h2, err, h1.Hash)
	}
	if _, err := cli.Put(c, "k", "3"); err != nil {
		t.Fatal(err)
	}
	h3, err := cli.HashKV(c, ep, 0)
	if err != nil || h3.Hash == h1.Hash {
		t.Fatalf("hash after a put = %v, %v; want a new hash", h3, err)
	}
	if _, err := cli.MoveLeader(c, m.MemberID()); err != nil {
		t.Errorf("move leader to itself: %v", err)
	}
}

// TestSnapshot saves a snapshot the way etcdctl does and checks what
// etcdutl checks: the sha256 appended to the db, and a readable bbolt file.
func TestSnapshot(t *testing.T) {
	m := start(t, testConfig(t, t.TempDir()))
	cli := client(t, m)
	if _, err := cli.Put(ctx(t), "snap", "shot"); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "backup.db")
	if _, err := snapshot.SaveWithVersion(ctx(t), zap.NewNop(), clientv3.Config{Endpoints: m.ClientURLs()}, path); err != nil {
		t.Fatalf("snapshot save: %v", err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	db, sum := b[:len(b)-sha256.Size], b[len(b)-sha256.Size:]
	if got := sha256.Sum256(db); string(got[:]) != string(sum) {
		t.Fatal("snapshot sha256 does not match its data")
	}
	dbPath := filepath.Join(t.TempDir(), "db")
	if err := os.WriteFile(dbPath, db, 0o600); err != nil {
		t.Fatal(err)
	}
	bdb, err := bolt.Open(dbPath, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("open snapshot as bbolt: %v", err)
	}
	defer bdb.Close()
	found := false
	if err := bdb.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			return b.ForEach(func(k, v []byte) error {
				found = found || strings.Contains(string(v), "shot")
				return nil
			})
		})
	}); err != nil {
		t.Fatal(err)
	}
	if !found {
		t.Error("snapshot does not hold the written value")
	}
}

func TestAlarm(t *testing.T) {
	m := start(t, testConfig(t, t.TempDir()))
	cli := client(t, m)
	c := ctx(t)
	mc := pb.NewMaintenanceClient(cli.ActiveConnection())
	if _, err := mc.Alarm(c, &pb.AlarmRequest{Action: pb.AlarmRequest_ACTIVATE, MemberID: m.MemberID(), Alarm: pb.AlarmType_NOSPACE}); err != nil {
		t.Fatalf("activate: %v", err)
	}
	list, err := cli.AlarmList(c)
	if err != nil || len(list.Alarms) != 1 || list.Alarms[0].Alarm != pb.AlarmType_NOSPACE {
		t.Fatalf("alarms = %v, %v; want NOSPACE", list, err)
	}
	if _, err := cli.Put(c, "k", "v"); !errors.Is(err, rpctypes.ErrNoSpace) {
		t.Fatalf("put under NOSPACE: %v, want %v", err, rpctypes.ErrNoSpace)
	}
	if _, err := cli.Get(c, "k"); err != nil {
		t.Fatalf("get under NOSPACE: %v", err)
	}
	if _, err := cli.Delete(c, "k"); err != nil {
		t.Fatalf("delete under NOSPACE: %v", err)
	}
	st, err := cli.Status(c, m.ClientURLs()[0])
	if err != nil || len(st.Errors) != 1 || !strings.Contains(st.Errors[0], "NOSPACE") {
		t.Fatalf("status errors = %v, %v; want the alarm", st.Errors, err)
	}
	if _, err := cli.AlarmDisarm(c, &clientv3.AlarmMember{MemberID: m.MemberID(), Alarm: pb.AlarmType_NOSPACE}); err != nil {
		t.Fatalf("disarm: %v", err)
	}
	if _, err := cli.Put(c, "k", "v"); err != nil {
		t.Fatalf("put after disarm: %v", err)
	}

	// CORRUPT stops every write until disarmed.
	corrupt := &pb.AlarmRequest{Action: pb.AlarmRequest_ACTIVATE, MemberID: m.MemberID(), Alarm: pb.AlarmType_CORRUPT}
	if _, err := mc.Alarm(c, corrupt); err != nil {
		t.Fatalf("activate: %v", err)
	}
	if _, err := cli.Delete(c, "k"); !errors.Is(err, rpctypes.ErrCorrupt) {
		t.Fatalf("delete under CORRUPT: %v, want %v", err, rpctypes.ErrCorrupt)
	}
	if _, err := cli.AlarmDisarm(c, &clientv3.AlarmMember{MemberID: m.MemberID(), Alarm: pb.AlarmType_CORRUPT}); err != nil {
		t.Fatalf("disarm: %v", err)
	}
	if _, err := cli.Delete(c, "k"); err != nil {
		t.Fatalf("delete after disarm: %v", err)
	}
}

// TestQuota fills the backend past its quota: the write that would pass it
// fails with NOSPACE and raises the alarm; reads still work.
func TestQuota(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.QuotaBackendBytes = 2 << 20
	m := start(t, cfg)
	cli := client(t, m)
	c := ctx(t)
	val := strings.Repeat("v", 100*1024)
	var err error
	n := 0
	for ; n < 100; n++ {
		if _, err = cli.Put(c, "k"+string(rune('a'+n%26))+string(rune('a'+n/26)), val); err != nil {
			break
		}
	}
	if !errors.Is(err, rpctypes.ErrNoSpace) {
		t.Fatalf("after %d puts of 100 KiB under a 2 MiB quota: %v, want %v", n, err, rpctypes.ErrNoSpace)
	}
	list, lerr := cli.AlarmList(c)
	if lerr != nil || len(list.Alarms) != 1 || list.Alarms[0].Alarm != pb.AlarmType_NOSPACE {
		t.Fatalf("alarms = %v, %v; want NOSPACE raised", list, lerr)
	}
	if _, err := cli.Put(c, "tiny", "x"); !errors.Is(err, rpctypes.ErrNoSpace) {
		t.Fatalf("small put under NOSPACE: %v, want %v", err, rpctypes.ErrNoSpace)
	}
	if _, err := cli.Grant(c, 60); !errors.Is(err, rpctypes.ErrNoSpace) {
		t.Fatalf("lease grant under NOSPACE: %v, want %v", err, rpctypes.ErrNoSpace)
	}
	get, gerr := cli.Get(c, "k", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if gerr != nil || get.Count != int64(n) {
		t.Fatalf("count under NOSPACE = %v, %v; want %d", get, gerr, n)
	}
}

// TestAlarmsReplicate raises an alarm through one member of three: every
// member lists it, reports it in Status (whose other fields agree across
// members), and refuses puts; disarmed through another member, it is gone
// everywhere.
func TestAlarmsReplicate(t *testing.T) {
	c := newTestCluster(t, 3)
	lead := c.waitLeader()
	a, b := (lead+1)%3, (lead+2)%3
	mc := pb.NewMaintenanceClient(c.client(a).ActiveConnection())
	alarm := &pb.AlarmRequest{Action: pb.AlarmRequest_ACTIVATE, MemberID: c.member(a).MemberID(), Alarm: pb.AlarmType_NOSPACE}
	if _, err := mc.Alarm(ctx(t), alarm); err != nil {
		t.Fatalf("activate NOSPACE through member %d: %v", a+1, err)
	}
	c.waitConverged()
	var sts []*clientv3.StatusResponse
	for i := range 3 {
		cli := c.client(i)
		list, err := cli.AlarmList(ctx(t))
		if err != nil || len(list.Alarms) != 1 || list.Alarms[0].Alarm != pb.AlarmType_NOSPACE || list.Alarms[0].MemberID != alarm.MemberID {
			t.Fatalf("alarms through member %d = %v, %v; want NOSPACE of %x", i+1, list, err, alarm.MemberID)
		}
		st, err := cli.Status(ctx(t), c.member(i).ClientURLs()[0])
		if err != nil {
			t.Fatalf("status of member %d: %v", i+1, err)
		}
		if len(st.Errors) != 1 || !strings.Contains(st.Errors[0], "NOSPACE") || st.Header.MemberId != c.member(i).MemberID() ||
			st.Header.ClusterId != c.member(i).ClusterID() || st.Leader != c.member(lead).MemberID() || st.RaftTerm == 0 ||
			st.RaftIndex == 0 || st.RaftAppliedIndex < st.RaftIndex || st.DbSize == 0 || st.DbSizeInUse == 0 ||
			st.DbSizeQuota != DefaultQuotaBackendBytes || st.Version == "" || st.IsLearner {
			t.Fatalf("status of member %d = %+v", i+1, st)
		}
		sts = append(sts, st)
	}
	for i, st := range sts[1:] {
		if st.Header.ClusterId != sts[0].Header.ClusterId || st.RaftTerm != sts[0].RaftTerm || st.RaftIndex != sts[0].RaftIndex ||
			st.RaftAppliedIndex != sts[0].RaftAppliedIndex || st.Header.Revision != sts[0].Header.Revision {
			t.Fatalf("status of member %d = %+v, member 1's %+v: cluster, term, indexes and revision differ", i+2, st, sts[0])
		}
	}
	for i := range 3 {
		if _, err := c.client(i).Put(ctx(t), "/k", "v"); !errors.Is(err, rpctypes.ErrNoSpace) {
			t.Fatalf("put through member %d under NOSPACE: %v, want %v", i+1, err, rpctypes.ErrNoSpace)
		}
	}
	if _, err := c.client(b).AlarmDisarm(ctx(t), &clientv3.AlarmMember{MemberID: alarm.MemberID, Alarm: pb.AlarmType_NOSPACE}); err != nil {
		t.Fatalf("disarm through member %d: %v", b+1, err)
	}
	c.waitConverged()
	for i := range 3 {
		list, err := c.client(i).AlarmList(ctx(t))
		if err != nil || len(list.Alarms) != 0 {
			t.Fatalf("alarms through member %d after disarm = %v, %v; want none", i+1, list, err)
		}
		st, err := c.client(i).Status(ctx(t), c.member(i).ClientURLs()[0])
		if err != nil || len(st.Errors) != 0 {
			t.Fatalf("status of member %d after disarm = %+v, %v; want no errors", i+1, st, err)
		}
		if _, err := c.client(i).Put(ctx(t), "/k", "v"); err != nil {
			t.Fatalf("put through member %d after disarm: %v", i+1, err)
		}
	}
}
