package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// keyEntries counts the revisions in the key bucket.
func keyEntries(s *Store) int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n := 0
	c := s.be.keyB.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		n++
	}
	return n
}

func waitCompaction(t *testing.T, s *Store) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.WaitCompaction(ctx); err != nil {
		t.Fatalf("wait for the physical compaction: %v", err)
	}
}

// history writes rounds revisions of each of keys keys.
func history(a *applier, keys, rounds int) {
	for r := range rounds {
		for k := range keys {
			a.put(fmt.Sprintf("/h/%04d", k), fmt.Sprint(r))
		}
	}
}

// TestCompactionIsBackground: applying a compaction of many revisions
// returns before they are deleted, writes go on meanwhile, reads below the
// revision fail at once, and the deletion finishes in the background,
// leaving exactly the kept revisions.
func TestCompactionIsBackground(t *testing.T) {
	s := testStore(t, Options{})
	a := &applier{t: t, s: s}
	history(a, 500, 10) // 5,000 revisions, more than a few batches
	rev := s.Rev()
	a.apply(&pb.InternalRaftRequest{Compaction: &pb.CompactionRequest{Revision: rev}})
	s.mu.RLock()
	pending := s.compactJob != nil
	s.mu.RUnlock()
	if !pending {
		t.Fatal("the compaction's deletions were done inside Apply")
	}
	a.put("/during", "x") // not held up
	if _, err := s.Range(&pb.RangeRequest{Key: []byte("/h/0001"), Revision: rev - 1}); !errors.Is(err, ErrCompacted) {
		t.Errorf("read below the compaction while it runs: %v, want %v", err, ErrCompacted)
	}
	waitCompaction(t, s)
	if n := keyEntries(s); n != 501 {
		t.Errorf("%d revisions on disk after the compaction, want 501 (the newest of each key, and /during)", n)
	}
	resp, err := s.Range(&pb.RangeRequest{Key: []byte("/h/0499")})
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "9" {
		t.Errorf("newest revision after the compaction: %v %v", resp, err)
	}
}

// TestCompactionResumesOnOpen: a store closed before the physical half
// finished finishes it when opened again, and counts the compaction
// revision from the start.
func TestCompactionResumesOnOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	a := &applier{t: t, s: s}
	history(a, 500, 10)
	rev := s.Rev()
	a.apply(&pb.InternalRaftRequest{Compaction: &pb.CompactionRequest{Revision: rev}})
	if err := s.Close(); err != nil { // commits the batch: scheduled, not finished
		t.Fatal(err)
	}
	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := s.CompactRev(); got != rev {
		t.Errorf("compaction revision after reopening: %d, want %d", got, rev)
	}
	if _, err := s.Range(&pb.RangeRequest{Key: []byte("/h/0001"), Revision: rev - 1}); !errors.Is(err, ErrCompacted) {
		t.Errorf("read below the compaction after reopening: %v, want %v", err, ErrCompacted)
	}
	waitCompaction(t, s)
	if n := keyEntries(s); n != 500 {
		t.Errorf("%d revisions on disk once the resumed compaction finished, want 500", n)
	}
}

// TestHashWaitsForCompaction: two stores with the same history, one whose
// compaction finished and one whose compaction just began, hash alike.
func TestHashWaitsForCompaction(t *testing.T) {
	var stores [2]*Store
	for i := range stores {
		stores[i] = testStore(t, Options{})
		a := &applier{t: t, s: stores[i]}
		history(a, 300, 5)
		a.apply(&pb.InternalRaftRequest{Compaction: &pb.CompactionRequest{Revision: stores[i].Rev() - 100}})
	}
	waitCompaction(t, stores[0])
	h0, _, err0 := stores[0].Hash()
	h1, _, err1 := stores[1].Hash()
	kv0, _, _, _ := stores[0].HashKV(0)
	kv1, _, _, _ := stores[1].HashKV(0)
	if err0 != nil || err1 != nil || h0 != h1 || kv0 != kv1 {
		t.Errorf("Hash %d/%d (%v, %v), HashKV %d/%d: want equal", h0, h1, err0, err1, kv0, kv1)
	}
}

// TestCompactionStepsAreBounded: each step of the physical half looks at
// no more than compactBatch revisions, dropped or kept, so a long run of
// kept revisions (here the newest of 3,000 keys, after 3,000 to drop) is
// split over steps like any other, and the steps together drop exactly
// the old revisions.
func TestCompactionStepsAreBounded(t *testing.T) {
	s := testStore(t, Options{})
	a := &applier{t: t, s: s}
	history(a, 3000, 2)
	rev := s.Rev()
	s.mu.RLock()
	j := &compactJob{rev: rev, keep: s.idx.keep(rev)}
	c := s.be.keyB.Cursor()
	steps, dropped := 0, 0
	for end := false; !end; steps++ {
		var drop [][]byte
		before := j.next
		drop, end = j.nextBatch(c)
		dropped += len(drop)
		if !end && bytes.Equal(before, j.next) {
			t.Fatalf("step %d did not move on", steps)
		}
	}
	s.mu.RUnlock()
	if steps != 6 || dropped != 3000 {
		t.Errorf("%d steps dropping %d revisions over 6,000; want 6 steps of 1,000 dropping the 3,000 old ones", steps, dropped)
	}
}

// TestCompactionAtDeleteThenPut: a txn deletes a key and puts it again,
// and the store is compacted at that txn's revision. The put is the key's
// state there: the compaction keeps it on disk, and reads find it once the
// physical half is done (etcd v3.7.3 loses it and exits on the next range).
func TestCompactionAtDeleteThenPut(t *testing.T) {
	s := testStore(t, Options{})
	a := &applier{t: t, s: s}
	a.put("a", "1")
	a.put("b", "2")
	a.apply(&pb.InternalRaftRequest{Txn: &pb.TxnRequest{Success: []*pb.RequestOp{
		{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: &pb.DeleteRangeRequest{Key: []byte("a"), RangeEnd: []byte{0}}}},
		{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("a"), Value: []byte("again")}}},
	}}})
	rev := s.Rev()
	a.apply(&pb.InternalRaftRequest{Compaction: &pb.CompactionRequest{Revision: rev}})
	waitCompaction(t, s)
	if err := s.Commit(); err != nil {
		t.Fatal(err)
	}
	resp, err := s.Range(&pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}})
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Key) != "a" || string(resp.Kvs[0].Value) != "again" || resp.Kvs[0].CreateRevision != rev {
		t.Fatalf("range after compacting at the delete-then-put: %v, %v; want a=again created at %d", resp, err, rev)
	}
	// On disk: the put, and b's tombstone at the compaction revision
	// (kept, as every tombstone exactly there is); a's tombstone is gone.
	var onDisk []string
	s.mu.RLock()
	c := s.be.keyB.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		r, tomb := parseRevKey(k)
		kv, err := decodeKV(v)
		if err != nil {
			t.Fatal(err)
		}
		onDisk = append(onDisk, fmt.Sprintf("%d_%d %s tomb=%v", r.main, r.sub, kv.Key, tomb))
	}
	s.mu.RUnlock()
	if want := []string{fmt.Sprintf("%d_1 b tomb=true", rev), fmt.Sprintf("%d_2 a tomb=false", rev)}; !slices.Equal(onDisk, want) {
		t.Errorf("on disk after the compaction: %q, want %q", onDisk, want)
	}
	// And after a restart, from the file alone.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(s.path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if resp, err := s2.Range(&pb.RangeRequest{Key: []byte("a")}); err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "again" {
		t.Errorf("range after reopening: %v, %v", resp, err)
	}
}
