package cluster

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
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

// keepSnapshots is how many snapshot files stay on disk.
const keepSnapshots = 5

// runRaft is the Ready loop (see the package doc for its steps). Nothing
// else writes the WAL, Raft's storage and the store (apply may run in a
// goroutine the loop waits for before the next step).
func (m *Member) runRaft() {
	ticker := time.NewTicker(m.cfg.HeartbeatInterval)
	defer ticker.Stop()
	leader, campaigned := false, false
	for {
		select {
		case d := <-m.tickc:
			ticker.Reset(d)
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
			m.heartbeats.reset()
			m.log.Info("became leader", "term", m.term.Load())
		case !isLeader && *leader:
			m.store.Demote()
			m.log.Info("lost leadership", "leader", fmt.Sprintf("%x", rd.SoftState.Lead))
		}
		*leader = isLeader
		if lead := rd.SoftState.Lead; lead != raft.None && lead != m.lead.Load() {
			m.metrics.leaderChanges.Inc()
		}
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
		if err := m.saveSnapshot(rd.Snapshot); err != nil {
			return err
		}
	}
	// 5, first part: what may go before the entries are durable goes now
	// — on the leader every message: it sends its appends while it writes
	// them itself (Raft thesis §10.2.1; etcd does so too), as an entry
	// commits once a quorum holds it durably, whichever members those are;
	// elsewhere the proposals and read requests forwarded to the leader,
	// which claim nothing about this member's log or vote, so they reach
	// the leader one fsync sooner. Answers and votes wait (persist).
	if *leader {
		m.noteLateHeartbeats(rd.Messages)
	}
	now, later := splitMessages(rd.Messages, *leader)
	if err := m.send(now); err != nil {
		return err
	}
	// 6 begins while 4 runs: committed entries this member's WAL already
	// holds go into the store during the fsync (as etcd applies them), so
	// their proposers hear back one fsync sooner. The rest wait for it.
	early, late := m.splitCommitted(rd)
	var applied chan error
	if len(early) > 0 {
		applied = make(chan error, 1)
		go func() { applied <- m.apply(early) }()
	}
	err := m.persist(rd, later)
	if applied != nil {
		// Joined even when persisting failed: nothing may touch the
		// store once the loop returns.
		if aerr := <-applied; err == nil {
			err = aerr
		}
	}
	if err != nil {
		return err
	}
	// 6. Committed entries, into the store.
	if err := m.apply(late); err != nil {
		return err
	}
	if m.removedSelf {
		return ErrRemoved
	}
	if m.lead.Load() != 0 && m.AppliedIndex() >= m.committed.Load() {
		m.readyOnce.Do(func() { close(m.readyc) })
	}
	// 7. Snapshot and compact when enough has been applied. (8, Advance,
	// is the caller's.)
	return m.maybeSnapshot()
}

// persist does steps 4 and 5 of the Ready loop: HardState and entries to
// the WAL (fsynced) and Raft's storage, the received snapshot into the
// store, then the messages that must wait until they are durable. It may
// run while apply applies the committed entries splitCommitted let go
// first: neither touches what the other writes.
func (m *Member) persist(rd raft.Ready, msgs []*raftpb.Message) error {
	// 4. HardState and entries, fsynced.
	if err := m.wal.Save(rd.HardState, rd.Entries); err != nil {
		return fmt.Errorf("save %d entries to WAL: %w", len(rd.Entries), err)
	}
	if !raft.IsEmptySnap(rd.Snapshot) {
		if err := m.applySnapshot(rd.Snapshot); err != nil {
			return err
		}
	}
	if err := m.raftStorage.Append(rd.Entries); err != nil {
		return fmt.Errorf("append %d entries to raft storage: %w", len(rd.Entries), err)
	}
	// 5, second part: answers and votes, now that what they promise is
	// durable.
	return m.send(msgs)
}

// splitMessages splits a Ready's messages into those sent before its
// HardState and entries are saved and those sent after: on the leader all
// go before; on other members only forwarded proposals (MsgProp) and read
// requests (MsgReadIndex) do, which Raft itself treats as local requests
// that carry no term, so the rest (acknowledgements, votes, heartbeat
// answers) keep the order the library asks for.
func splitMessages(msgs []*raftpb.Message, leader bool) (now, later []*raftpb.Message) {
	if leader {
		return msgs, nil
	}
	for _, msg := range msgs {
		switch msg.GetType() {
		case raftpb.MessageType_MsgProp, raftpb.MessageType_MsgReadIndex:
			now = append(now, msg)
		default:
			later = append(later, msg)
		}
	}
	return now, later
}

