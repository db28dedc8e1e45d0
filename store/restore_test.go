package store

import (
	"bytes"
	"crypto/sha256"
	"os"
	"path/filepath"
	"strings"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// snapshotFile writes s's snapshot with its SHA-256 trailer, as a member
// streams it.
func snapshotFile(t *testing.T, s *Store) string {
	t.Helper()
	var buf bytes.Buffer
	if _, err := s.Snapshot(&buf); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(buf.Bytes())
	path := filepath.Join(t.TempDir(), "snap.db")
	if err := os.WriteFile(path, append(buf.Bytes(), sum[:]...), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// A restored file opens as a store with the snapshot's keys and
// revisions, a lease, and no applied index: a new cluster's log starts
// over. Refused: a corrupted snapshot, a target that exists; accepted
// with skipHashCheck: a bare database file.
func TestRestoreFile(t *testing.T) {
	src := testStore(t, Options{})
	a := &applier{t: t, s: src}
	a.apply(&pb.InternalRaftRequest{LeaseGrant: &pb.LeaseGrantRequest{ID: 7, TTL: 60}})
	a.put("/a", "1")
	rev := a.put("/b", "2")
	snap := snapshotFile(t, src)

	db := filepath.Join(t.TempDir(), "db")
	if err := RestoreFile(snap, db, false, 0); err != nil {
		t.Fatal(err)
	}
	info, err := Status(db)
	if err != nil || info.Revision != rev || info.TotalKey != 2 || info.Version != StorageVersion {
		t.Errorf("Status = %+v, %v; want revision %d, 2 keys, version %s", info, err, rev, StorageVersion)
	}
	s, err := Open(db, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s.AppliedIndex() != 0 || s.Rev() != rev || len(s.Leases()) != 1 {
		t.Errorf("restored store: applied index %d, revision %d, %d leases; want 0, %d, 1", s.AppliedIndex(), s.Rev(), len(s.Leases()), rev)
	}
	if resp, err := s.Range(&pb.RangeRequest{Key: []byte("/b")}); err != nil || len(resp.Kvs) != 1 || resp.Kvs[0].ModRevision != rev {
		t.Errorf("restored /b: %v, %v", resp, err)
	}
	s.Close()

	if err := RestoreFile(snap, db, false, 0); err == nil || !strings.Contains(err.Error(), "already there") {
		t.Errorf("restore over a database: %v", err)
	}
	b, _ := os.ReadFile(snap)
	b[len(b)/3] ^= 1
	bad := filepath.Join(t.TempDir(), "bad.db")
	os.WriteFile(bad, b, 0o600)
	other := filepath.Join(t.TempDir(), "db")
	if err := RestoreFile(bad, other, false, 0); err == nil || !strings.Contains(err.Error(), "SHA-256 mismatch") {
		t.Errorf("restore of a corrupted snapshot: %v", err)
	}
	if _, err := os.Stat(other); !os.IsNotExist(err) {
		t.Errorf("a refused restore left %s", other)
	}
	// A bare database (the snapshot without its trailer) needs
	// skipHashCheck.
	bare := filepath.Join(t.TempDir(), "bare.db")
	good, _ := os.ReadFile(snap)
	os.WriteFile(bare, good[:len(good)-sha256.Size], 0o600)
	if err := RestoreFile(bare, filepath.Join(t.TempDir(), "db"), false, 0); err == nil || !strings.Contains(err.Error(), "no SHA-256 trailer") {
		t.Errorf("restore of a bare database without skipHashCheck: %v", err)
	}
	if err := RestoreFile(bare, filepath.Join(t.TempDir(), "db"), true, 0); err != nil {
		t.Errorf("restore of a bare database with skipHashCheck: %v", err)
	}
}

// With a bump, the restored store opens that many revisions on, compacted
// there: reads and watches from before fail with ErrCompacted, the keys
// are as they were, and the next write comes after the bump.
func TestRestoreFileBump(t *testing.T) {
	src := testStore(t, Options{})
	a := &applier{t: t, s: src}
	a.put("/a", "1")
	a.put("/a", "2")
	rev := a.put("/b", "3")
	snap := snapshotFile(t, src)
	db := filepath.Join(t.TempDir(), "db")
	if err := RestoreFile(snap, db, false, 1000); err != nil {
		t.Fatal(err)
	}
	s, err := Open(db, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Rev() != rev+1000 || s.CompactRev() != rev+1000 {
		t.Fatalf("restored with a bump of 1000: revision %d, compacted at %d; want both %d", s.Rev(), s.CompactRev(), rev+1000)
	}
	if _, err := s.Range(&pb.RangeRequest{Key: []byte("/a"), Revision: rev}); err != ErrCompacted {
		t.Errorf("read at the snapshot's revision: %v, want %v", err, ErrCompacted)
	}
	ws := s.NewWatchStream()
	defer ws.Close()
	if _, err := ws.Watch(AutoWatchID, WatchRequest{Key: []byte("/a"), StartRev: rev + 1}); err != nil {
		t.Fatal(err)
	}
	if r := <-ws.Chan(); !r.Canceled || r.CompactRevision != rev+1000 {
		t.Errorf("watch from past the snapshot's revision: %+v, want cancelled, compacted at %d", r, rev+1000)
	}
	resp, err := s.Range(&pb.RangeRequest{Key: []byte("/a")})
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "2" {
		t.Errorf("/a after the bump: %v, %v", resp, err)
	}
	b := &applier{t: t, s: s}
	if next := b.put("/c", "4"); next != rev+1001 {
		t.Errorf("first write after the bump at revision %d, want %d", next, rev+1001)
	}
}
