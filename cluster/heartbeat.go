package cluster

import (
	"fmt"
	"time"

	raftpb "go.etcd.io/raft/v3/raftpb"
)

// heartbeatWatch finds a leader's late heartbeats, as etcd's timeout
// detector does: a heartbeat to a peer more than twice the heartbeat
// interval after the previous one means the leader's loop was held up
// (a slow disk, most likely), and followers may soon start an election.
// Only the raft loop's goroutine uses it.
type heartbeatWatch struct {
	limit time.Duration
	last  map[uint64]time.Time
}

func newHeartbeatWatch(interval time.Duration) *heartbeatWatch {
	return &heartbeatWatch{limit: 2 * interval, last: map[uint64]time.Time{}}
}

// reset forgets the previous heartbeats, when this member starts to lead.
func (w *heartbeatWatch) reset() { clear(w.last) }

// observe records the heartbeats among msgs sent at now and returns, for
// each late one, its peer and by how much it was late.
func (w *heartbeatWatch) observe(msgs []*raftpb.Message, now time.Time) (late []lateHeartbeat) {
	for _, msg := range msgs {
		if msg.GetType() != raftpb.MessageType_MsgHeartbeat {
			continue
		}
		to := msg.GetTo()
		if prev, ok := w.last[to]; ok {
			if over := now.Sub(prev) - w.limit; over > 0 {
				late = append(late, lateHeartbeat{peer: to, over: over})
			}
		}
		w.last[to] = now
	}
	return late
}

type lateHeartbeat struct {
	peer uint64
	over time.Duration
}

// noteLateHeartbeats counts and logs, as etcd does, the leader's
// heartbeats among msgs that leave late.
func (m *Member) noteLateHeartbeats(msgs []*raftpb.Message) {
	for _, l := range m.heartbeats.observe(msgs, time.Now()) {
		m.lateHeartbeats.Add(1)
		m.log.Warn("leader failed to send out heartbeat on time; took too long, leader is overloaded likely from slow disk",
			"to", fmt.Sprintf("%x", l.peer), "heartbeat-interval", m.cfg.HeartbeatInterval,
			"expected-duration", m.heartbeats.limit, "exceeded-duration", l.over)
	}
}
