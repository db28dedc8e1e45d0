package cluster

import (
	"context"
	"errors"

	"github.com/jonboulle/clockwork"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/tendkv/tend/cluster/autocompact"
	"github.com/tendkv/tend/store"
)

// runAutoCompaction compacts under cfg.AutoCompaction until the member
// stops: while it leads, through Raft, as root (as etcd's compactor does,
// whoever enabled auth).
func (m *Member) runAutoCompaction() {
	p := m.cfg.AutoCompaction
	if !p.Enabled() {
		return
	}
	m.log.Info("auto compaction on", "mode", string(p.Mode), "policy", p.String())
	autocompact.Run(m.ctx, p, autocompact.Target{
		Rev:    m.store.Rev,
		Leader: func() bool { return m.lead.Load() == m.id },
		Compact: func(ctx context.Context, rev int64) error {
			_, err := m.Propose(ctx, &pb.InternalRaftRequest{Header: m.store.RootHeader(), Compaction: &pb.CompactionRequest{Revision: rev}})
			if errors.Is(err, store.ErrCompacted) {
				return autocompact.ErrCompacted
			}
			return err
		},
	}, clockwork.NewRealClock(), m.log)
}
