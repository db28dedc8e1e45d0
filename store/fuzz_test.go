package store

import (
	"bytes"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// model is the keyspace as a plain map, kept per revision.
type model struct {
	rev, compact int64
	kvs          map[string]*mvccpb.KeyValue
	history      map[int64]map[string]*mvccpb.KeyValue
	leases       map[int64]bool
	// events is every event so far, as "rev TYPE key[=value]".
	events []string
}

func (m *model) write(changes func(next int64) bool) {
	next := m.rev + 1
	if changes(next) {
		m.rev = next
		m.history[next] = maps.Clone(m.kvs)
	}
}

func (m *model) put(key string, val []byte, lease, rev int64) {
	kv := &mvccpb.KeyValue{Key: []byte(key), Value: val, CreateRevision: rev, ModRevision: rev, Version: 1, Lease: lease}
	if old := m.kvs[key]; old != nil {
		kv.CreateRevision, kv.Version = old.CreateRevision, old.Version+1
	}
	m.kvs[key] = kv
	m.events = append(m.events, fmt.Sprintf("%d PUT %s=%x", rev, key, val))
}

// del deletes the keys pick selects, in key order, at revision rev.
func (m *model) del(rev int64, pick func(k string, kv *mvccpb.KeyValue) bool) bool {
	n := 0
	for _, k := range slices.Sorted(maps.Keys(m.kvs)) {
		if pick(k, m.kvs[k]) {
			delete(m.kvs, k)
			m.events = append(m.events, fmt.Sprintf("%d DELETE %s", rev, k))
			n++
		}
	}
	return n > 0
}

// watchAll watches every key from rev on.
func watchAll(t *testing.T, s *Store, rev int64) *WatchStream {
	ws := s.NewWatchStream()
	if _, err := ws.Watch(AutoWatchID, WatchRequest{Key: []byte{0}, End: []byte{0}, StartRev: rev}); err != nil {
		t.Fatal(err)
	}
	return ws
}

// drain reads the watch until it has seen every event of the model.
func drain(t *testing.T, ws *WatchStream, m *model, got *[]string) {
	deadline := time.After(10 * time.Second)
	for len(*got) < len(m.events) {
		select {
		case r := <-ws.Chan():
			for _, ev := range r.Events {
				e := fmt.Sprintf("%d %s %s", ev.Kv.ModRevision, ev.Type, ev.Kv.Key)
				if ev.Type == mvccpb.PUT {
					e += fmt.Sprintf("=%x", ev.Kv.Value)
				}
				*got = append(*got, e)
			}
		case <-deadline:
			t.Fatalf("watch stalled after %d of %d events", len(*got), len(m.events))
		}
	}
	if !slices.Equal(*got, m.events) {
		t.Fatalf("watch events:\n%v\nwant\n%v", *got, m.events)
	}
}

func fuzzKey(b byte) string { return fmt.Sprintf("k%d", b%8) }

// FuzzApply feeds random sequences of requests to Apply and checks the
// store against the model: no panic or fatal error, the revision moves by
// one per changing write, and Range (now and at old revisions) agrees.
func FuzzApply(f *testing.F) {
	f.Add([]byte{0, 1, 2, 0, 2, 3, 1, 1, 0, 4, 1, 1})
	f.Add([]byte{5, 1, 0, 0, 0, 1, 1, 0, 6, 1, 0, 0, 3, 2, 0, 0, 7, 3, 0, 0})
	f.Add([]byte{0, 0, 1, 0, 0, 1, 2, 0, 0, 2, 3, 0, 4, 3, 0, 0, 2, 0, 5, 0, 0, 1, 1, 1})
	defer func(n int) { watchChanSize = n }(watchChanSize)
	watchChanSize = 4
	// Many writes before the watch is read: it must catch up from the
	// backend, across a restart.
	var many []byte
	for i := range 40 {
		many = append(many, byte(i%4), byte(i), byte(i*7), byte(i))
		if i == 25 {
			many = append(many, 7, 0, 0, 0)
		}
	}
	f.Add(many)
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Open(filepath.Join(t.TempDir(), "db"), Options{BatchLimit: 3, noSync: true})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { s.Close() }()
		m := &model{rev: 1, compact: -1, kvs: map[string]*mvccpb.KeyValue{}, history: map[int64]map[string]*mvccpb.KeyValue{1: {}}, leases: map[int64]bool{}}
		index := uint64(0)
		// A watch on every key must see exactly the model's events. It is
		// read only at restarts, compactions and the end, through a small
		// channel, so it falls behind and catches up from the backend.
		ws := watchAll(t, s, 0)
		var seen []string
		defer func() {
			if !t.Failed() {
				drain(t, ws, m, &seen)
			}
		}()
		for len(data) >= 4 && index < 200 {
			op, a, b, c := data[0], data[1], data[2], data[3]
			data = data[4:]
			var req *pb.InternalRaftRequest
			var wantErr error
			switch op % 8 {
			case 0, 1: // put, maybe with a lease
				lease := int64(0)
				if op%8 == 1 {
					lease = int64(c%3) + 1
				}
				key, val := fuzzKey(a), []byte{b}
				req = &pb.InternalRaftRequest{Put: &pb.PutRequest{Key: []byte(key), Value: val, Lease: lease}}
				if lease != 0 && !m.leases[lease] {
					wantErr = ErrLeaseNotFound
				} else {
					m.write(func(next int64) bool { m.put(key, val, lease, next); return true })
				}
			case 2: // delete a range
				lo, hi := fuzzKey(a), fuzzKey(b)
				req = &pb.InternalRaftRequest{DeleteRange: &pb.DeleteRangeRequest{Key: []byte(lo), RangeEnd: []byte(hi)}}
				m.write(func(next int64) bool {
					return m.del(next, func(k string, _ *mvccpb.KeyValue) bool { return k >= lo && k < hi })
				})
			case 3: // txn: if version(a) == c%3 then put a else delete b
				// and, when c is odd, put b again (a new generation at the
				// revision that ended the old one)
				ka, kb := fuzzKey(a), fuzzKey(b)
				failure := []*pb.RequestOp{{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: &pb.DeleteRangeRequest{Key: []byte(kb)}}}}
				again := c%2 == 1
				if again {
					failure = append(failure, &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte(kb), Value: []byte{c}}}})
				}
				req = &pb.InternalRaftRequest{Txn: &pb.TxnRequest{
					Compare: []*pb.Compare{{Key: []byte(ka), Target: pb.Compare_VERSION, Result: pb.Compare_EQUAL, TargetUnion: &pb.Compare_Version{Version: int64(c % 3)}}},
					Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte(ka), Value: []byte{c}}}}},
					Failure: failure,
				}}
				var ver int64
				if kv := m.kvs[ka]; kv != nil {
					ver = kv.Version
				}
				m.write(func(next int64) bool {
					if ver == int64(c%3) {
						m.put(ka, []byte{c}, 0, next)
						return true
					}
					deleted := m.del(next, func(k string, _ *mvccpb.KeyValue) bool { return k == kb })
					if again {
						m.put(kb, []byte{c}, 0, next)
						return true
					}
					return deleted
				})
			case 4: // compaction; the watch is read first, so no compaction
				// passes it by (that would cancel it, as etcd does)
				drain(t, ws, m, &seen)
				rev := m.rev - int64(a%4)
				req = &pb.InternalRaftRequest{Compaction: &pb.CompactionRequest{Revision: rev}}
				switch {
				case rev <= m.compact:
					wantErr = ErrCompacted
				default:
					m.compact = rev
				}
			case 5: // lease grant
				id := int64(a%3) + 1
				req = &pb.InternalRaftRequest{LeaseGrant: &pb.LeaseGrantRequest{ID: id, TTL: 10}}
				if m.leases[id] {
					wantErr = ErrLeaseExists
				}
				m.leases[id] = true
			case 6: // lease revoke
				id := int64(a%3) + 1
				req = &pb.InternalRaftRequest{LeaseRevoke: &pb.LeaseRevokeRequest{ID: id}}
				if !m.leases[id] {
					wantErr = ErrLeaseNotFound
					break
				}
				delete(m.leases, id)
				m.write(func(next int64) bool {
					return m.del(next, func(_ string, kv *mvccpb.KeyValue) bool { return kv.Lease == id })
				})
			case 7: // restart; the watch resumes after its last event
				drain(t, ws, m, &seen)
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
				if s, err = Open(s.path, Options{BatchLimit: 3, noSync: true}); err != nil {
					t.Fatal(err)
				}
				ws = watchAll(t, s, m.rev+1)
				continue
			}
			index++
			res, err := s.Apply(index, req)
			if err != nil {
				t.Fatalf("apply %v: fatal %v", req, err)
			}
			if res.Err != wantErr {
				t.Fatalf("apply %v: error %v, want %v", req, res.Err, wantErr)
			}
			if s.Rev() != m.rev {
				t.Fatalf("apply %v: revision %d, want %d", req, s.Rev(), m.rev)
			}
			if got := s.Stats().Keys; got != len(m.kvs) {
				t.Fatalf("apply %v: Stats().Keys = %d, want %d live keys", req, got, len(m.kvs))
			}
			// Now and at an older, uncompacted revision.
			checkRange(t, s, m, 0)
			if old := m.rev - int64(b%5); old >= max(m.compact, 1) {
				checkRange(t, s, m, old)
			}
		}
	})
}

func checkRange(t *testing.T, s *Store, m *model, rev int64) {
	t.Helper()
	resp, err := s.Range(&pb.RangeRequest{Key: []byte{0}, RangeEnd: []byte{0}, Revision: rev})
	if err != nil {
		t.Fatalf("range at %d: %v", rev, err)
	}
	at := m.rev
	if rev != 0 {
		at = rev
	}
	want := m.history[at]
	keys := slices.Sorted(maps.Keys(want))
	if len(resp.Kvs) != len(keys) || resp.Count != int64(len(keys)) {
		t.Fatalf("range at %d: %d keys (count %d), want %v", at, len(resp.Kvs), resp.Count, keys)
	}
	for i, k := range keys {
		got, w := resp.Kvs[i], want[k]
		if !bytes.Equal(got.Key, w.Key) || !bytes.Equal(got.Value, w.Value) || got.CreateRevision != w.CreateRevision ||
			got.ModRevision != w.ModRevision || got.Version != w.Version || got.Lease != w.Lease {
			t.Fatalf("range at %d: got %v, want %v", at, got, w)
		}
	}
}
