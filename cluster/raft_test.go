package cluster

import (
	"fmt"
	"strings"
	"testing"

	"go.etcd.io/raft/v3"
	raftpb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// ents makes normal entries at indexes from..to in term 1, but for a conf
// change at index conf (0: none).
func ents(from, to, conf uint64) []*raftpb.Entry {
	var out []*raftpb.Entry
	for i := from; i <= to; i++ {
		e := &raftpb.Entry{Index: proto.Uint64(i), Term: proto.Uint64(1), Data: []byte("x")}
		if i == conf {
			e.Type = raftpb.EntryType_EntryConfChange.Enum()
		}
		out = append(out, e)
	}
	return out
}

func indexes(es []*raftpb.Entry) string {
	var s []string
	for _, e := range es {
		s = append(s, fmt.Sprint(e.GetIndex()))
	}
	return "[" + strings.Join(s, " ") + "]"
}

// TestSplitCommitted pins which committed entries the Ready loop applies
// while it fsyncs: only normal entries an earlier Ready saved (1..5 here)
// that this Ready does not replace, up to the first conf change, and none
// when there is nothing to fsync or a snapshot comes.
func TestSplitCommitted(t *testing.T) {
	m := &Member{raftStorage: raft.NewMemoryStorage()}
	if err := m.raftStorage.Append(ents(1, 5, 0)); err != nil {
		t.Fatal(err)
	}
	snap := &raftpb.Snapshot{Metadata: &raftpb.SnapshotMetadata{Index: proto.Uint64(9), Term: proto.Uint64(1)}}
	tests := []struct {
		name        string
		rd          raft.Ready
		early, late string
	}{
		{"saved before", raft.Ready{Entries: ents(6, 7, 0), CommittedEntries: ents(3, 5, 0)}, "[3 4 5]", "[]"},
		{"saved in this Ready", raft.Ready{Entries: ents(6, 7, 0), CommittedEntries: ents(4, 6, 0)}, "[4 5]", "[6]"},
		{"replaced by this Ready", raft.Ready{Entries: ents(4, 7, 0), CommittedEntries: ents(2, 5, 0)}, "[2 3]", "[4 5]"},
		{"a conf change", raft.Ready{Entries: ents(6, 6, 0), CommittedEntries: ents(2, 5, 4)}, "[2 3]", "[4 5]"},
		{"nothing to save", raft.Ready{CommittedEntries: ents(3, 5, 0)}, "[]", "[3 4 5]"},
		{"a snapshot", raft.Ready{Entries: ents(10, 10, 0), Snapshot: snap, CommittedEntries: ents(10, 10, 0)}, "[]", "[10]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			early, late := m.splitCommitted(tt.rd)
			if got := indexes(early); got != tt.early {
				t.Errorf("applied during the fsync: %s, want %s", got, tt.early)
			}
			if got := indexes(late); got != tt.late {
				t.Errorf("applied after it: %s, want %s", got, tt.late)
			}
		})
	}
}

// TestSplitMessages pins what goes out before the fsync: everything on the
// leader; elsewhere forwarded proposals and read requests only, while
// acknowledgements, votes and heartbeat answers wait for the entries and
// HardState they vouch for.
func TestSplitMessages(t *testing.T) {
	msg := func(ty raftpb.MessageType) *raftpb.Message {
		return &raftpb.Message{Type: ty.Enum(), To: proto.Uint64(1)}
	}
	msgs := []*raftpb.Message{
		msg(raftpb.MessageType_MsgAppResp), msg(raftpb.MessageType_MsgProp), msg(raftpb.MessageType_MsgVoteResp),
		msg(raftpb.MessageType_MsgReadIndex), msg(raftpb.MessageType_MsgHeartbeatResp), msg(raftpb.MessageType_MsgPreVoteResp),
		msg(raftpb.MessageType_MsgVote), msg(raftpb.MessageType_MsgProp),
	}
	types := func(ms []*raftpb.Message) string {
		var s []string
		for _, m := range ms {
			s = append(s, m.GetType().String())
		}
		return strings.Join(s, " ")
	}
	now, later := splitMessages(msgs, false)
	if got, want := types(now), "MsgProp MsgReadIndex MsgProp"; got != want {
		t.Errorf("a follower sends before its fsync: %s, want %s", got, want)
	}
	if got, want := types(later), "MsgAppResp MsgVoteResp MsgHeartbeatResp MsgPreVoteResp MsgVote"; got != want {
		t.Errorf("a follower sends after its fsync: %s, want %s", got, want)
	}
	now, later = splitMessages(msgs, true)
	if len(now) != len(msgs) || len(later) != 0 {
		t.Errorf("the leader sends %d messages before its fsync and %d after, want all %d before", len(now), len(later), len(msgs))
	}
}
