package store

import (
	"errors"
	"fmt"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

func TestWatchKinds(t *testing.T) {
	for _, tc := range []struct {
		name string
		req  WatchRequest
		want []string // one entry per response
	}{
		{"key", WatchRequest{Key: []byte("a")}, []string{"PUT a=1@2", "PUT a=2@4", "DELETE a@5", "PUT a=3@6"}},
		{"prefix", WatchRequest{Key: []byte("a"), End: []byte("b")}, []string{"PUT a=1@2", "PUT ab=1@3", "PUT a=2@4", "DELETE a@5 DELETE ab@5", "PUT a=3@6"}},
		{"from key", WatchRequest{Key: []byte("ab"), End: []byte{0}}, []string{"PUT ab=1@3", "DELETE ab@5", "PUT b=1@7"}},
		{"no put", WatchRequest{Key: []byte("a"), End: []byte("b"), NoPut: true}, []string{"DELETE a@5 DELETE ab@5"}},
		{"no delete", WatchRequest{Key: []byte("a"), NoDelete: true}, []string{"PUT a=1@2", "PUT a=2@4", "PUT a=3@6"}},
		{"prev kv", WatchRequest{Key: []byte("a"), PrevKV: true}, []string{"PUT a=1@2", "PUT a=2@4 (prev 1@2)", "DELETE a@5 (prev 2@4)", "PUT a=3@6"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// live: the watch exists before the writes; history: it starts
			// after them at revision 2 and is replayed from the backend.
			for _, mode := range []string{"live", "history"} {
				s := testStore(t, Options{})
				a := &applier{t: t, s: s}
				ws := s.NewWatchStream()
				if mode == "live" {
					if _, err := ws.Watch(AutoWatchID, tc.req); err != nil {
						t.Fatal(err)
					}
				}
				a.put("a", "1")
				a.put("ab", "1")
				a.put("a", "2")
				a.del("a", "b")
				a.put("a", "3")
				a.put("b", "1")
				var got []string
				if mode == "history" {
					req := tc.req
					req.StartRev = 2
					if _, err := ws.Watch(AutoWatchID, req); err != nil {
						t.Fatal(err)
					}
					// History may come batched: compare events, not responses.
					want := ""
					for _, w := range tc.want {
						want += " " + w
					}
					for len(got) == 0 || got[0] != want {
						r := recv(t, ws)
						if len(got) == 0 {
							got = append(got, "")
						}
						got[0] += " " + evText(r)
						if len(got[0]) > len(want) {
							break
						}
					}
					if got[0] != want {
						t.Fatalf("%s: got %q, want %q", mode, got[0], want)
					}
				} else {
					for range tc.want {
						got = append(got, evText(recv(t, ws)))
					}
					if fmt.Sprint(got) != fmt.Sprint(tc.want) {
						t.Fatalf("%s: got %q, want %q", mode, got, tc.want)
					}
				}
				noRecv(t, ws)
			}
		})
	}
}

func TestWatchStreamAPI(t *testing.T) {
	s := testStore(t, Options{})
	a := &applier{t: t, s: s}
	ws := s.NewWatchStream()
	for want := int64(0); want < 3; want++ {
		id, err := ws.Watch(AutoWatchID, WatchRequest{Key: []byte("k")})
		if err != nil || id != want {
			t.Fatalf("auto id %d, %v; want %d", id, err, want)
		}
	}
	if _, err := ws.Watch(1, WatchRequest{Key: []byte("k")}); !errors.Is(err, ErrWatcherDuplicateID) {
		t.Fatalf("duplicate id: %v", err)
	}
	if id, err := ws.Watch(7, WatchRequest{Key: []byte("k")}); err != nil || id != 7 {
		t.Fatalf("explicit id: %d %v", id, err)
	}
	if _, err := ws.Watch(AutoWatchID, WatchRequest{Key: []byte("b"), End: []byte("a")}); !errors.Is(err, ErrEmptyWatcherRange) {
		t.Fatalf("empty range: %v", err)
	}
	for _, id := range []int64{0, 2, 7} {
		if err := ws.Cancel(id); err != nil {
			t.Fatal(err)
		}
	}
	if err := ws.Cancel(0); !errors.Is(err, ErrWatcherNotExist) {
		t.Fatalf("cancel twice: %v", err)
	}
	a.put("k", "v")
	if r := recv(t, ws); r.WatchID != 1 || evText(r) != "PUT k=v@2" {
		t.Fatalf("after cancels: %+v", r)
	}
	noRecv(t, ws)

	ws.RequestProgress()
	if r := recv(t, ws); r.WatchID != 1 || len(r.Events) != 0 || r.Revision != 2 {
		t.Fatalf("progress: %+v", r)
	}
	if !ws.RequestProgressAll() {
		t.Fatal("progress for a stream in sync refused")
	}
	if r := recv(t, ws); r.WatchID != ProgressWatchID || r.Revision != 2 || len(r.Events) != 0 {
		t.Fatalf("stream progress: %+v", r)
	}
	// A watch that has history to catch up keeps the stream out of sync
	// until it has: its events always come before the progress response.
	hist, _ := ws.Watch(AutoWatchID, WatchRequest{Key: []byte("k"), StartRev: 2})
	for i := 0; !ws.RequestProgressAll(); i++ {
		if i > 1000 {
			t.Fatal("stream never in sync")
		}
		time.Sleep(time.Millisecond) // polling a condition, bounded above
	}
	if r := recv(t, ws); r.WatchID != hist || evText(r) != "PUT k=v@2" {
		t.Fatalf("history: %+v", r)
	}
	if r := recv(t, ws); r.WatchID != ProgressWatchID {
		t.Fatalf("stream progress after catch-up: %+v", r)
	}
	ws.Cancel(hist)
	// A watch in the future hears nothing before its start revision.
	fut, _ := ws.Watch(AutoWatchID, WatchRequest{Key: []byte("f"), StartRev: 4})
	a.put("f", "early")
	a.put("f", "late")
	if r := recv(t, ws); r.WatchID != fut || evText(r) != "PUT f=late@4" {
		t.Fatalf("future watch: %+v", r)
	}
	ws.Close()
	if _, ok := <-ws.Chan(); ok {
		t.Fatal("channel open after Close")
	}
	if _, err := ws.Watch(AutoWatchID, WatchRequest{Key: []byte("k")}); !errors.Is(err, ErrClosed) {
		t.Fatalf("watch on closed stream: %v", err)
	}
}

func TestWatchProgressNotify(t *testing.T) {
	s := testStore(t, Options{ProgressInterval: 20 * time.Millisecond})
	a := &applier{t: t, s: s}
	a.put("x", "1")
	ws := s.NewWatchStream()
	id, _ := ws.Watch(AutoWatchID, WatchRequest{Key: []byte("k"), ProgressNotify: true})
	ws.Watch(AutoWatchID, WatchRequest{Key: []byte("k")})
	r := recv(t, ws)
	if r.WatchID != id || len(r.Events) != 0 || r.Revision != 2 {
		t.Fatalf("progress notify: %+v", r)
	}
}

func TestWatchCompacted(t *testing.T) {
	s := testStore(t, Options{})
	a := &applier{t: t, s: s}
	for i := range 5 {
		a.put("k", fmt.Sprint(i)) // revisions 2..6
	}
	a.apply(&pb.InternalRaftRequest{Compaction: &pb.CompactionRequest{Revision: 5}})
	ws := s.NewWatchStream()
	id, err := ws.Watch(AutoWatchID, WatchRequest{Key: []byte("k"), StartRev: 3})
	if err != nil {
		t.Fatal(err)
	}
	r := recv(t, ws)
	if r.WatchID != id || !r.Canceled || r.CompactRevision != 5 || len(r.Events) != 0 {
		t.Fatalf("compacted watch: %+v", r)
	}
	// The watch is gone: nothing more for it, and cancelling it fails.
	a.put("k", "x")
	noRecv(t, ws)
	if err := ws.Cancel(id); !errors.Is(err, ErrWatcherNotExist) {
		t.Fatalf("cancel of a compacted watch: %v", err)
	}
	// From the compaction revision itself the history is there.
	ws.Watch(AutoWatchID, WatchRequest{Key: []byte("k"), StartRev: 5})
	got := ""
	for got != " PUT k=3@5 PUT k=4@6 PUT k=x@7" && len(got) < 100 {
		got += " " + evText(recv(t, ws))
	}
	if got != " PUT k=3@5 PUT k=4@6 PUT k=x@7" {
		t.Fatalf("watch from the compaction revision: %q", got)
	}
}

// TestWatchSlowWatcher applies many revisions while one watcher does not
// read at all and another reads slowly: Apply never waits for them, and both
// get every event once, in order, each revision in one response.
func TestWatchSlowWatcher(t *testing.T) {
	s := testStore(t, Options{BatchLimit: 500})
	a := &applier{t: t, s: s}
	stuck := s.NewWatchStream()
	stuck.Watch(AutoWatchID, WatchRequest{Key: []byte("k"), End: []byte("l"), PrevKV: true})
	slow := s.NewWatchStream()
	slow.Watch(AutoWatchID, WatchRequest{Key: []byte("k"), End: []byte("l")})

	const revs = 3000
	type result struct {
		err   error
		count int
	}
	check := func(ws *WatchStream, pause bool, done chan<- result) {
		next, count := int64(2), 0
		deadline := time.After(60 * time.Second)
		for next <= revs+1 {
			var r WatchResponse
			select {
			case r = <-ws.Chan():
			case <-deadline:
				done <- result{err: fmt.Errorf("stalled at revision %d", next)}
				return
			}
			if pause && count%100 == 0 {
				time.Sleep(time.Millisecond) // a slow reader, on purpose
			}
			for i := 0; i < len(r.Events); {
				rev := r.Events[i].Kv.ModRevision
				if rev != next {
					done <- result{err: fmt.Errorf("got revision %d, want %d", rev, next)}
					return
				}
				// revision rev has (rev%3)+1 events, all in this response
				n := int(rev%3) + 1
				for j := 0; j < n; j++ {
					if i+j >= len(r.Events) || r.Events[i+j].Kv.ModRevision != rev {
						done <- result{err: fmt.Errorf("revision %d split or short", rev)}
						return
					}
				}
				i += n
				next++
				count += n
			}
		}
		done <- result{count: count}
	}
	slowDone := make(chan result, 1)
	go check(slow, true, slowDone)

	start := time.Now()
	for rev := int64(2); rev <= revs+1; rev++ {
		var ops []*pb.RequestOp
		for j := int64(0); j <= rev%3; j++ {
			ops = append(ops, &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{
				Key: []byte(fmt.Sprintf("k%d", j)), Value: []byte(fmt.Sprint(rev))}}})
		}
		a.apply(&pb.InternalRaftRequest{Txn: &pb.TxnRequest{Success: ops}})
	}
	applyTook := time.Since(start)
	if s.Rev() != revs+1 {
		t.Fatalf("rev %d", s.Rev())
	}
	stuckDone := make(chan result, 1)
	go check(stuck, false, stuckDone)
	want := 0
	for rev := 2; rev <= revs+1; rev++ {
		want += rev%3 + 1
	}
	for name, ch := range map[string]chan result{"slow": slowDone, "stuck": stuckDone} {
		r := <-ch
		if r.err != nil {
			t.Fatalf("%s watcher: %v", name, r.err)
		}
		if r.count != want {
			t.Fatalf("%s watcher: %d events, want %d", name, r.count, want)
		}
	}
	t.Logf("applied %d revisions in %v with a stuck watcher", revs, applyTook)
}

