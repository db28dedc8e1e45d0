package store

import (
	"sync"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

func TestStats(t *testing.T) {
	var mu sync.Mutex // the store's batch loop commits too
	var commits []time.Duration
	s := testStore(t, Options{ObserveCommit: func(d time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		commits = append(commits, d)
	}})
	a := &applier{t: t, s: s}
	a.put("a", "1")
	a.put("b", "22")
	a.del("a", "")
	a.del("zzz", "") // deletes nothing; still an operation
	a.apply(&pb.InternalRaftRequest{Txn: &pb.TxnRequest{
		Success: []*pb.RequestOp{
			{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: []byte("c"), Value: []byte("333")}}},
			{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: []byte("c")}}},
		},
	}})
	if _, err := s.Range(&pb.RangeRequest{Key: []byte("b")}); err != nil {
		t.Fatal(err)
	}
	ws := s.NewWatchStream()
	defer ws.Close()
	for id := range int64(3) {
		if _, err := ws.Watch(id, WatchRequest{Key: []byte("k")}); err != nil {
			t.Fatal(err)
		}
	}
	got := s.Stats()
	want := Stats{
		Puts: 3, Deletes: 2, Ranges: 2, Txns: 1,
		PutBytes:     2 + 3 + 4,
		Keys:         2, // b and c; a is deleted
		WatchStreams: 1, Watchers: 3,
	}
	if got != want {
		t.Errorf("Stats() = %+v\nwant       %+v", got, want)
	}
	if err := s.Commit(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(commits) == 0 || commits[len(commits)-1] <= 0 {
		t.Errorf("commit durations observed: %v, want one per commit, positive", commits)
	}
}
