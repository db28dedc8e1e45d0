package transport

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"go.etcd.io/raft/v3"
	raftpb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// sized is msg with size bytes of entry data.
func sized(from, to, index uint64, size int) *raftpb.Message {
	m := msg(from, to, index)
	m.Entries[0].Data = bytes.Repeat([]byte{byte(index)}, size)
	return m
}

// frameSize is the bytes m takes on a stream.
func frameSize(t *testing.T, m *raftpb.Message) uint64 {
	t.Helper()
	b, err := marshalFrame(nil, m)
	if err != nil {
		t.Fatal(err)
	}
	return uint64(len(b))
}

// sendOneByOne sends each message in a Send of its own, so none is
// coalesced with another, and returns the bytes they take on a stream.
func sendOneByOne(t *testing.T, tr *Transport, msgs []*raftpb.Message) uint64 {
	t.Helper()
	var n uint64
	for _, m := range msgs {
		n += frameSize(t, m)
		tr.Send([]*raftpb.Message{m})
	}
	return n
}

// awaitBytes waits until a has sent want bytes to b and b has received
// them from a, and checks neither counted a send failure.
func awaitBytes(t *testing.T, a, b *node, want uint64) {
	t.Helper()
	var sent, recv PeerStats
	eventually(t, fmt.Sprintf("%d bytes sent and received", want), func() bool {
		sent, recv = a.t.PeerStats()[b.id], b.t.PeerStats()[a.id]
		return sent.SentBytes == want && recv.ReceivedBytes == want
	})
	if sent.SentFailures != 0 || recv.SentFailures != 0 {
		t.Errorf("send failures on a healthy link: %d from %d, %d from %d", sent.SentFailures, a.id, recv.SentFailures, b.id)
	}
}

// TestPeerStatsBytes: what a member counts as sent to a peer is what the
// peer counts as received from it, the frames of the messages and
// snapshot sent, and grows with their size.
func TestPeerStatsBytes(t *testing.T) {
	data := bytes.Repeat([]byte("snap"), 100_000)
	writeSnap := func(w io.Writer, m *raftpb.Message) error { _, err := w.Write(data); return err }
	a, b := startNode(t, 1, "127.0.0.1:0", nil, writeSnap), startNode(t, 2, "127.0.0.1:0", nil, nil)
	connect(a, b)
	if s := a.t.PeerStats()[2]; s != (PeerStats{}) {
		t.Fatalf("stats before sending: %+v, want zero", s)
	}

	var small, large []*raftpb.Message
	for i := uint64(1); i <= 50; i++ {
		small = append(small, sized(1, 2, i, 10))
		large = append(large, sized(1, 2, 50+i, 10_000))
	}
	smallBytes := sendOneByOne(t, a.t, small)
	expect(t, b.recv, 1, 50)
	awaitBytes(t, a, b, smallBytes)

	largeBytes := sendOneByOne(t, a.t, large)
	expect(t, b.recv, 51, 50)
	awaitBytes(t, a, b, smallBytes+largeBytes)
	if largeBytes < 50*10_000 || largeBytes <= smallBytes {
		t.Errorf("50 messages of 10,000 bytes took %d bytes, 50 of 10 took %d", largeBytes, smallBytes)
	}

	hb := heartbeat(2)
	hbBytes := sendOneByOne(t, a.t, []*raftpb.Message{hb})
	select {
	case <-b.recv:
	case <-time.After(10 * time.Second):
		t.Fatal("heartbeat did not arrive within 10s")
	}
	awaitBytes(t, a, b, smallBytes+largeBytes+hbBytes)

	// A snapshot counts its message frame and its data in chunks: one
	// chunk here (WriteSnapshot writes once) and the empty one ending it.
	snap := &raftpb.Message{Type: raftpb.MessageType_MsgSnap.Enum(), From: proto.Uint64(1), To: proto.Uint64(2),
		Snapshot: &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{Index: proto.Uint64(500), Term: proto.Uint64(3)}}}
	snapBytes := frameSize(t, snap) + uint64(len(binary.AppendUvarint(nil, uint64(len(data))))+len(data)) + 1
	a.t.Send([]*raftpb.Message{snap})
	eventually(t, "snapshot reported", func() bool {
		var r []raft.SnapshotStatus
		a.locked(func() { r = a.snapReports })
		return len(r) == 1 && r[0] == raft.SnapshotFinish
	})
	awaitBytes(t, a, b, smallBytes+largeBytes+hbBytes+snapBytes)

	// Nothing went the other way.
	if s := b.t.PeerStats()[1]; s.SentBytes != 0 {
		t.Errorf("b counted %d bytes sent to a, want 0", s.SentBytes)
	}
	// A removed peer's counters go with it.
	a.t.RemovePeer(2)
	if s, ok := a.t.PeerStats()[2]; ok {
		t.Errorf("stats of a removed peer: %+v", s)
	}
}

