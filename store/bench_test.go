package store

import (
	"fmt"
	"sync"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

func BenchmarkApplyPut(b *testing.B) {
	s := testStore(b, Options{})
	val := make([]byte, 256)
	keys := make([][]byte, 10000)
	for i := range keys {
		keys[i] = []byte(fmt.Sprintf("/bench/key/%06d", i))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_, err := s.Apply(uint64(i+1), &pb.InternalRaftRequest{Put: &pb.PutRequest{Key: keys[i%len(keys)], Value: val}})
		if err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRange(b *testing.B) {
	s := testStore(b, Options{})
	a := &applier{t: b, s: s}
	for i := range 10000 {
		a.put(fmt.Sprintf("/bench/key/%06d", i), "some value of modest size")
	}
	for _, bc := range []struct {
		name string
		req  *pb.RangeRequest
	}{
		{"key", &pb.RangeRequest{Key: []byte("/bench/key/004242")}},
		{"prefix-limit-10", &pb.RangeRequest{Key: []byte("/bench/key/00"), RangeEnd: []byte("/bench/key/01"), Limit: 10}},
		{"count-only", &pb.RangeRequest{Key: []byte("/bench/"), RangeEnd: []byte("/bench0"), CountOnly: true}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := s.Range(bc.req); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// TestConcurrentReadersAndWatchers runs readers, watchers and Apply at once
// (for the race detector) and checks each reader sees revisions in order.
func TestConcurrentReadersAndWatchers(t *testing.T) {
	s := testStore(t, Options{BatchLimit: 50})
	a := &applier{t: t, s: s}
	const writes = 500
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for r := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			last := int64(0)
			for i := 0; i < 2000 && last < writes+1; i++ {
				resp, err := s.Range(&pb.RangeRequest{Key: []byte("k"), RangeEnd: []byte("l")})
				if err != nil {
					errs <- err
					return
				}
				if resp.Header.Revision < last {
					errs <- fmt.Errorf("reader %d: revision went back from %d to %d", r, last, resp.Header.Revision)
					return
				}
				last = resp.Header.Revision
				if resp.Count > 0 && resp.Kvs[0].ModRevision > last {
					errs <- fmt.Errorf("reader %d: key from the future", r)
					return
				}
			}
		}()
	}
	ws := s.NewWatchStream()
	ws.Watch(AutoWatchID, WatchRequest{Key: []byte("k"), End: []byte("l"), PrevKV: true})
	wg.Add(1)
	go func() {
		defer wg.Done()
		next := int64(2)
		for next <= writes+1 {
			r := recv(t, ws)
			for _, ev := range r.Events {
				if ev.Kv.ModRevision != next {
					errs <- fmt.Errorf("watch: revision %d, want %d", ev.Kv.ModRevision, next)
					return
				}
				next++
			}
		}
	}()
	for i := range writes {
		a.put(fmt.Sprintf("k%d", i%10), fmt.Sprint(i))
		if i%100 == 0 {
			s.HashKV(0)
			s.Lease(1)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// BenchmarkDefragment rewrites a file of 100,000 keys of 1 KiB whose older
// revisions were compacted away (about half the file).
func BenchmarkDefragment(b *testing.B) {
	s := testStore(b, Options{})
	a := &applier{t: b, s: s}
	val := make([]byte, 1024)
	for round := range 2 {
		for i := range 50000 {
			a.apply(&pb.InternalRaftRequest{Put: &pb.PutRequest{Key: fmt.Appendf(nil, "/defrag/%06d/%d", i, round%1), Value: val}})
		}
	}
	a.apply(&pb.InternalRaftRequest{Compaction: &pb.CompactionRequest{Revision: s.Rev(), Physical: true}})
	if err := s.Commit(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if err := s.Defragment(); err != nil {
			b.Fatal(err)
		}
	}
}
