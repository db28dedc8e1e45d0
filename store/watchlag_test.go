package store

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// TestWatchManyLaggingStreams puts while many streams, each with several
// watchers, fall behind and drain at their own jittery pace, so catch-up
// rounds run while readers make room between the round's choice of what to
// read and its sends: every watcher must still get every revision once, in
// order (1,000 watchers on a 3-member cluster once lost a run of events this
// way, with no error).
func TestWatchManyLaggingStreams(t *testing.T) {
	defer func(n int) { watchChanSize = n }(watchChanSize)
	watchChanSize = 4
	s := testStore(t, Options{})
	a := &applier{t: t, s: s}
	const streams, perStream, revs = 40, 5, 600
	first := s.Rev() + 1
	var wg sync.WaitGroup
	errs := make(chan error, streams)
	for i := range streams {
		ws := s.NewWatchStream()
		for range perStream {
			if _, err := ws.Watch(AutoWatchID, WatchRequest{Key: []byte("k/"), End: []byte("k0")}); err != nil {
				t.Fatal(err)
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), 1))
			next := map[int64]int64{}
			done := 0
			deadline := time.After(60 * time.Second)
			for done < perStream {
				var r WatchResponse
				select {
				case r = <-ws.Chan():
				case <-deadline:
					errs <- fmt.Errorf("stream %d: stalled with %d of %d watchers done", i, done, perStream)
					return
				}
				if rng.IntN(4) == 0 {
					time.Sleep(time.Duration(rng.IntN(300)) * time.Microsecond)
				}
				for _, ev := range r.Events {
					want, ok := next[r.WatchID]
					if !ok {
						want = first
					}
					if ev.Kv.ModRevision != want {
						errs <- fmt.Errorf("stream %d watch %d: got revision %d, want %d", i, r.WatchID, ev.Kv.ModRevision, want)
						return
					}
					next[r.WatchID] = want + 1
					if want+1 == first+revs {
						done++
					}
				}
			}
		}()
	}
	for i := range revs {
		a.put(fmt.Sprintf("k/%d", i%10), "v")
		if i%50 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
