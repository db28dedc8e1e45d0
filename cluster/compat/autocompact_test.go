package compat

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"

	"github.com/tendkv/tend/cluster"
	"github.com/tendkv/tend/cluster/autocompact"
)

// With --auto-compaction-retention 2s (periodic), tend and etcd both
// compact past writes made at the start within a few periods, by
// themselves, and keep the newest value.
func TestAutoCompactionAgainstEtcd(t *testing.T) {
	for _, start := range []func(*testing.T) backend{
		func(t *testing.T) backend {
			return startEtcdWith(t, func(c *embed.Config) {
				c.AutoCompactionMode, c.AutoCompactionRetention = embed.CompactorModePeriodic, "2s"
			})
		},
		func(t *testing.T) backend {
			return startTendWith(t, func(c *cluster.Config) {
				c.AutoCompaction = autocompact.Policy{Mode: autocompact.Periodic, Period: 2 * time.Second}
			})
		},
	} {
		b := start(t)
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			var last int64
			for i := range 5 {
				resp, err := b.cli.Put(ctx, "ac", fmt.Sprint(i))
				if err != nil {
					t.Fatal(err)
				}
				last = resp.Header.Revision
			}
			began := time.Now()
			for {
				_, err := b.cli.Get(ctx, "ac", clientv3.WithRev(last-1))
				if errors.Is(err, rpctypes.ErrCompacted) {
					break
				}
				if err != nil {
					t.Fatalf("get at %d: %v", last-1, err)
				}
				if time.Since(began) > 20*time.Second {
					t.Fatalf("revision %d still readable 20s after the writes", last-1)
				}
				time.Sleep(50 * time.Millisecond)
			}
			t.Logf("%s compacted past revision %d %v after the writes", b.name, last-1, time.Since(began).Round(100*time.Millisecond))
			if resp, err := b.cli.Get(ctx, "ac"); err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "4" {
				t.Errorf("newest value after auto compaction = %v, %v", resp, err)
			}
		})
	}
}
