package playground

import (
	"context"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// keyWatcher keeps a Hub's keyspace and watch feed following a prefix.
type keyWatcher struct {
	hub    *Hub
	prefix string
	// client returns the client to read and watch through now (nil: none
	// is reachable yet).
	client func() *clientv3.Client
	// restart, when it receives, makes the watcher start again through
	// whatever client returns then (a member went down or was cut off).
	restart <-chan struct{}
}

// watchRetry is how long the watcher waits before trying again.
const watchRetry = 300 * time.Millisecond

// run reads the keyspace once, then watches from the next revision,
// starting again (from where it was) when the watch ends, until ctx ends.
func (w *keyWatcher) run(ctx context.Context) {
	var rev int64 // the last revision applied to the hub; 0: read afresh
	for ctx.Err() == nil {
		if cli := w.client(); cli != nil {
			if rev == 0 {
				rev = w.read(ctx, cli)
			}
			if rev != 0 {
				rev = w.watch(ctx, cli, rev)
			}
		}
		select {
		case <-ctx.Done():
		case <-w.restart:
		case <-time.After(watchRetry):
		}
	}
}

// read loads the keyspace into the hub and returns its revision (0 on
// failure).
func (w *keyWatcher) read(ctx context.Context, cli *clientv3.Client) int64 {
	rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	resp, err := cli.Get(rctx, w.prefix, clientv3.WithPrefix(), clientv3.WithLimit(maxKeys+1),
		clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	if err != nil {
		return 0
	}
	kvs := make([]KV, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		kvs = append(kvs, KV{Key: string(kv.Key), Value: string(kv.Value), ModRevision: kv.ModRevision, Version: kv.Version})
	}
	truncated := resp.More || len(kvs) > maxKeys
	if len(kvs) > maxKeys {
		kvs = kvs[:maxKeys]
	}
	w.hub.ResetKeys(resp.Header.Revision, kvs, truncated)
	return resp.Header.Revision
}

// watch follows the prefix after revision rev until the watch ends or a
// restart is asked for, and returns the last revision it applied (0 when
// the history it needed is compacted: read afresh).
func (w *keyWatcher) watch(ctx context.Context, cli *clientv3.Client, rev int64) int64 {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	wch := cli.Watch(wctx, w.prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1))
	for {
		select {
		case <-ctx.Done():
			return rev
		case <-w.restart:
			return rev
		case resp, ok := <-wch:
			if !ok {
				return rev
			}
			if resp.CompactRevision > 0 {
				return 0
			}
			if err := resp.Err(); err != nil {
				return rev
			}
			now := time.Now().UnixMilli()
			evs := make([]WatchEvent, 0, len(resp.Events))
			for _, ev := range resp.Events {
				we := WatchEvent{Key: string(ev.Kv.Key), Revision: ev.Kv.ModRevision, At: now}
				if ev.Type == mvccpb.Event_DELETE {
					we.Type = "DELETE"
				} else {
					we.Type, we.Value, we.Version = "PUT", string(ev.Kv.Value), ev.Kv.Version
				}
				evs = append(evs, we)
			}
			if resp.Header.Revision > rev {
				rev = resp.Header.Revision
			}
			w.hub.Watched(evs, rev)
		}
	}
}
