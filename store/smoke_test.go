package store

import (
	"path/filepath"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

func TestSmoke(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	res, err := s.Apply(1, &pb.InternalRaftRequest{Put: &pb.PutRequest{Key: []byte("a"), Value: []byte("1")}})
	if err != nil || res.Err != nil {
		t.Fatal(err, res.Err)
	}
	ws := s.NewWatchStream()
	id, err := ws.Watch(AutoWatchID, WatchRequest{Key: []byte("a"), StartRev: 1})
	if err != nil {
		t.Fatal(err)
	}
	s.Apply(2, &pb.InternalRaftRequest{Put: &pb.PutRequest{Key: []byte("a"), Value: []byte("2")}})
	var got []int64
	for len(got) < 2 {
		r := <-ws.Chan()
		if r.WatchID != id {
			t.Fatalf("watch id %d, want %d", r.WatchID, id)
		}
		for _, ev := range r.Events {
			got = append(got, ev.Kv.ModRevision)
		}
	}
	if got[0] != 2 || got[1] != 3 {
		t.Fatalf("event revisions %v, want [2 3]", got)
	}
	rr, err := s.Range(&pb.RangeRequest{Key: []byte("a")})
	if err != nil || len(rr.Kvs) != 1 || string(rr.Kvs[0].Value) != "2" || rr.Header.Revision != 3 {
		t.Fatalf("range: %v %v", rr, err)
	}
}
