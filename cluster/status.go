package cluster

import (
	"fmt"
	"time"

	"go.etcd.io/raft/v3"

	"github.com/tendkv/tend/cluster/v3rpc"
)

// Role is what a member is in Raft right now.
type Role string

const (
	RoleLeader       Role = "leader"
	RoleFollower     Role = "follower"
	RoleCandidate    Role = "candidate"
	RolePreCandidate Role = "pre-candidate"
	RoleLearner      Role = "learner"
)

// Status is a member's Raft state at one moment, for dashboards.
type Status struct {
	ID      uint64
	Name    string
	Role    Role
	Term    uint64
	Leader  uint64 // 0 when none is known
	Commit  uint64
	Applied uint64
	// Match is, on the leader, how far each member's log is known to
	// match its own.
	Match map[uint64]uint64
}

// Status reports the member's Raft state.
func (m *Member) Status() Status {
	rs := m.node.Status()
	st := Status{
		ID:      m.id,
		Name:    m.cfg.Name,
		Term:    rs.GetTerm(),
		Leader:  rs.Lead,
		Commit:  rs.GetCommit(),
		Applied: m.AppliedIndex(),
	}
	switch rs.RaftState {
	case raft.StateLeader:
		st.Role = RoleLeader
	case raft.StateCandidate:
		st.Role = RoleCandidate
	case raft.StatePreCandidate:
		st.Role = RolePreCandidate
	default:
		st.Role = RoleFollower
		if m.IsLearner() {
			st.Role = RoleLearner
		}
	}
	if len(rs.Progress) > 0 {
		st.Match = map[uint64]uint64{}
		for id, p := range rs.Progress {
			st.Match[id] = p.Match
		}
	}
	return st
}

// SetTickInterval changes how often Raft's logical clock ticks (one tick is
// a heartbeat interval; an election timeout is a fixed number of ticks), so
// the whole member runs slower or faster: the playground's slow motion.
func (m *Member) SetTickInterval(d time.Duration) error {
	if d <= 0 {
		return fmt.Errorf("tick interval %v: must be positive", d)
	}
	select {
	case m.tickc <- d:
		return nil
	case <-m.ctx.Done():
		return v3rpc.ErrStopped
	}
}
