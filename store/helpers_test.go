package store

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// testStore opens a store in a temporary folder, closed with the test.
func testStore(t testing.TB, opts Options) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// applier feeds requests at increasing indexes and fails the test on any
// error.
type applier struct {
	t     testing.TB
	s     *Store
	index uint64
}

func (a *applier) apply(r *pb.InternalRaftRequest) Result {
	a.t.Helper()
	a.index++
	res, err := a.s.Apply(a.index, r)
	if err != nil {
		a.t.Fatalf("apply %d: %v", a.index, err)
	}
	if res.Err != nil {
		a.t.Fatalf("apply %d (%v): %v", a.index, r, res.Err)
	}
	return res
}

func (a *applier) put(key, val string) int64 {
	a.t.Helper()
	res := a.apply(&pb.InternalRaftRequest{Put: &pb.PutRequest{Key: []byte(key), Value: []byte(val)}})
	return res.Resp.(*pb.PutResponse).Header.Revision
}

func (a *applier) del(key, end string) int64 {
	a.t.Helper()
	var e []byte
	if end != "" {
		e = []byte(end)
	}
	res := a.apply(&pb.InternalRaftRequest{DeleteRange: &pb.DeleteRangeRequest{Key: []byte(key), RangeEnd: e}})
	return res.Resp.(*pb.DeleteRangeResponse).Header.Revision
}

// recv waits up to 10s for the next response.
func recv(t testing.TB, ws *WatchStream) WatchResponse {
	t.Helper()
	select {
	case r, ok := <-ws.Chan():
		if !ok {
			t.Fatal("watch channel closed")
		}
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no watch response in 10s")
	}
	return WatchResponse{}
}

// noRecv checks that nothing arrives for a short while.
func noRecv(t testing.TB, ws *WatchStream) {
	t.Helper()
	select {
	case r := <-ws.Chan():
		t.Fatalf("unexpected watch response %+v", r)
	case <-time.After(50 * time.Millisecond):
	}
}

// evText prints events as "PUT a=1@2 DELETE b@3".
func evText(r WatchResponse) string {
	s := ""
	for _, ev := range r.Events {
		if s != "" {
			s += " "
		}
		s += fmt.Sprintf("%s %s", ev.Type, ev.Kv.Key)
		if len(ev.Kv.Value) > 0 {
			s += "=" + string(ev.Kv.Value)
		}
		s += fmt.Sprintf("@%d", ev.Kv.ModRevision)
		if ev.PrevKv != nil {
			s += fmt.Sprintf(" (prev %s@%d)", ev.PrevKv.Value, ev.PrevKv.ModRevision)
		}
	}
	return s
}