func TestWatchSharedRange(t *testing.T) {
	s := testStore(t, Options{})
	a := &applier{t: t, s: s}
	w1, w2 := s.NewWatchStream(), s.NewWatchStream()
	req := WatchRequest{Key: []byte("p/"), End: []byte("p0")}
	id1, _ := w1.Watch(AutoWatchID, req)
	w2.Watch(AutoWatchID, req)
	w2.Watch(AutoWatchID, WatchRequest{Key: []byte("p/a"), End: []byte{0}})
	a.put("p/a", "1")
	if r := recv(t, w1); evText(r) != "PUT p/a=1@2" {
		t.Fatalf("w1: %q", evText(r))
	}
	for range 2 {
		if r := recv(t, w2); evText(r) != "PUT p/a=1@2" {
			t.Fatalf("w2: %q", evText(r))
		}
	}
	// Cancelling one watch of a shared range leaves the other.
	w1.Cancel(id1)
	a.put("p/b", "1")
	noRecv(t, w1)
	for range 2 {
		if r := recv(t, w2); evText(r) != "PUT p/b=1@3" {
			t.Fatalf("w2 after cancel: %q", evText(r))
		}
	}
	a.put("q", "1")
	if r := recv(t, w2); r.WatchID != 1 || evText(r) != "PUT q=1@4" {
		t.Fatalf("w2 from-key watch: %+v", r)
	}
	noRecv(t, w2)
}
