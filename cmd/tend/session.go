package main

import (
	"context"
	"fmt"
	"io"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// newSession grants a lease of ttl seconds, bounded by --command-timeout,
// and keeps it alive until closeSession. clientv3's concurrency.NewSession
// grants with no deadline, so against a member that does not answer lock and
// elect would hang before they start waiting.
func newSession(ctx context.Context, cf *clientFlags, cli *clientv3.Client, ttl int, action string) (*concurrency.Session, error) {
	gctx, cancel := cf.commandContext(ctx)
	lease, err := cli.Grant(gctx, int64(ttl))
	cancel()
	if err != nil {
		return nil, cf.requestError(action+": grant the session lease", err)
	}
	s, err := concurrency.NewSession(cli, concurrency.WithLease(lease.ID), concurrency.WithTTL(ttl))
	if err != nil {
		return nil, fmt.Errorf("%s: keep the session lease alive: %w", action, err)
	}
	return s, nil
}

// closeSession stops the keep-alives and revokes the lease, so the session's
// keys go at once instead of when the TTL runs out (etcdctl leaves the lease
// to expire). A failed revoke is not reported: the lease expires by itself
// within its TTL, and lock's exit status is its command's.
func closeSession(cf *clientFlags, cli *clientv3.Client, s *concurrency.Session) {
	s.Orphan()
	ctx, cancel := cf.commandContext(context.Background())
	defer cancel()
	cli.Revoke(ctx, s.Lease())
}

// printGet prints a response as etcdctl's get does: JSON with -w json, else
// each key on one line and its value on the next.
func printGet(w io.Writer, cf *clientFlags, resp *clientv3.GetResponse) error {
	if cf.writeOut == "json" {
		return printJSON(w, resp)
	}
	p := kvPrinter{w: w}
	for _, kv := range resp.Kvs {
		p.print(kv.Key, kv.Value)
	}
	return nil
}
