package cluster

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/server/v3/storage/wal/walpb"
	"go.etcd.io/raft/v3"
	raftpb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/tendkv/tend/cluster/v3rpc"
	"github.com/tendkv/tend/store"
)

// snapshotCatchUpEntries is how many entries stay in Raft's memory behind a
// snapshot, so a slightly slow follower catches up from the log instead of a
// snapshot (etcd keeps as many).
const snapshotCatchUpEntries = 5000

// keepSnapshots is how many snapshot files stay on disk.
const keepSnapshots = 5

// runRaft is the Ready loop (see the package doc for its steps). It is the
// only goroutine that writes the WAL, Raft's storage and the store.
func (m *Member) runRaft() {
	ticker := time.NewTicker(m.cfg.HeartbeatInterval)
	defer ticker.Stop()
	leader, campaigned := false, false
	for {
		select {
		case <-ticker.C:
			m.node.Tick()
			if err := m.maybeSnapshot(); err != nil {
				m.stop(err)
				return
			}
		case rd := <-m.node.Ready():
			if err := m.handleReady(rd, &leader); err != nil {
				m.stop(err)
				return
			}
			m.node.Advance()
		case <-m.ctx.Done():
			return
		}
		if !campaigned && m.soleVoter() {
			// Alone, there is no one to wait for: campaign at once
			// instead of after an election timeout. Raft refuses until
			// the member's own configuration is applied.
			campaigned = true
			if err := m.node.Campaign(m.ctx); err != nil && m.ctx.Err() == nil {
				m.stop(fmt.Errorf("campaign: %w", err))
				return
			}
		}
	}
}

// soleVoter reports whether the applied configuration has this member as
// its only voter, and no leader is known yet.
func (m *Member) soleVoter() bool {
	v := m.confState.GetVoters()
	return len(v) == 1 && v[0] == m.id && m.lead.Load() == 0
}

// handleReady does steps 1 to 7 of the Ready loop (package doc).
func (m *Member) handleReady(rd raft.Ready, leader *bool) error {
	// 1. Term, commit index, leader; the lease clock follows leadership.
	if !raft.IsEmptyHardState(rd.HardState) {
		m.term.Store(rd.HardState.GetTerm())
		m.committed.Store(rd.HardState.GetCommit())
	}
	if rd.SoftState != nil {
		// The store's lease clock changes before others can see this
		// member lead, so lease calls never find a leader unpromoted.
		isLeader := rd.SoftState.RaftState == raft.StateLeader
		switch {
		case isLeader && !*leader:
			m.store.Promote(m.cfg.ElectionTimeout)
			m.log.Info("became leader", "term", m.term.Load())
		case !isLeader && *leader:
			m.store.Demote()
			m.log.Info("lost leadership", "leader", fmt.Sprintf("%x", rd.SoftState.Lead))
		}
		*leader = isLeader
		m.lead.Store(rd.SoftState.Lead)
	}
	// 2. Read states to the ReadIndex loop.
	for _, rs := range rd.ReadStates {
		// Never block the loop on readers (they may be waiting for this
		// loop to apply): a dropped read state makes its round ask again.
		select {
		case m.readStates <- rs:
		default:
			m.log.Warn("dropped read state: ReadIndex loop is behind", "read-index", rs.Index)
		}
	}
	// 3. A snapshot from the leader: its file and WAL record first, so a
	// crash after the entries below still finds it.
	if !raft.IsEmptySnap(rd.Snapshot) {
		// Restoring the store from a peer's snapshot comes with the peer
		// transport; a single member never receives one.
		return fmt.Errorf("receive snapshot at index %d: restoring from a peer is not supported yet", rd.Snapshot.GetMetadata().GetIndex())
	}
	// 4. HardState and entries, fsynced, before anything is sent.
	if err := m.wal.Save(rd.HardState, rd.Entries); err != nil {
		return fmt.Errorf("save %d entries to WAL: %w", len(rd.Entries), err)
	}
	if err := m.raftStorage.Append(rd.Entries); err != nil {
		return fmt.Errorf("append %d entries to raft storage: %w", len(rd.Entries), err)
	}
	// 5. Messages.
	m.transport.Send(rd.Messages)
	// 6. Committed entries, into the store.
	if err := m.apply(rd.CommittedEntries); err != nil {
		return err
	}
	if m.lead.Load() != 0 && m.AppliedIndex() >= m.committed.Load() {
		m.readyOnce.Do(func() { close(m.readyc) })
	}
	// 7. Snapshot and compact when enough has been applied. (8, Advance,
	// is the caller's.)
	return m.maybeSnapshot()
}

