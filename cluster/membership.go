package cluster

import (
	"cmp"
	"context"
	"crypto/sha1"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/membershippb"
	"go.etcd.io/raft/v3"
	raftpb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/tendkv/tend/cluster/transport"
	"github.com/tendkv/tend/cluster/v3rpc"
	"github.com/tendkv/tend/store"
)

// maxLearners is how many learners a cluster may hold at once (etcd's
// default).
const maxLearners = 1

// membership is what snapshots carry besides the store: the members and the
// IDs removed for good.
type membership struct {
	Members []memberInfo `json:"members"`
	Removed []uint64     `json:"removed,omitempty"`
}

// clusterInfo answers a joining member's query.
type clusterInfo struct {
	ClusterID uint64       `json:"cluster-id"`
	Members   []memberInfo `json:"members"`
}

func (m *Member) clusterQuery() []byte {
	m.membersMu.Lock()
	defer m.membersMu.Unlock()
	b, _ := json.Marshal(clusterInfo{ClusterID: m.cid, Members: m.members})
	return b
}

func (m *Member) isRemoved(id uint64) bool {
	m.membersMu.Lock()
	defer m.membersMu.Unlock()
	return m.removed[id]
}

// encodeMembership is the data of a Raft snapshot.
func (m *Member) encodeMembership() ([]byte, error) {
	m.membersMu.Lock()
	defer m.membersMu.Unlock()
	ms := membership{Members: m.members}
	for id := range m.removed {
		ms.Removed = append(ms.Removed, id)
	}
	slices.Sort(ms.Removed)
	return json.Marshal(ms)
}

// loadMembership replaces the member list with a snapshot's; snapshots of
// earlier versions held the member list alone.
func (m *Member) loadMembership(data []byte) error {
	var ms membership
	if len(data) > 0 && data[0] == '[' {
		if err := json.Unmarshal(data, &ms.Members); err != nil {
			return err
		}
	} else if err := json.Unmarshal(data, &ms); err != nil {
		return err
	}
	m.membersMu.Lock()
	defer m.membersMu.Unlock()
	// Client URLs this member knows of itself are not in the snapshot when
	// it was cut before they were published.
	self := slices.IndexFunc(m.members, func(mi memberInfo) bool { return mi.ID == m.id })
	m.members = ms.Members
	if i := slices.IndexFunc(m.members, func(mi memberInfo) bool { return mi.ID == m.id }); i >= 0 && self >= 0 && len(m.members[i].ClientURLs) == 0 {
		m.members[i].ClientURLs = m.selfClientURLs
	}
	m.removed = map[uint64]bool{}
	for _, id := range ms.Removed {
		m.removed[id] = true
	}
	return nil
}

// member returns the member with id.
func (m *Member) member(id uint64) (memberInfo, bool) {
	m.membersMu.Lock()
	defer m.membersMu.Unlock()
	i := slices.IndexFunc(m.members, func(mi memberInfo) bool { return mi.ID == id })
	if i < 0 {
		return memberInfo{}, false
	}
	return m.members[i], true
}

// newMemberID gives an added member an ID as etcd does: from its peer URLs
// and the time it was added, so a member added again gets a new ID.
func newMemberID(peerURLs []string, now time.Time) uint64 {
	urls := make([]string, len(peerURLs))
	for i, u := range peerURLs {
		urls[i] = normalizeURL(u)
	}
	sort.Strings(urls)
	b := []byte(strings.Join(urls, "") + strconv.FormatInt(now.Unix(), 10))
	sum := sha1.Sum(b)
	return binary.BigEndian.Uint64(sum[:8])
}

func checkPeerURLs(urls []string) error {
	if len(urls) == 0 {
		return v3rpc.ErrMemberBadURLs
	}
	for _, u := range urls {
		if err := checkURL(u); err != nil {
			return fmt.Errorf("%w: %q: %v", v3rpc.ErrMemberBadURLs, u, err)
		}
	}
	return nil
}

