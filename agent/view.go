package agent

import (
	"context"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tendkv/tend/templates"
)

// view is the keyspace as it was at one revision, read through clientv3.
// Every read is pinned to rev, so a render sees a multi-key change whole or
// not at all. Reads are cached for the life of the view (one render).
type view struct {
	ctx   context.Context
	kv    clientv3.KV
	rev   int64
	keys  map[string]*clientv3.GetResponse
	lists map[string][]templates.KV
}

func newView(ctx context.Context, kv clientv3.KV, rev int64) *view {
	return &view{ctx: ctx, kv: kv, rev: rev, keys: map[string]*clientv3.GetResponse{}, lists: map[string][]templates.KV{}}
}

// Get returns the value of key at the view's revision.
func (v *view) Get(key string) ([]byte, bool, error) {
	resp, ok := v.keys[key]
	if !ok {
		var err error
		resp, err = v.kv.Get(v.ctx, key, clientv3.WithRev(v.rev))
		if err != nil {
			return nil, false, fmt.Errorf("get %s at revision %d: %w", key, v.rev, err)
		}
		v.keys[key] = resp
	}
	if len(resp.Kvs) == 0 {
		return nil, false, nil
	}
	return resp.Kvs[0].Value, true, nil
}

// List returns the keys under prefix at the view's revision, sorted by key.
func (v *view) List(prefix string) ([]templates.KV, error) {
	if kvs, ok := v.lists[prefix]; ok {
		return kvs, nil
	}
	resp, err := v.kv.Get(v.ctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(v.rev),
		clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	if err != nil {
		return nil, fmt.Errorf("list %s at revision %d: %w", prefix, v.rev, err)
	}
	kvs := make([]templates.KV, len(resp.Kvs))
	for i, kv := range resp.Kvs {
		kvs[i] = templates.KV{Key: string(kv.Key), Value: kv.Value}
	}
	v.lists[prefix] = kvs
	return kvs, nil
}
