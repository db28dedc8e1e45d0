package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/tendkv/tend/store"
)

// leaseCheckInterval is how often the leader looks for expired leases
// (etcd's revoke loop runs at the same pace).
const leaseCheckInterval = 500 * time.Millisecond

// runLeaseExpiry revokes, through Raft, the leases whose time is up, while
// this member leads. Followers keep no lease time (the store is demoted).
func (m *Member) runLeaseExpiry() {
	t := time.NewTicker(leaseCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-m.ctx.Done():
			return
		}
		if m.lead.Load() != m.id {
			continue
		}
		for _, id := range m.store.Expired() {
			ctx, cancel := context.WithTimeout(m.ctx, m.requestTimeout())
			// Expiry revokes as root, as etcd's does, whoever's keys the
			// lease holds.
			_, err := m.Propose(ctx, &pb.InternalRaftRequest{Header: m.store.RootHeader(), LeaseRevoke: &pb.LeaseRevokeRequest{ID: id}})
			cancel()
			if err != nil && !errors.Is(err, store.ErrLeaseNotFound) && m.ctx.Err() == nil {
				m.log.Warn("revoke expired lease", "lease-id", fmt.Sprintf("%x", id), "err", err)
			}
		}
	}
}