// AddMember adds a member (a learner when learner is set) with peerURLs and
// returns it with the new member list, once the change is applied here.
func (m *Member) AddMember(ctx context.Context, peerURLs []string, learner bool) (*pb.Member, []*pb.Member, error) {
	if err := checkPeerURLs(peerURLs); err != nil {
		return nil, nil, err
	}
	urls := slices.Clone(peerURLs)
	sort.Strings(urls)
	mi := memberInfo{ID: newMemberID(urls, time.Now()), PeerURLs: urls, IsLearner: learner}
	if learner {
		if m.learners() >= maxLearners {
			return nil, nil, v3rpc.ErrTooManyLearners
		}
	} else if err := m.mayAddVoter(); err != nil {
		return nil, nil, err
	}
	t := raftpb.ConfChangeType_ConfChangeAddNode
	if learner {
		t = raftpb.ConfChangeType_ConfChangeAddLearnerNode
	}
	ctxb, err := json.Marshal(mi)
	if err != nil {
		return nil, nil, fmt.Errorf("encode member: %w", err)
	}
	members, err := m.proposeConfChange(ctx, &raftpb.ConfChange{Type: t.Enum(), NodeId: proto.Uint64(mi.ID), Context: ctxb})
	if err != nil {
		return nil, nil, err
	}
	return mi.pb(), members, nil
}

// RemoveMember removes member id from the cluster.
func (m *Member) RemoveMember(ctx context.Context, id uint64) ([]*pb.Member, error) {
	mi, ok := m.member(id)
	if !ok {
		return nil, v3rpc.ErrMemberNotFound
	}
	if !mi.IsLearner {
		if err := m.mayRemoveVoter(id); err != nil {
			return nil, err
		}
	}
	return m.proposeConfChange(ctx, &raftpb.ConfChange{
		Type: raftpb.ConfChangeType_ConfChangeRemoveNode.Enum(), NodeId: proto.Uint64(id),
	})
}

// UpdateMember changes the peer URLs of member id.
func (m *Member) UpdateMember(ctx context.Context, id uint64, peerURLs []string) ([]*pb.Member, error) {
	if err := checkPeerURLs(peerURLs); err != nil {
		return nil, err
	}
	mi, ok := m.member(id)
	if !ok {
		return nil, v3rpc.ErrMemberNotFound
	}
	mi.PeerURLs = slices.Clone(peerURLs)
	sort.Strings(mi.PeerURLs)
	ctxb, err := json.Marshal(mi)
	if err != nil {
		return nil, fmt.Errorf("encode member: %w", err)
	}
	return m.proposeConfChange(ctx, &raftpb.ConfChange{
		Type: raftpb.ConfChangeType_ConfChangeUpdateNode.Enum(), NodeId: proto.Uint64(id), Context: ctxb,
	})
}

// PromoteMember makes learner id a voting member once it has caught up
// with the leader. Only the leader can tell: others ask it.
func (m *Member) PromoteMember(ctx context.Context, id uint64) ([]*pb.Member, error) {
	if m.lead.Load() == m.id {
		return m.promoteHere(ctx, id)
	}
	if _, err := m.callLeader(ctx, callPromote, binary.BigEndian.AppendUint64(nil, id)); err != nil {
		return nil, err
	}
	// The change is committed; wait until this member applied it too.
	if err := m.LinearizableRead(ctx); err != nil {
		return nil, err
	}
	return m.Members(), nil
}

// promoteHere promotes learner id on this member, the leader.
func (m *Member) promoteHere(ctx context.Context, id uint64) ([]*pb.Member, error) {
	mi, ok := m.member(id)
	if !ok {
		return nil, v3rpc.ErrMemberNotFound
	}
	if !mi.IsLearner {
		return nil, v3rpc.ErrMemberNotLearner
	}
	if m.lead.Load() != m.id {
		return nil, v3rpc.ErrNotLeader
	}
	st := m.node.Status()
	leaderMatch := st.Progress[m.id].Match
	if p, ok := st.Progress[id]; !ok || float64(p.Match) < 0.9*float64(leaderMatch) {
		return nil, v3rpc.ErrLearnerNotReady
	}
	mi.IsLearner = false
	ctxb, err := json.Marshal(mi)
	if err != nil {
		return nil, fmt.Errorf("encode member: %w", err)
	}
	return m.proposeConfChange(ctx, &raftpb.ConfChange{
		Type: raftpb.ConfChangeType_ConfChangeAddNode.Enum(), NodeId: proto.Uint64(id), Context: ctxb,
	})
}

