package cluster

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"time"

	"go.etcd.io/raft/v3"

	"github.com/tendkv/tend/cluster/v3rpc"
)

// readNotifier is one ReadIndex round that any number of readers share.
type readNotifier struct {
	c   chan struct{}
	err error // set before c is closed
}

func newReadNotifier() *readNotifier { return &readNotifier{c: make(chan struct{})} }

func (n *readNotifier) notify(err error) {
	n.err = err
	close(n.c)
}

// readIndexRetry is how often a ReadIndex request is sent again while no
// answer came (no leader yet, or a dropped message), as etcd does.
const readIndexRetry = 500 * time.Millisecond

// LinearizableRead returns once this member has applied every entry that
// was committed when it was called. Readers arriving together share one
// ReadIndex round.
func (m *Member) LinearizableRead(ctx context.Context) error {
	m.readMu.Lock()
	nr := m.readNext
	m.readMu.Unlock()
	select {
	case m.readc <- struct{}{}:
	default: // a round is already asked for
	}
	select {
	case <-nr.c:
		return nr.err
	case <-ctx.Done():
		return ctx.Err()
	case <-m.ctx.Done():
		return v3rpc.ErrStopped
	}
}

// runReads serves read rounds one after another until the member stops.
func (m *Member) runReads() {
	for {
		select {
		case <-m.readc:
		case <-m.ctx.Done():
			return
		}
		m.readMu.Lock()
		nr := m.readNext
		m.readNext = newReadNotifier()
		m.readMu.Unlock()
		m.readRounds.Add(1)
		nr.notify(m.readIndex())
	}
}

// readIndex asks Raft for the current commit index, confirmed by a quorum
// heartbeat, and waits until it is applied.
func (m *Member) readIndex() error {
	ctx, cancel := context.WithTimeout(m.ctx, m.requestTimeout())
	defer cancel()
	rctx := make([]byte, 8)
	binary.BigEndian.PutUint64(rctx, m.reqIDs.Next())
	if err := m.node.ReadIndex(ctx, rctx); err != nil {
		return m.readError(ctx, err)
	}
	retry := time.NewTicker(readIndexRetry)
	defer retry.Stop()
	for {
		select {
		case rs := <-m.readStates:
			if !bytes.Equal(rs.RequestCtx, rctx) {
				continue // the answer to an earlier round that timed out
			}
			if err := m.waitApplied(ctx, rs.Index); err != nil {
				return m.readError(ctx, err)
			}
			return nil
		case <-retry.C:
			if err := m.node.ReadIndex(ctx, rctx); err != nil {
				return m.readError(ctx, err)
			}
		case <-ctx.Done():
			return m.readError(ctx, ctx.Err())
		}
	}
}

func (m *Member) readError(ctx context.Context, err error) error {
	m.metrics.readIndexesFailed.Inc()
	switch {
	case m.ctx.Err() != nil || errors.Is(err, raft.ErrStopped):
		return v3rpc.ErrStopped
	case ctx.Err() != nil:
		if m.lead.Load() == 0 {
			return v3rpc.ErrNoLeader
		}
		return v3rpc.ErrTimeout
	}
	return err
}
