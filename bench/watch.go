package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Watch starts c.Watchers watchers on a fresh prefix, spread over the
// connections, then puts c.Total keys under it and measures how long each
// event takes from the start of its put to its arrival at each watcher. The
// report counts delivered events; its throughput is events per second.
func Watch(ctx context.Context, c Config) (Report, error) {
	if err := c.validate(); err != nil {
		return Report{}, err
	}
	if c.Watchers < 1 {
		return Report{}, fmt.Errorf("--watchers %d: need at least 1", c.Watchers)
	}
	clis, closeAll, err := connect(c)
	if err != nil {
		return Report{}, err
	}
	defer closeAll()

	prefix := fmt.Sprintf("/bench-watch/%016x/", rand.Uint64())
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu       sync.Mutex
		lat      = make([]time.Duration, 0, c.Total*c.Watchers)
		firstErr error
		wg       sync.WaitGroup
	)
	for w := range c.Watchers {
		ch := clis[w%len(clis)].Watch(clientv3.WithRequireLeader(wctx), prefix, clientv3.WithPrefix(), clientv3.WithCreatedNotify())
		select {
		case resp, ok := <-ch:
			if !ok || !resp.Created {
				return Report{}, fmt.Errorf("create watcher %d on %s: %v", w, prefix, resp.Err())
			}
		case <-ctx.Done():
			return Report{}, fmt.Errorf("create watcher %d: %w", w, ctx.Err())
		}
		wg.Add(1)
		go func() { // stops after Total events, or when wctx ends
			defer wg.Done()
			seen := 0
			for resp := range ch {
				now := time.Now()
				if err := resp.Err(); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
				mu.Lock()
				for _, ev := range resp.Events {
					sent := int64(binary.BigEndian.Uint64(ev.Kv.Value))
					lat = append(lat, now.Sub(time.Unix(0, sent)))
				}
				mu.Unlock()
				if seen += len(resp.Events); seen >= c.Total {
					return
				}
			}
		}()
	}

	start := time.Now()
	k := keyer{size: c.KeySize, space: c.KeySpace, sequential: c.Sequential}
	putCfg := c
	putRep, putErr := run(ctx, "watch-put", putCfg, func(ctx context.Context, cli *clientv3.Client, i int, rng *rand.Rand) error {
		val := make([]byte, max(8, c.ValSize))
		binary.BigEndian.PutUint64(val, uint64(time.Now().UnixNano()))
		_, err := cli.Put(ctx, prefix+k.key(i, rng), string(val))
		return err
	})
	if putErr == nil && putRep.Errors > 0 {
		putErr = fmt.Errorf("%d puts failed, first: %s", putRep.Errors, putRep.FirstError)
	}
	if putErr != nil {
		cancel()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	// Deliveries get a bounded grace period after the last put.
	grace := time.NewTimer(30 * time.Second)
	defer grace.Stop()
	select {
	case <-done:
	case <-grace.C:
		cancel()
		<-done
	case <-ctx.Done():
		cancel()
		<-done
	}
	took := time.Since(start)
	mu.Lock()
	defer mu.Unlock()
	rep := report("watch", c, took, lat, 0, firstErr)
	rep.Errors = c.Total*c.Watchers - len(lat)
	// Clean up the prefix; a failure here does not change the measurement.
	dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer dcancel()
	clis[0].Delete(dctx, prefix, clientv3.WithPrefix())
	if putErr != nil {
		return rep, fmt.Errorf("watch benchmark puts: %w", putErr)
	}
	if rep.Errors > 0 {
		why := "within 30s of the last put"
		if firstErr != nil {
			why = fmt.Sprintf("a watcher ended: %v", firstErr)
		}
		return rep, fmt.Errorf("watch benchmark: %d of %d events not delivered (%s)", rep.Errors, c.Total*c.Watchers, why)
	}
	return rep, nil
}