// learners counts the learners in the member list.
func (m *Member) learners() int {
	m.membersMu.Lock()
	defer m.membersMu.Unlock()
	n := 0
	for _, mi := range m.members {
		if mi.IsLearner {
			n++
		}
	}
	return n
}

// The strict reconfiguration checks, as etcd's: a change must not leave
// the cluster without a quorum of started members (ones that published
// their attributes), nor without a quorum this member is connected to.

// voterStats counts the voting members other than except: all, started,
// and connected to this member for a while (itself included).
func (m *Member) voterStats(except uint64) (voters, started, connected int) {
	since := time.Now().Add(-m.cfg.ElectionTimeout)
	m.membersMu.Lock()
	defer m.membersMu.Unlock()
	for _, mi := range m.members {
		if mi.IsLearner || mi.ID == except {
			continue
		}
		voters++
		if mi.Name != "" {
			started++
		}
		if at := m.transport.ActiveSince(mi.ID); mi.ID == m.id || (!at.IsZero() && at.Before(since)) {
			connected++
		}
	}
	return voters, started, connected
}

// mayAddVoter says why one more voter must not be added now, or nil.
func (m *Member) mayAddVoter() error {
	voters, started, connected := m.voterStats(0)
	if voters == 1 {
		return nil // growing a one-member cluster
	}
	if started < (voters+1)/2+1 {
		return v3rpc.ErrNotEnoughStarted
	}
	if connected < (voters+1)/2+1 {
		return v3rpc.ErrUnhealthy
	}
	return nil
}

// mayRemoveVoter says why voter id must not be removed now, or nil.
func (m *Member) mayRemoveVoter(id uint64) error {
	voters, started, _ := m.voterStats(id)
	if started < voters/2+1 {
		return v3rpc.ErrNotEnoughStarted
	}
	if id != m.id && m.transport.ActiveSince(id).IsZero() {
		return nil // a member that is down is not part of the active quorum
	}
	all, _, connected := m.voterStats(0)
	if connected-1 < 1+(all-1)/2 {
		return v3rpc.ErrUnhealthy
	}
	return nil
}

// proposeConfChange replicates cc and waits until this member applied it.
func (m *Member) proposeConfChange(ctx context.Context, cc *raftpb.ConfChange) ([]*pb.Member, error) {
	cc.Id = proto.Uint64(m.reqIDs.Next())
	resc := m.wait.register(cc.GetId())
	tctx, cancel := context.WithTimeout(ctx, m.requestTimeout())
	defer cancel()
	if err := m.node.ProposeConfChange(tctx, cc); err != nil {
		m.wait.cancel(cc.GetId())
		return nil, m.contextError(ctx, tctx, err)
	}
	select {
	case res := <-resc:
		if res.Err != nil {
			return nil, res.Err
		}
		return m.Members(), nil
	case <-tctx.Done():
		m.wait.cancel(cc.GetId())
		return nil, m.contextError(ctx, tctx, tctx.Err())
	case <-m.ctx.Done():
		m.wait.cancel(cc.GetId())
		return nil, v3rpc.ErrStopped
	}
}

// applyConfChange validates a committed conf change against the member
// list (the same on every member, so every member decides alike), applies
// it to Raft — or applies nothing when it is invalid — and answers its
// proposer.
func (m *Member) applyConfChange(cc *raftpb.ConfChange) error {
	verr := m.validateConfChange(cc)
	if verr != nil {
		// Raft must still see the change to unblock the next one; a change
		// of node none changes nothing.
		cc.NodeId = proto.Uint64(raft.None)
	}
	m.confState = m.node.ApplyConfChange(cc)
	if verr == nil {
		if err := m.applyMembership(cc); err != nil {
			return err
		}
	}
	m.wait.trigger(cc.GetId(), store.Result{Err: verr})
	if verr != nil {
		return nil
	}
	if cc.GetNodeId() == m.id && cc.GetType() == raftpb.ConfChangeType_ConfChangeRemoveNode {
		m.log.Warn("this member was removed from the cluster")
		m.removedSelf = true
		return nil
	}
	m.syncPeers()
	return nil
}