// TestFaultsDropsAreNotSendFailures: what a cut link loses is neither sent
// bytes nor a send failure, a snapshot over it included.
func TestFaultsDropsAreNotSendFailures(t *testing.T) {
	f := NewFaults()
	a := startNode(t, 1, "127.0.0.1:0", f, func(w io.Writer, m *raftpb.Message) error { _, err := w.Write([]byte("x")); return err })
	b := startNode(t, 2, "127.0.0.1:0", f, nil)
	connect(a, b)
	f.Cut(1, 2)
	for i := uint64(1); i <= 20; i++ {
		a.t.Send([]*raftpb.Message{msg(1, 2, i), heartbeat(2)})
	}
	a.t.Send([]*raftpb.Message{{Type: raftpb.MessageType_MsgSnap.Enum(), From: proto.Uint64(1), To: proto.Uint64(2),
		Snapshot: &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{Index: proto.Uint64(5), Term: proto.Uint64(1)}}}})
	eventually(t, "snapshot over a cut link reported failed", func() bool {
		var r []raft.SnapshotStatus
		a.locked(func() { r = a.snapReports })
		return len(r) == 1 && r[0] == raft.SnapshotFailure
	})
	f.Heal()
	// The stream keeps order: once the marker arrives, the write loop has
	// dropped everything sent before it.
	marker := msg(1, 2, 21)
	want := sendOneByOne(t, a.t, []*raftpb.Message{marker})
	expect(t, b.recv, 21, 1)
	awaitBytes(t, a, b, want)
}

// TestSendFailuresToDeadPeer: every message to a peer nobody listens for
// is a send failure, whether the full queue dropped it or a failed dial
// lost it, heartbeats as any other message; a peer that goes down
// while messages flow gets them too.
func TestSendFailuresToDeadPeer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + l.Addr().String()
	l.Close()
	a := startNode(t, 1, "127.0.0.1:0", nil, nil)
	a.t.AddPeer(2, []string{dead})

	const apps, heartbeats = 30, 10
	for i := uint64(1); i <= apps; i++ {
		a.t.Send([]*raftpb.Message{msg(1, 2, i)})
	}
	for range heartbeats {
		a.t.Send([]*raftpb.Message{heartbeat(2)})
	}
	// More than the queue holds at once: some dropped at once, the rest
	// lost with the next failed dial.
	burst := make([]*raftpb.Message, 0, queueSize+500)
	for i := range uint64(cap(burst)) {
		burst = append(burst, msg(1, 2, 100+2*i)) // not one another's continuation: not coalesced
	}
	a.t.Send(burst)
	want := uint64(apps + heartbeats + len(burst))
	eventually(t, fmt.Sprintf("%d send failures", want), func() bool { return a.t.PeerStats()[2].SentFailures == want })
	if s := a.t.PeerStats()[2]; s.SentBytes != 0 {
		t.Errorf("SentBytes to a dead peer = %d, want 0", s.SentBytes)
	}

	// A peer that was up and goes down.
	c := startNode(t, 3, "127.0.0.1:0", nil, nil)
	a.t.AddPeer(3, []string{c.url})
	a.t.Send([]*raftpb.Message{msg(1, 3, 1)})
	expect(t, c.recv, 1, 1)
	if s := a.t.PeerStats()[3]; s.SentFailures != 0 {
		t.Fatalf("send failures while up: %d", s.SentFailures)
	}
	c.t.Close()
	eventually(t, "send failures after the peer went down", func() bool {
		a.t.Send([]*raftpb.Message{heartbeat(3)})
		return a.t.PeerStats()[3].SentFailures > 0
	})
}