// apply applies committed entries in order. A failing store stops the
// member: a crash beats replicas that diverge.
func (m *Member) apply(ents []*raftpb.Entry) error {
	for _, e := range ents {
		switch e.GetType() {
		case raftpb.EntryNormal:
			if len(e.GetData()) > 0 {
				if err := m.applyRequest(e); err != nil {
					return err
				}
			}
		case raftpb.EntryConfChange:
			var cc raftpb.ConfChange
			if err := proto.Unmarshal(e.GetData(), &cc); err != nil {
				return fmt.Errorf("decode conf change at index %d: %w", e.GetIndex(), err)
			}
			m.confState = m.node.ApplyConfChange(&cc)
			if err := m.applyMembership(&cc); err != nil {
				return fmt.Errorf("apply conf change at index %d: %w", e.GetIndex(), err)
			}
		case raftpb.EntryConfChangeV2:
			var cc raftpb.ConfChangeV2
			if err := proto.Unmarshal(e.GetData(), &cc); err != nil {
				return fmt.Errorf("decode conf change at index %d: %w", e.GetIndex(), err)
			}
			m.confState = m.node.ApplyConfChange(&cc)
		}
		m.setApplied(e.GetIndex())
	}
	return nil
}

// applyMembership keeps the member list in step with conf changes: an added
// node carries its memberInfo as the change's context.
func (m *Member) applyMembership(cc *raftpb.ConfChange) error {
	m.membersMu.Lock()
	defer m.membersMu.Unlock()
	id := cc.GetNodeId()
	i := slices.IndexFunc(m.members, func(mi memberInfo) bool { return mi.ID == id })
	switch cc.GetType() {
	case raftpb.ConfChangeType_ConfChangeAddNode, raftpb.ConfChangeType_ConfChangeAddLearnerNode:
		var mi memberInfo
		if err := json.Unmarshal(cc.GetContext(), &mi); err != nil {
			return fmt.Errorf("decode member %x: %w", id, err)
		}
		if mi.ID != id {
			return fmt.Errorf("member %x: context names member %x", id, mi.ID)
		}
		if i < 0 {
			m.members = append(m.members, mi)
			slices.SortFunc(m.members, func(a, b memberInfo) int { return cmp.Compare(a.ID, b.ID) })
			return nil
		}
		if len(mi.ClientURLs) == 0 {
			mi.ClientURLs = m.members[i].ClientURLs // known locally, not in the log
		}
		m.members[i] = mi
	case raftpb.ConfChangeType_ConfChangeRemoveNode:
		if i >= 0 {
			m.members = slices.Delete(m.members, i, i+1)
		}
	}
	return nil
}

func (m *Member) applyRequest(e *raftpb.Entry) error {
	var r pb.InternalRaftRequest
	if err := proto.Unmarshal(e.GetData(), &r); err != nil {
		return fmt.Errorf("decode entry %d: %w", e.GetIndex(), err)
	}
	var res store.Result
	alarms := m.store.Alarms()
	if r.Alarm == nil && raised(alarms, pb.AlarmType_CORRUPT) {
		// A corrupt cluster takes no more writes until an operator
		// disarms the alarm (etcd's corrupt applier).
		res = store.Result{Err: v3rpc.ErrCorrupt}
	} else if needsSpace(&r) && raised(alarms, pb.AlarmType_NOSPACE) {
		// While NOSPACE is raised, writes that grow the keyspace fail on
		// every member alike (etcd's capped applier); the alarm is part
		// of the applied state, so replay decides the same way.
		res = store.Result{Err: v3rpc.ErrNoSpace}
	} else {
		var err error
		if res, err = m.store.Apply(e.GetIndex(), &r); err != nil {
			return fmt.Errorf("apply entry %d: %w", e.GetIndex(), err)
		}
	}
	m.wait.trigger(r.ID, res)
	return nil
}