// validateConfChange says why cc must not apply, or nil.
func (m *Member) validateConfChange(cc *raftpb.ConfChange) error {
	m.membersMu.Lock()
	defer m.membersMu.Unlock()
	id := cc.GetNodeId()
	if m.removed[id] {
		return v3rpc.ErrMemberNotFound
	}
	i := slices.IndexFunc(m.members, func(mi memberInfo) bool { return mi.ID == id })
	var mi memberInfo
	if len(cc.GetContext()) > 0 {
		if err := json.Unmarshal(cc.GetContext(), &mi); err != nil {
			return fmt.Errorf("decode member %x: %w", id, err)
		}
	}
	urlTaken := func() bool {
		for _, o := range m.members {
			if o.ID == id {
				continue
			}
			for _, u := range o.PeerURLs {
				if slices.Contains(mi.PeerURLs, u) {
					return true
				}
			}
		}
		return false
	}
	// The initial members' own additions (the first entries of a new
	// cluster's log) find them already listed, from --initial-cluster or
	// the WAL's metadata: the same member again is no change.
	same := i >= 0 && slices.Equal(m.members[i].PeerURLs, mi.PeerURLs) && m.members[i].IsLearner == mi.IsLearner
	switch cc.GetType() {
	case raftpb.ConfChangeType_ConfChangeAddNode:
		if i >= 0 {
			if same || m.members[i].IsLearner {
				return nil // the same member, or a learner's promotion
			}
			return v3rpc.ErrMemberExists
		}
		if urlTaken() {
			return v3rpc.ErrPeerURLExists
		}
	case raftpb.ConfChangeType_ConfChangeAddLearnerNode:
		if same {
			return nil
		}
		if i >= 0 {
			return v3rpc.ErrMemberExists
		}
		if urlTaken() {
			return v3rpc.ErrPeerURLExists
		}
	case raftpb.ConfChangeType_ConfChangeRemoveNode:
		if i < 0 {
			return v3rpc.ErrMemberNotFound
		}
	case raftpb.ConfChangeType_ConfChangeUpdateNode:
		if i < 0 {
			return v3rpc.ErrMemberNotFound
		}
		if urlTaken() {
			return v3rpc.ErrPeerURLExists
		}
	}
	return nil
}

// applyMembership keeps the member list in step with a valid conf change:
// an added or updated node carries its memberInfo as the change's context.
func (m *Member) applyMembership(cc *raftpb.ConfChange) error {
	m.membersMu.Lock()
	defer m.membersMu.Unlock()
	id := cc.GetNodeId()
	i := slices.IndexFunc(m.members, func(mi memberInfo) bool { return mi.ID == id })
	switch cc.GetType() {
	case raftpb.ConfChangeType_ConfChangeAddNode, raftpb.ConfChangeType_ConfChangeAddLearnerNode,
		raftpb.ConfChangeType_ConfChangeUpdateNode:
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
		// Name and client URLs are the member's own attributes,
		// published apart from conf changes; keep them.
		old := m.members[i]
		if mi.Name == "" {
			mi.Name = old.Name
		}
		if len(mi.ClientURLs) == 0 {
			mi.ClientURLs = old.ClientURLs
		}
		m.members[i] = mi
	case raftpb.ConfChangeType_ConfChangeRemoveNode:
		if i >= 0 {
			m.members = slices.Delete(m.members, i, i+1)
		}
		m.removed[id] = true
	}
	return nil
}

// applyMemberAttrs records a member's published name and client URLs.
func (m *Member) applyMemberAttrs(r *membershippb.ClusterMemberAttrSetRequest) {
	m.membersMu.Lock()
	defer m.membersMu.Unlock()
	i := slices.IndexFunc(m.members, func(mi memberInfo) bool { return mi.ID == r.GetMember_ID() })
	if i < 0 {
		return
	}
	m.members[i].Name = r.GetMemberAttributes().GetName()
	m.members[i].ClientURLs = r.GetMemberAttributes().GetClientUrls()
}

