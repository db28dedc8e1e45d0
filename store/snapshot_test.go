package store

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

func fill(a *applier, n int) {
	a.apply(&pb.InternalRaftRequest{LeaseGrant: &pb.LeaseGrantRequest{ID: 9, TTL: 60}})
	for i := range n {
		a.put(fmt.Sprintf("k%03d", i%50), fmt.Sprint(i))
	}
	a.apply(&pb.InternalRaftRequest{Put: &pb.PutRequest{Key: []byte("leased"), Lease: 9}})
	a.apply(&pb.InternalRaftRequest{Alarm: &pb.AlarmRequest{Action: pb.AlarmRequest_ACTIVATE, MemberID: 3, Alarm: pb.AlarmType_NOSPACE}})
}

func fingerprint(t *testing.T, s *Store) string {
	t.Helper()
	h, hr, cr, err := s.HashKV(0)
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.Range(&pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}})
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("hash=%d/%d/%d applied=%d keys=%d leases=%v alarms=%v", h, hr, cr, s.AppliedIndex(), r.Count, s.Leases(), s.Alarms())
}

func TestSnapshotRestore(t *testing.T) {
	src := testStore(t, Options{})
	a := &applier{t: t, s: src}
	fill(a, 300) // left uncommitted in the batch: Snapshot must include it
	want := fingerprint(t, src)

	var buf bytes.Buffer
	n, err := src.Snapshot(&buf)
	if err != nil || n != int64(buf.Len()) {
		t.Fatalf("snapshot: %d %v", n, err)
	}
	// It is a plain bbolt file.
	file := filepath.Join(t.TempDir(), "snap.db")
	os.WriteFile(file, buf.Bytes(), 0o600)
	db, err := bolt.Open(file, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("snapshot is not a bbolt file: %v", err)
	}
	db.Close()

	dst := testStore(t, Options{})
	b := &applier{t: t, s: dst}
	// dst is a member that fell behind: its history (empty) is a prefix of
	// src's, and its watch continues into the restored history.
	ws := dst.NewWatchStream()
	ws.Watch(AutoWatchID, WatchRequest{Key: []byte("leased")})
	if err := dst.Restore(bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	if got := fingerprint(t, dst); got != want {
		t.Fatalf("after restore:\n%s\nwant\n%s", got, want)
	}
	// Writes go on from the restored index and revision; watches too.
	b.index = dst.AppliedIndex()
	rev := b.put("leased", "new")
	if rev != src.Rev()+1 {
		t.Fatalf("revision after restore %d, want %d", rev, src.Rev()+1)
	}
	got := ""
	for want := fmt.Sprintf(" PUT leased@%d PUT leased=new@%d", rev-1, rev); got != want; {
		got += " " + evText(recv(t, ws))
		if len(got) > len(want) {
			t.Fatalf("watch after restore: %q, want %q", got, want)
		}
	}
	if err := dst.Restore(bytes.NewReader([]byte("not a bbolt file"))); err == nil {
		t.Fatal("restore of garbage succeeded")
	}
	if got, _ := dst.Range(&pb.RangeRequest{Key: []byte("leased")}); string(got.Kvs[0].Value) != "new" {
		t.Fatalf("a failed restore changed the state: %v", got)
	}
}

func TestDefragment(t *testing.T) {
	s := testStore(t, Options{})
	a := &applier{t: t, s: s}
	commit := func() {
		if err := s.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	// History on disk, then compacted away on disk: free pages inside.
	fill(a, 3000)
	commit()
	a.apply(&pb.InternalRaftRequest{Compaction: &pb.CompactionRequest{Revision: s.Rev()}})
	commit()
	want := fingerprint(t, s)
	before := s.Size()

	// Readers keep working around the defragmentation.
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 100000; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := s.Range(&pb.RangeRequest{Key: []byte("k001")}); err != nil {
				errs <- err
				return
			}
		}
	}()
	err := s.Defragment()
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errs:
		t.Fatalf("range during defragment: %v", err)
	default:
	}
	if got := fingerprint(t, s); got != want {
		t.Fatalf("after defragment:\n%s\nwant\n%s", got, want)
	}
	if after := s.Size(); after >= before {
		t.Fatalf("size %d after defragment, %d before", after, before)
	}
	if s.SizeInUse() <= 0 || s.SizeInUse() > s.Size() {
		t.Fatalf("size in use %d of %d", s.SizeInUse(), s.Size())
	}
	a.put("after", "defrag")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestRestartResumes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	s, err := Open(path, Options{BatchLimit: 7})
	if err != nil {
		t.Fatal(err)
	}
	a := &applier{t: t, s: s}
	fill(a, 100)
	want := fingerprint(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := fingerprint(t, s); got != want {
		t.Fatalf("after restart:\n%s\nwant\n%s", got, want)
	}
	// Replayed entries are skipped.
	res, err := s.Apply(5, &pb.InternalRaftRequest{Put: &pb.PutRequest{Key: []byte("x")}})
	if err != nil || res.Resp != nil || res.Err != nil {
		t.Fatalf("replayed entry: %+v %v", res, err)
	}
	if got := fingerprint(t, s); got != want {
		t.Fatalf("a replayed entry changed the state")
	}
}

