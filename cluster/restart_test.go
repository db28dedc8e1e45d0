package cluster

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/storage/wal"
	"go.uber.org/zap"
)

// TestRestart closes a member and starts it again on the same data dir:
// every acknowledged write and lease is there, the IDs are the same, and
// revisions continue.
func TestRestart(t *testing.T) {
	for _, tc := range []struct {
		name          string
		snapshotCount uint64
	}{
		{"log only", 0},
		{"with snapshots", 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := testConfig(t, dir)
			cfg.SnapshotCount = tc.snapshotCount
			m := start(t, cfg)
			cli := client(t, m)
			c := ctx(t)
			g, err := cli.Grant(c, 600)
			if err != nil {
				t.Fatal(err)
			}
			const n = 50
			var last int64
			for i := range n {
				opts := []clientv3.OpOption{}
				if i%10 == 0 {
					opts = append(opts, clientv3.WithLease(g.ID))
				}
				resp, err := cli.Put(c, fmt.Sprintf("/r/%02d", i), fmt.Sprint(i), opts...)
				if err != nil {
					t.Fatal(err)
				}
				last = resp.Header.Revision
			}
			if tc.snapshotCount > 0 {
				eventually(t, 5*time.Second, "a snapshot file", func() bool {
					names, _ := filepath.Glob(filepath.Join(dir, "member", "snap", "*.snap"))
					return len(names) > 0
				})
			}
			id, cid := m.MemberID(), m.ClusterID()
			cli.Close()
			if err := m.Close(); err != nil {
				t.Fatalf("close: %v", err)
			}

			m2 := start(t, testConfig(t, dir))
			cli2 := client(t, m2)
			if first, _ := m2.raftStorage.FirstIndex(); tc.snapshotCount > 0 && first <= 1 {
				t.Errorf("raft log after restart starts at %d: the snapshot was not loaded", first)
			}
			if m2.MemberID() != id || m2.ClusterID() != cid {
				t.Errorf("IDs after restart = %x/%x, want %x/%x", m2.MemberID(), m2.ClusterID(), id, cid)
			}
			get, err := cli2.Get(c, "/r/", clientv3.WithPrefix())
			if err != nil {
				t.Fatal(err)
			}
			if len(get.Kvs) != n || get.Header.Revision != last {
				t.Fatalf("after restart: %d keys at revision %d, want %d at %d", len(get.Kvs), get.Header.Revision, n, last)
			}
			ttl, err := cli2.TimeToLive(c, g.ID, clientv3.WithAttachedKeys())
			if err != nil || ttl.TTL <= 0 || len(ttl.Keys) != n/10 {
				t.Fatalf("lease after restart = %+v, %v; want alive with %d keys", ttl, err, n/10)
			}
			// History survives too: a watch from before the restart
			// replays every put.
			wc := cli2.Watch(c, "/r/", clientv3.WithPrefix(), clientv3.WithRev(2))
			for seen := 0; seen < n; {
				wr := next(t, wc)
				if err := wr.Err(); err != nil {
					t.Fatal(err)
				}
				seen += len(wr.Events)
			}
			put, err := cli2.Put(c, "/r/next", "x")
			if err != nil || put.Header.Revision != last+1 {
				t.Fatalf("put after restart = %v, %v; want revision %d", put, err, last+1)
			}
		})
	}
}

// TestRestartRepairsTornWAL zeroes the data of the WAL's last record, as a
// crash in the middle of a write leaves an unwritten sector: the member
// repairs the tail and starts with every write whose entry is intact.
func TestRestartRepairsTornWAL(t *testing.T) {
	dir := t.TempDir()
	m := start(t, testConfig(t, dir))
	cli := client(t, m)
	c := ctx(t)
	const n = 20
	for i := range n {
		if _, err := cli.Put(c, fmt.Sprintf("/t/%02d", i), "v"); err != nil {
			t.Fatal(err)
		}
	}
	cli.Close()
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	names, err := filepath.Glob(filepath.Join(dir, "member", "wal", "*.wal"))
	if err != nil || len(names) == 0 {
		t.Fatalf("WAL files: %v, %v", names, err)
	}
	last := names[len(names)-1]
	b, err := os.ReadFile(last)
	if err != nil {
		t.Fatal(err)
	}
	// Walk the records (an 8-byte little-endian frame: data length in the
	// low 56 bits, padding in the top byte when its high bit is set) to the
	// last one, the HardState that committed the last put.
	var lastOff, lastLen int
	for off := 0; off+8 <= len(b); {
		frame := binary.LittleEndian.Uint64(b[off:])
		if frame == 0 {
			break
		}
		size := int(frame & 0xffffffffffffff)
		pad := 0
		if frame&(1<<63) != 0 {
			pad = int((frame >> 56) & 0x7)
		}
		lastOff, lastLen = off, size
		off += 8 + size + pad
	}
	if lastLen == 0 {
		t.Fatal("no WAL record found")
	}
	f, err := os.OpenFile(last, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(make([]byte, lastLen), int64(lastOff+8)); err != nil {
		t.Fatal(err)
	}
	f.Close()

	m2 := start(t, testConfig(t, dir))
	get, err := client(t, m2).Get(c, "/t/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || get.Count != n {
		t.Fatalf("after repair: %v, %v; want %d keys", get, err, n)
	}
}

// TestRestartOverEmptyWAL starts on a data dir where a first start died
// right after creating its WAL: the member bootstraps again instead of
// waiting forever for a configuration it never saved.
func TestRestartOverEmptyWAL(t *testing.T) {
	dir := t.TempDir()
	w, err := wal.Create(zap.NewNop(), filepath.Join(dir, "member", "wal"), []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	m := start(t, testConfig(t, dir))
	if _, err := client(t, m).Put(ctx(t), "k", "v"); err != nil {
		t.Fatalf("put: %v", err)
	}
}
