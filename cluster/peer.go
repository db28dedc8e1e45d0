package cluster

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"go.etcd.io/raft/v3"
	raftpb "go.etcd.io/raft/v3/raftpb"

	"github.com/tendkv/tend/cluster/transport"
)

// ErrRemoved is why a member stops once it learns it was removed from the
// cluster.
var ErrRemoved = fmt.Errorf("the member has been permanently removed from the cluster: wipe its data dir and add it again (tend member add) to bring it back")

// peerHandler is the member as the peer transport sees it: received
// messages go to Raft, snapshot data to the snap folder.
type peerHandler struct{ m *Member }

var _ transport.Raft = peerHandler{}

func (h peerHandler) Process(ctx context.Context, msg *raftpb.Message) error {
	if h.m.isRemoved(msg.GetFrom()) {
		return fmt.Errorf("message from removed member %x", msg.GetFrom())
	}
	return h.m.node.Step(ctx, msg)
}

// ReceiveSnapshot stores the leader's store file next to the snapshots as
// <index>.snap.db; the Ready loop restores the store from it once Raft hands
// the snapshot over.
func (h peerHandler) ReceiveSnapshot(msg *raftpb.Message, data io.Reader) error {
	path := h.m.snapDBPath(msg.GetSnapshot().GetMetadata().GetIndex())
	tmp := path + ".part"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	_, err = io.Copy(f, data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("store snapshot data %s: %w", path, err)
	}
	h.m.log.Info("received snapshot data", "snapshot-index", msg.GetSnapshot().GetMetadata().GetIndex(), "from", fmt.Sprintf("%x", msg.GetFrom()))
	return nil
}

func (h peerHandler) IsRemoved(id uint64) bool    { return h.m.isRemoved(id) }
func (h peerHandler) ReportUnreachable(id uint64) { h.m.node.ReportUnreachable(id) }
func (h peerHandler) ReportSnapshot(id uint64, s raft.SnapshotStatus) {
	h.m.node.ReportSnapshot(id, s)
}
func (h peerHandler) ReportRemoved(peer uint64) {
	h.m.log.Warn("a peer says this member was removed", "peer", fmt.Sprintf("%x", peer))
	h.m.stop(ErrRemoved)
}

// snapDBPath is where the store file sent with snapshot index lives.
func (m *Member) snapDBPath(index uint64) string {
	return filepath.Join(m.cfg.DataDir, "member", "snap", fmt.Sprintf("%016x.snap.db", index))
}

// writeSnapshotData sends a consistent copy of this member's store with a
// snapshot message. The copy may be newer than the snapshot's index: the
// receiver's store skips the entries it already holds.
func (m *Member) writeSnapshotData(w io.Writer, msg *raftpb.Message) error {
	_, err := m.store.Snapshot(w)
	return err
}

// newTransport builds the peer transport once the member's IDs are known.
func (m *Member) newTransport() *transport.Transport {
	return transport.New(transport.Config{
		ID:            m.id,
		ClusterID:     m.cid,
		Raft:          peerHandler{m},
		WriteSnapshot: m.writeSnapshotData,
		Query:         m.clusterQuery,
		Call:          m.answerCall,
		Faults:        m.cfg.Faults,
		Observe:       m.cfg.ObserveMessage,
		ObserveRTT:    m.metrics.observeRTT,
		Dial:          m.tls.peerDial(),
		Logger:        m.log,
	})
}

// syncPeers makes the transport send to exactly the members of the
// cluster other than this one.
func (m *Member) syncPeers() {
	t := m.transport
	m.membersMu.Lock()
	want := map[uint64][]string{}
	for _, mi := range m.members {
		if mi.ID != m.id {
			want[mi.ID] = mi.PeerURLs
		}
	}
	m.membersMu.Unlock()
	for _, id := range t.Peers() {
		if _, ok := want[id]; !ok {
			t.RemovePeer(id)
		}
	}
	for id, urls := range want {
		t.AddPeer(id, urls)
	}
}
