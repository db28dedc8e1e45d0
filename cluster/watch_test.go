package cluster

import (
	"errors"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/proto"
)

// next receives one watch response within 5s.
func next(t *testing.T, wc clientv3.WatchChan) clientv3.WatchResponse {
	t.Helper()
	select {
	case wr, ok := <-wc:
		if !ok {
			t.Fatal("watch channel closed")
		}
		return wr
	case <-time.After(5 * time.Second):
		t.Fatal("no watch response within 5s")
	}
	return clientv3.WatchResponse{}
}

func TestWatch(t *testing.T) {
	m := start(t, testConfig(t, t.TempDir()))
	cli := client(t, m)
	c := ctx(t)

	all := cli.Watch(c, "/w/", clientv3.WithPrefix(), clientv3.WithPrevKV(), clientv3.WithCreatedNotify())
	if wr := next(t, all); !wr.Created {
		t.Fatalf("first response = %+v, want created", wr)
	}
	noPut := cli.Watch(c, "/w/", clientv3.WithPrefix(), clientv3.WithFilterPut())

	if _, err := cli.Put(c, "/w/x", "1"); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(c, "/w/x", "2"); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Delete(c, "/w/x"); err != nil {
		t.Fatal(err)
	}
	var evs []*clientv3.Event
	for len(evs) < 3 {
		wr := next(t, all)
		if err := wr.Err(); err != nil {
			t.Fatal(err)
		}
		evs = append(evs, wr.Events...)
	}
	if evs[0].Type != mvccpb.PUT || string(evs[0].Kv.Value) != "1" || evs[0].PrevKv != nil {
		t.Errorf("event 0 = %v, want create of 1 without prev", evs[0])
	}
	if evs[1].Type != mvccpb.PUT || string(evs[1].Kv.Value) != "2" || evs[1].PrevKv == nil || string(evs[1].PrevKv.Value) != "1" {
		t.Errorf("event 1 = %v, want put 2 with prev 1", evs[1])
	}
	if evs[2].Type != mvccpb.DELETE || evs[2].PrevKv == nil || string(evs[2].PrevKv.Value) != "2" {
		t.Errorf("event 2 = %v, want delete with prev 2", evs[2])
	}
	if wr := next(t, noPut); len(wr.Events) != 1 || wr.Events[0].Type != mvccpb.DELETE {
		t.Errorf("filtered watch got %v, want only the delete", wr.Events)
	}

	// History: a watch from revision 2 replays the first put.
	hist := cli.Watch(c, "/w/x", clientv3.WithRev(2))
	if wr := next(t, hist); len(wr.Events) == 0 || wr.Events[0].Kv.ModRevision != 2 {
		t.Errorf("history watch got %v, want the put at revision 2", wr.Events)
	}

	// Progress: a requested progress notify carries the current revision.
	if err := cli.RequestProgress(c); err != nil {
		t.Fatal(err)
	}
	wr := next(t, all)
	if !wr.IsProgressNotify() || wr.Header.Revision != 4 {
		t.Errorf("progress = %+v, want progress notify at revision 4", wr)
	}
}

func TestWatchCompacted(t *testing.T) {
	m := start(t, testConfig(t, t.TempDir()))
	cli := client(t, m)
	c := ctx(t)
	for _, v := range []string{"a", "b", "c"} {
		if _, err := cli.Put(c, "k", v); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cli.Compact(c, 3); err != nil {
		t.Fatal(err)
	}
	wc := cli.Watch(c, "k", clientv3.WithRev(2))
	wr := next(t, wc)
	if !errors.Is(wr.Err(), rpctypes.ErrCompacted) || wr.CompactRevision != 3 || !wr.Canceled {
		t.Fatalf("watch from a compacted revision = %+v (err %v), want canceled with compact revision 3", wr, wr.Err())
	}
}

func TestWatchFragment(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.MaxRequestBytes = 64 * 1024
	m := start(t, cfg)
	cli := client(t, m)
	c := ctx(t)

	// Three keys of 20 KiB, then one txn overwriting all three: its watch
	// response with prev kvs is about 120 KiB, above MaxRequestBytes.
	val := string(make([]byte, 20*1024))
	keys := []string{"f/1", "f/2", "f/3"}
	var ops []clientv3.Op
	for _, k := range keys {
		if _, err := cli.Put(c, k, val); err != nil {
			t.Fatal(err)
		}
		ops = append(ops, clientv3.OpPut(k, val))
	}
	rev := int64(len(keys) + 2)

	// A raw stream shows the fragments themselves.
	ws, err := pb.NewWatchClient(cli.ActiveConnection()).Watch(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := ws.Send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: &pb.WatchCreateRequest{
		Key: []byte("f/"), RangeEnd: []byte("f0"), StartRevision: rev, PrevKv: true, Fragment: true,
	}}}); err != nil {
		t.Fatal(err)
	}
	if resp, err := ws.Recv(); err != nil || !resp.Created {
		t.Fatalf("create = %v, %v", resp, err)
	}
	// And clientv3 reassembles them.
	wc := cli.Watch(c, "f/", clientv3.WithPrefix(), clientv3.WithPrevKV(), clientv3.WithFragment(), clientv3.WithRev(rev))
	if _, err := cli.Txn(c).Then(ops...).Commit(); err != nil {
		t.Fatal(err)
	}
	var events, fragments int
	for events < len(keys) {
		resp, err := ws.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if proto.Size(resp) > int(cfg.MaxRequestBytes) && len(resp.Events) > 1 {
			t.Errorf("a response of %d bytes with %d events exceeds the limit", proto.Size(resp), len(resp.Events))
		}
		if resp.Fragment {
			fragments++
		}
		events += len(resp.Events)
	}
	if fragments == 0 {
		t.Errorf("no fragment flagged; want the 120 KiB response split")
	}
	if wr := next(t, wc); len(wr.Events) != len(keys) {
		t.Fatalf("clientv3 got %d events, want %d reassembled", len(wr.Events), len(keys))
	}
}
