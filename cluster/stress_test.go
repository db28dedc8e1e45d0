package cluster

import (
	"fmt"
	"sync"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestConcurrentClients runs writers, linearizable readers and a watcher at
// once: every acknowledged write is visible to a read that starts after it,
// and the watcher sees every revision exactly once, in order.
func TestConcurrentClients(t *testing.T) {
	m := start(t, testConfig(t, t.TempDir()))
	cli := client(t, m)
	c := ctx(t)
	const writers, perWriter = 4, 25

	wc := cli.Watch(c, "/c/", clientv3.WithPrefix(), clientv3.WithRev(2))
	var wg sync.WaitGroup
	errc := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				key := fmt.Sprintf("/c/%d/%d", w, i)
				put, err := cli.Put(c, key, "v")
				if err != nil {
					errc <- err
					return
				}
				get, err := cli.Get(c, key)
				if err != nil {
					errc <- err
					return
				}
				if len(get.Kvs) != 1 || get.Header.Revision < put.Header.Revision {
					errc <- fmt.Errorf("read of %s after its put at %d: %v at %d", key, put.Header.Revision, get.Kvs, get.Header.Revision)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	want := int64(2)
	for want < 2+writers*perWriter {
		wr := next(t, wc)
		if err := wr.Err(); err != nil {
			t.Fatal(err)
		}
		for _, ev := range wr.Events {
			if ev.Kv.ModRevision != want {
				t.Fatalf("watch event at revision %d, want %d", ev.Kv.ModRevision, want)
			}
			want++
		}
	}
}