// publish makes this member's name and client URLs known to the cluster
// through Raft, once per start (they may have changed since the last),
// retrying until it is applied or the member stops.
func (m *Member) publish() {
	for m.ctx.Err() == nil {
		ctx, cancel := context.WithTimeout(m.ctx, m.requestTimeout())
		_, err := m.Propose(ctx, &pb.InternalRaftRequest{ClusterMemberAttrSet: &membershippb.ClusterMemberAttrSetRequest{
			Member_ID:        m.id,
			MemberAttributes: &membershippb.Attributes{Name: m.cfg.Name, ClientUrls: m.selfClientURLs},
		}})
		cancel()
		if err == nil {
			m.log.Info("published member attributes", "name", m.cfg.Name, "client-urls", m.selfClientURLs)
			return
		}
		if m.ctx.Err() != nil {
			return
		}
		m.log.Warn("publish member attributes", "err", err)
		select {
		case <-time.After(m.cfg.ElectionTimeout):
		case <-m.ctx.Done():
		}
	}
}

// join asks the members named in --initial-cluster for the cluster this
// member was added to, and finds itself in it by its peer URLs.
func (m *Member) join(ctx context.Context) (clusterInfo, uint64, error) {
	cfg := &m.cfg
	byName, err := parseInitialCluster(cfg.InitialCluster)
	if err != nil {
		return clusterInfo{}, 0, err
	}
	self := slices.Clone(cfg.InitialAdvertisePeerURLs)
	sort.Strings(self)
	var urls []string
	for name, us := range byName {
		if name != cfg.Name {
			urls = append(urls, us...)
		}
	}
	if len(urls) == 0 {
		return clusterInfo{}, 0, fmt.Errorf("--initial-cluster-state existing: --initial-cluster %q names no other member to join: list the running members too", cfg.InitialCluster)
	}
	// Each member is asked in turn until one lists this member: one that
	// has not applied the MemberAdd yet (a follower behind) does not.
	qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var ci clusterInfo
	var errs []error
	answered := false
	for _, u := range urls {
		b, err := transport.Query(qctx, m.tls.peerDial(), []string{u})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var got clusterInfo
		if err := json.Unmarshal(b, &got); err != nil {
			errs = append(errs, fmt.Errorf("decode the members %s lists: %w", u, err))
			continue
		}
		ci, answered = got, true
		for _, mi := range ci.Members {
			if slices.Equal(mi.PeerURLs, self) {
				return ci, mi.ID, nil
			}
		}
	}
	if !answered {
		return clusterInfo{}, 0, fmt.Errorf("--initial-cluster-state existing: ask the cluster for its members: %w", errors.Join(errs...))
	}
	return clusterInfo{}, 0, fmt.Errorf("--initial-cluster-state existing: cluster %x has no member with peer URLs %s: add it first (tend member add %s --peer-urls=%s)",
		ci.ClusterID, strings.Join(self, ","), cfg.Name, strings.Join(self, ","))
}

// MoveLeader hands leadership from this member (the leader) to voting
// member target and waits until target leads.
func (m *Member) MoveLeader(ctx context.Context, target uint64) error {
	if m.lead.Load() != m.id {
		return v3rpc.ErrNotLeader
	}
	if target == m.id {
		return nil
	}
	mi, ok := m.member(target)
	if !ok || mi.IsLearner {
		return v3rpc.ErrBadLeaderTransferee
	}
	tctx, cancel := context.WithTimeout(ctx, m.requestTimeout())
	defer cancel()
	m.node.TransferLeadership(tctx, m.id, target)
	tick := time.NewTicker(m.cfg.HeartbeatInterval / 2)
	defer tick.Stop()
	for m.lead.Load() != target {
		select {
		case <-tick.C:
		case <-tctx.Done():
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return v3rpc.ErrLeaderTransferTimeout
		case <-m.ctx.Done():
			return v3rpc.ErrStopped
		}
	}
	m.log.Info("moved leadership", "to", fmt.Sprintf("%x", target))
	return nil
}