// TestCrashReplay drops the open batch (a crash) at every point of a run and
// checks that replaying the entries after AppliedIndex gives the same state
// as the run without a crash.
func TestCrashReplay(t *testing.T) {
	var reqs []*pb.InternalRaftRequest
	reqs = append(reqs, &pb.InternalRaftRequest{LeaseGrant: &pb.LeaseGrantRequest{ID: 1, TTL: 60}})
	for i := range 40 {
		key := []byte(fmt.Sprintf("k%d", i%7))
		switch i % 5 {
		case 3:
			reqs = append(reqs, &pb.InternalRaftRequest{DeleteRange: &pb.DeleteRangeRequest{Key: key}})
		case 4:
			reqs = append(reqs, &pb.InternalRaftRequest{Put: &pb.PutRequest{Key: key, Lease: 1}})
		default:
			reqs = append(reqs, &pb.InternalRaftRequest{Put: &pb.PutRequest{Key: key, Value: []byte(fmt.Sprint(i))}})
		}
		if i == 30 {
			reqs = append(reqs, &pb.InternalRaftRequest{Compaction: &pb.CompactionRequest{Revision: 20}})
		}
	}
	reqs = append(reqs, &pb.InternalRaftRequest{LeaseRevoke: &pb.LeaseRevokeRequest{ID: 1}})

	applyAll := func(s *Store, from int) {
		for i := from; i < len(reqs); i++ {
			if _, err := s.Apply(uint64(i+1), reqs[i]); err != nil {
				t.Fatal(err)
			}
		}
	}
	ref := testStore(t, Options{})
	applyAll(ref, 0)
	want := fingerprint(t, ref)

	for crashAt := 1; crashAt < len(reqs); crashAt += 3 {
		path := filepath.Join(t.TempDir(), "db")
		s, err := Open(path, Options{BatchLimit: 4})
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < crashAt; i++ {
			s.Apply(uint64(i+1), reqs[i])
		}
		durable := s.DurableIndex()
		s.crash()
		s, err = Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if s.AppliedIndex() != durable {
			t.Fatalf("crash at %d: applied index %d after reopen, durable index was %d", crashAt, s.AppliedIndex(), durable)
		}
		if got := int(s.AppliedIndex()); got > crashAt || got < crashAt-4 {
			t.Fatalf("crash at %d: applied index %d", crashAt, got)
		}
		// Raft replays everything after the applied index, then goes on.
		applyAll(s, int(s.AppliedIndex()))
		if got := fingerprint(t, s); got != want {
			t.Fatalf("crash at %d, replayed:\n%s\nwant\n%s", crashAt, got, want)
		}
		s.Close()
	}
}

// TestBatchCommitsOnInterval checks that a quiet store still makes its batch
// durable within BatchInterval, without Close.
func TestBatchCommitsOnInterval(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	s, err := Open(path, Options{BatchInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	a := &applier{t: t, s: s}
	for i := range 3 {
		a.put("k", fmt.Sprint(i))
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.mu.RLock()
		pending := s.be.pending
		s.mu.RUnlock()
		if pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("batch not committed within 10s")
		}
		time.Sleep(5 * time.Millisecond) // polling a condition, with a deadline
	}
	if s.DurableIndex() != 3 {
		t.Fatalf("durable index %d after the batch commit, want 3", s.DurableIndex())
	}
	s.crash()
	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.AppliedIndex() != 3 || s.Rev() != 4 {
		t.Fatalf("after crash: applied %d rev %d, want 3 and 4", s.AppliedIndex(), s.Rev())
	}
}

// TestReadsSeeUncommitted reads applied writes that are partly committed and
// partly still in the open batch: Range, history reads and watch catch-up
// must see both.
func TestReadsSeeUncommitted(t *testing.T) {
	s := testStore(t, Options{BatchInterval: time.Hour})
	a := &applier{t: t, s: s}
	a.put("k", "committed")
	if err := s.Commit(); err != nil {
		t.Fatal(err)
	}
	a.put("k", "buffered")
	a.put("j", "buffered")
	s.mu.RLock()
	pending := s.be.pending
	s.mu.RUnlock()
	if pending != 2 {
		t.Fatalf("pending %d, want 2 (the test needs an open batch)", pending)
	}
	for rev, want := range map[int64]string{2: "committed", 3: "buffered", 0: "buffered"} {
		r, err := s.Range(&pb.RangeRequest{Key: []byte("k"), Revision: rev})
		if err != nil || len(r.Kvs) != 1 || string(r.Kvs[0].Value) != want {
			t.Fatalf("range at %d: %v %v, want %s", rev, r, err, want)
		}
	}
	ws := s.NewWatchStream()
	ws.Watch(AutoWatchID, WatchRequest{Key: []byte("a"), End: []byte("z"), StartRev: 2, PrevKV: true})
	got := ""
	want := " PUT k=committed@2 PUT k=buffered@3 (prev committed@2) PUT j=buffered@4"
	for len(got) < len(want) {
		got += " " + evText(recv(t, ws))
	}
	if got != want {
		t.Fatalf("history: %q, want %q", got, want)
	}
}