// splitCommitted splits a Ready's committed entries into those that may be
// applied while its entries are saved and those that must wait. The first
// are the longest run of normal entries that an earlier Ready saved and
// this one does not replace: durable here as on a quorum, so applying them
// before this fsync ends changes nothing a crash could see. Membership
// changes, and everything after one, wait (applying one changes the
// configuration, the member list and the peers), as does everything when
// the Ready brings a snapshot (it replaces the store) or no entries (there
// is no fsync to overlap; a goroutine would only cost a hand-off).
func (m *Member) splitCommitted(rd raft.Ready) (early, late []*raftpb.Entry) {
	ents := rd.CommittedEntries
	if len(ents) == 0 || len(rd.Entries) == 0 || !raft.IsEmptySnap(rd.Snapshot) {
		return nil, ents
	}
	durable, err := m.raftStorage.LastIndex()
	if err != nil {
		return nil, ents
	}
	durable = min(durable, rd.Entries[0].GetIndex()-1)
	n := 0
	for n < len(ents) && ents[n].GetIndex() <= durable && ents[n].GetType() == raftpb.EntryType_EntryNormal {
		n++
	}
	return ents[:n], ents[n:]
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
			if err := m.applyConfChange(&cc); err != nil {
				return fmt.Errorf("apply conf change at index %d: %w", e.GetIndex(), err)
			}
			m.confIndex = e.GetIndex()
		case raftpb.EntryConfChangeV2:
			var cc raftpb.ConfChangeV2
			if err := proto.Unmarshal(e.GetData(), &cc); err != nil {
				return fmt.Errorf("decode conf change at index %d: %w", e.GetIndex(), err)
			}
			m.confState = m.node.ApplyConfChange(&cc)
			m.confIndex = e.GetIndex()
		}
		// Entries the store did not apply (empty, membership, refused)
		// still count, so its applied index follows the log. (Checked
		// first: most entries the store applied, and Advance locks it.)
		if m.store.AppliedIndex() < e.GetIndex() {
			if err := m.store.Advance(e.GetIndex()); err != nil {
				return fmt.Errorf("apply entry %d: %w", e.GetIndex(), err)
			}
		}
		m.setApplied(e.GetIndex())
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
	if r.ClusterMemberAttrSet != nil {
		// Membership lives beside the store, in snapshots' data.
		m.applyMemberAttrs(r.ClusterMemberAttrSet)
	} else if r.Alarm == nil && raised(alarms, pb.AlarmType_CORRUPT) {
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
	if idx <= m.snapIndex || idx < m.confIndex {
		// Nothing new, or the configuration (and member list) in hand
		// is newer than idx: wait until the store holds it durably.
		return nil
	}
	data, err := m.encodeMembership()
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
	if idx > m.cfg.SnapshotCatchUpEntries {
		compact = idx - m.cfg.SnapshotCatchUpEntries
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

// saveSnapshot makes a snapshot received from the leader durable: its file,
// then its WAL record (restart only uses snapshots the WAL knows).
func (m *Member) saveSnapshot(s *raftpb.Snapshot) error {
	idx := s.GetMetadata().GetIndex()
	if err := m.snapshotter.SaveSnap(s); err != nil {
		return fmt.Errorf("save received snapshot at index %d: %w", idx, err)
	}
	if err := m.wal.SaveSnapshot(newWALSnapshot(s.GetMetadata())); err != nil {
		return fmt.Errorf("record received snapshot %d in WAL: %w", idx, err)
	}
	return nil
}

// applySnapshot replaces this member's state with a snapshot received from
// the leader: Raft's storage, the store (from the file the transport
// received), the member list and the peers.
func (m *Member) applySnapshot(s *raftpb.Snapshot) error {
	md := s.GetMetadata()
	idx := md.GetIndex()
	if err := m.raftStorage.ApplySnapshot(s); err != nil {
		return fmt.Errorf("load received snapshot %d into raft: %w", idx, err)
	}
	if idx > m.store.AppliedIndex() {
		path := m.snapDBPath(idx)
		f, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("open received snapshot data: %w", err)
		}
		err = m.store.Restore(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("restore store from received snapshot %d: %w", idx, err)
		}
		if got := m.store.AppliedIndex(); got < idx {
			return fmt.Errorf("restore store from received snapshot %d: its data holds index %d only", idx, got)
		}
	}
	os.Remove(m.snapDBPath(idx))
	if err := m.loadMembership(s.GetData()); err != nil {
		return fmt.Errorf("decode members in received snapshot %d: %w", idx, err)
	}
	m.confState = proto.Clone(md.GetConfState()).(*raftpb.ConfState)
	m.snapIndex = idx
	m.setApplied(idx)
	if err := m.wal.ReleaseLockTo(idx); err != nil {
		return fmt.Errorf("release WAL up to %d: %w", idx, err)
	}
	m.syncPeers()
	m.snapshotsInstalled.Add(1)
	m.log.Info("applied snapshot from leader", "snapshot-index", idx, "store-applied-index", m.store.AppliedIndex())
	return m.purgeSnapshots()
}

// send hands messages to the transport. A snapshot goes out as of now, not
// as of when it was cut: a member added since must find itself in its
// configuration.
func (m *Member) send(msgs []*raftpb.Message) error {
	for _, msg := range msgs {
		if msg.GetType() == raftpb.MessageType_MsgSnap {
			if err := m.mergeSnapshot(msg); err != nil {
				return err
			}
		}
	}
	m.transport.Send(msgs)
	return nil
}

// mergeSnapshot makes an outgoing snapshot message describe this member's
// applied state (index, term, configuration and members) instead of the
// last snapshot it cut, as etcd does; the transport then streams the store,
// which holds at least that much.
func (m *Member) mergeSnapshot(msg *raftpb.Message) error {
	applied := m.AppliedIndex()
	term, err := m.raftStorage.Term(applied)
	if err != nil {
		return fmt.Errorf("snapshot for %x: term of applied index %d: %w", msg.GetTo(), applied, err)
	}
	data, err := m.encodeMembership()
	if err != nil {
		return fmt.Errorf("snapshot for %x: %w", msg.GetTo(), err)
	}
	msg.Snapshot = &raftpb.Snapshot{
		Data: data,
		Metadata: &raftpb.SnapshotMetadata{
			Index:     proto.Uint64(applied),
			Term:      proto.Uint64(term),
			ConfState: proto.Clone(m.confState).(*raftpb.ConfState),
		},
	}
	return nil
}