// raised reports whether alarm t is among alarms.
func raised(alarms []*pb.AlarmMember, t pb.AlarmType) bool {
	for _, a := range alarms {
		if a.Alarm == t {
			return true
		}
	}
	return false
}

// needsSpace reports whether r may grow the keyspace: puts, lease grants,
// and txns with a put in either branch.
func needsSpace(r *pb.InternalRaftRequest) bool {
	switch {
	case r.Put != nil, r.LeaseGrant != nil:
		return true
	case r.Txn != nil:
		return txnPuts(r.Txn)
	}
	return false
}

func txnPuts(t *pb.TxnRequest) bool {
	for _, ops := range [][]*pb.RequestOp{t.Success, t.Failure} {
		for _, op := range ops {
			switch u := op.Request.(type) {
			case *pb.RequestOp_RequestPut:
				return true
			case *pb.RequestOp_RequestTxn:
				if txnPuts(u.RequestTxn) {
					return true
				}
			}
		}
	}
	return false
}

// maybeSnapshot writes a Raft snapshot once SnapshotCount entries were
// applied since the last, then lets the WAL and Raft's memory drop what it
// covers. The snapshot index never passes the store's DurableIndex, what its
// file holds after its last batch commit: a crash loses applied requests
// above it, and only the log can replay them, so those entries must stay.
// (The store commits its batch within its BatchInterval, so the snapshot
// follows a moment later, without an fsync in the Ready loop.)
func (m *Member) maybeSnapshot() error {
	applied := m.AppliedIndex()
	if applied-m.snapIndex < m.cfg.SnapshotCount {
		return nil
	}
	idx := min(applied, m.store.DurableIndex())
	if idx <= m.snapIndex {
		return nil
	}
	m.membersMu.Lock()
	data, err := json.Marshal(m.members)
	m.membersMu.Unlock()
	if err != nil {
		return fmt.Errorf("encode members for snapshot: %w", err)
	}
	snapshot, err := m.raftStorage.CreateSnapshot(idx, m.confState, data)
	if errors.Is(err, raft.ErrSnapOutOfDate) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("create snapshot at index %d: %w", idx, err)
	}
	// The file first, then the WAL record naming it: restart only uses
	// snapshots the WAL knows.
	if err := m.snapshotter.SaveSnap(snapshot); err != nil {
		return fmt.Errorf("save snapshot at index %d: %w", idx, err)
	}
	if err := m.wal.SaveSnapshot(newWALSnapshot(snapshot.GetMetadata())); err != nil {
		return fmt.Errorf("record snapshot %d in WAL: %w", idx, err)
	}
	if err := m.wal.ReleaseLockTo(idx); err != nil {
		return fmt.Errorf("release WAL up to %d: %w", idx, err)
	}
	compact := uint64(1)
	if idx > snapshotCatchUpEntries {
		compact = idx - snapshotCatchUpEntries
	}
	if err := m.raftStorage.Compact(compact); err != nil && !errors.Is(err, raft.ErrCompacted) {
		return fmt.Errorf("compact raft log to %d: %w", compact, err)
	}
	m.snapIndex = idx
	m.log.Info("saved snapshot", "snapshot-index", idx, "compacted-to", compact)
	return m.purgeSnapshots()
}

// purgeSnapshots removes all but the newest keepSnapshots snapshot files.
func (m *Member) purgeSnapshots() error {
	dir := filepath.Join(m.cfg.DataDir, "member", "snap")
	names, err := filepath.Glob(filepath.Join(dir, "*.snap"))
	if err != nil {
		return fmt.Errorf("list snapshots in %s: %w", dir, err)
	}
	// Names are <term>-<index>.snap in fixed-width hex: they sort by age.
	sort.Strings(names)
	for len(names) > keepSnapshots {
		if err := os.Remove(names[0]); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("remove old snapshot: %w", err)
		}
		names = names[1:]
	}
	return nil
}

func newWALSnapshot(md *raftpb.SnapshotMetadata) *walpb.Snapshot {
	return &walpb.Snapshot{
		Index:     proto.Uint64(md.GetIndex()),
		Term:      proto.Uint64(md.GetTerm()),
		ConfState: md.GetConfState(),
	}
}
