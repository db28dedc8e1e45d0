package transport

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"go.etcd.io/raft/v3"
	raftpb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// app is an append from 1 to `to` in term 2: prev index and term, entries
// (index:term each), commit.
func app(to, prev, prevTerm uint64, ents string, commit uint64) *raftpb.Message {
	m := &raftpb.Message{
		Type: raftpb.MessageType_MsgApp.Enum(), From: proto.Uint64(1), To: proto.Uint64(to), Term: proto.Uint64(2),
		Index: proto.Uint64(prev), LogTerm: proto.Uint64(prevTerm), Commit: proto.Uint64(commit),
	}
	for _, e := range strings.Fields(ents) {
		var i, t uint64
		fmt.Sscanf(e, "%d:%d", &i, &t)
		m.Entries = append(m.Entries, &raftpb.Entry{Index: proto.Uint64(i), Term: proto.Uint64(t), Data: []byte("x")})
	}
	return m
}

func resp(to, index uint64, reject bool) *raftpb.Message {
	return &raftpb.Message{
		Type: raftpb.MessageType_MsgAppResp.Enum(), From: proto.Uint64(2), To: proto.Uint64(to), Term: proto.Uint64(2),
		Index: proto.Uint64(index), Reject: proto.Bool(reject),
	}
}

func heartbeat(to uint64) *raftpb.Message {
	return &raftpb.Message{Type: raftpb.MessageType_MsgHeartbeat.Enum(), From: proto.Uint64(1), To: proto.Uint64(to), Term: proto.Uint64(2)}
}

// describe prints messages one a line: type, to, index/logterm, entries,
// commit.
func describe(msgs []*raftpb.Message) string {
	var b strings.Builder
	for _, m := range msgs {
		fmt.Fprintf(&b, "%s to=%d", m.GetType(), m.GetTo())
		switch m.GetType() {
		case raftpb.MessageType_MsgApp:
			fmt.Fprintf(&b, " prev=%d:%d ents=[", m.GetIndex(), m.GetLogTerm())
			for i, e := range m.GetEntries() {
				if i > 0 {
					b.WriteByte(' ')
				}
				fmt.Fprintf(&b, "%d:%d", e.GetIndex(), e.GetTerm())
			}
			fmt.Fprintf(&b, "] commit=%d", m.GetCommit())
		case raftpb.MessageType_MsgAppResp:
			fmt.Fprintf(&b, " index=%d reject=%v", m.GetIndex(), m.GetReject())
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func TestCoalesce(t *testing.T) {
	big := app(2, 3, 2, "4:2", 3)
	big.Entries[0].Data = make([]byte, maxCoalesced)
	tests := []struct {
		name string
		in   []*raftpb.Message
		want string
	}{
		{
			name: "appends that continue one another become one, with the last commit",
			in:   []*raftpb.Message{app(2, 3, 2, "4:2", 3), app(2, 4, 2, "5:2 6:2", 3), app(2, 6, 2, "", 5), app(2, 6, 2, "7:2", 5)},
			want: "MsgApp to=2 prev=3:2 ents=[4:2 5:2 6:2 7:2] commit=5\n",
		},
		{
			name: "each peer's run is merged on its own; peers keep their order",
			in:   []*raftpb.Message{app(2, 3, 2, "4:2", 3), app(3, 1, 1, "2:1 3:2 4:2", 3), app(2, 4, 2, "5:2", 3), app(3, 4, 2, "5:2", 3)},
			want: "MsgApp to=2 prev=3:2 ents=[4:2 5:2] commit=3\nMsgApp to=3 prev=1:1 ents=[2:1 3:2 4:2 5:2] commit=3\n",
		},
		{
			name: "another message to the peer ends the run",
			in:   []*raftpb.Message{app(2, 3, 2, "4:2", 3), heartbeat(2), app(2, 4, 2, "5:2", 3), heartbeat(3), app(2, 5, 2, "6:2", 3)},
			want: "MsgApp to=2 prev=3:2 ents=[4:2] commit=3\nMsgHeartbeat to=2\nMsgApp to=2 prev=4:2 ents=[5:2 6:2] commit=3\nMsgHeartbeat to=3\n",
		},
		{
			name: "a gap, another previous term or a lower commit is not a continuation",
			in:   []*raftpb.Message{app(2, 3, 2, "4:2", 3), app(2, 5, 2, "6:2", 3), app(2, 6, 1, "7:2", 3), app(2, 7, 2, "8:2", 2)},
			want: "MsgApp to=2 prev=3:2 ents=[4:2] commit=3\nMsgApp to=2 prev=5:2 ents=[6:2] commit=3\nMsgApp to=2 prev=6:1 ents=[7:2] commit=3\nMsgApp to=2 prev=7:2 ents=[8:2] commit=2\n",
		},
		{
			name: "an append that would take a run past the size bound starts a new one",
			in:   []*raftpb.Message{app(2, 2, 2, "3:2", 2), big, app(2, 4, 2, "5:2", 3)},
			want: "MsgApp to=2 prev=2:2 ents=[3:2] commit=2\nMsgApp to=2 prev=3:2 ents=[4:2] commit=3\nMsgApp to=2 prev=4:2 ents=[5:2] commit=3\n",
		},
		{
			name: "of consecutive acknowledgements the last goes; a rejection stays and ends the run",
			in:   []*raftpb.Message{resp(1, 4, false), resp(1, 6, false), resp(1, 7, true), resp(1, 8, false), resp(1, 9, false), resp(1, 5, false)},
			want: "MsgAppResp to=1 index=6 reject=false\nMsgAppResp to=1 index=7 reject=true\nMsgAppResp to=1 index=9 reject=false\nMsgAppResp to=1 index=5 reject=false\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := describe(tt.in)
			got := coalesce(tt.in)
			if d := describe(got); d != tt.want {
				t.Errorf("coalesce:\n%s\nwant:\n%s", d, tt.want)
			}
			if after := describe(tt.in); after != before {
				t.Errorf("coalesce changed its input:\n%s\nwas:\n%s", after, before)
			}
		})
	}
}

// simNode is one member of an in-memory Raft cluster driven by hand.
type simNode struct {
	id uint64
	rn *raft.RawNode
	st *raft.MemoryStorage
}

// TestCoalescedAppendsReplicateAsSeparateOnes runs a real three-member Raft
// group in memory and hands member 2 its messages coalesced (both ways)
// and member 3 the leader's messages as Raft made them. Both followers must
// end with the leader's log, committed, with the leader knowing it, without
// refusing an append on the way — member 2 having stepped far fewer.
func TestCoalescedAppendsReplicateAsSeparateOnes(t *testing.T) {
	nodes := map[uint64]*simNode{}
	for id := uint64(1); id <= 3; id++ {
		st := raft.NewMemoryStorage()
		rn, err := raft.NewRawNode(&raft.Config{
			ID: id, ElectionTick: 10, HeartbeatTick: 1, Storage: st,
			MaxSizePerMsg: 1 << 20, MaxInflightMsgs: 256, Logger: discardLogger{},
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := rn.Bootstrap([]raft.Peer{{ID: 1}, {ID: 2}, {ID: 3}}); err != nil {
			t.Fatal(err)
		}
		nodes[id] = &simNode{id: id, rn: rn, st: st}
	}
	received := map[uint64]int{} // appends stepped, per member
	rejected := map[uint64]int{} // appends refused, per member
	var pending []*raftpb.Message
	// ready handles one member's Ready as the Ready loop does and queues
	// its messages, coalesced on member 2's links.
	ready := func(n *simNode) {
		if !n.rn.HasReady() {
			return
		}
		rd := n.rn.Ready()
		if !raft.IsEmptyHardState(rd.HardState) {
			n.st.SetHardState(rd.HardState)
		}
		if err := n.st.Append(rd.Entries); err != nil {
			t.Fatal(err)
		}
		for _, e := range rd.CommittedEntries {
			if e.GetType() == raftpb.EntryType_EntryConfChange {
				var cc raftpb.ConfChange
				if err := proto.Unmarshal(e.GetData(), &cc); err != nil {
					t.Fatal(err)
				}
				n.rn.ApplyConfChange(&cc)
			}
		}
		merged := coalesce(rd.Messages)
		for _, m := range merged {
			if m.GetTo() == 2 || n.id == 2 {
				pending = append(pending, m)
			}
		}
		for _, m := range rd.Messages {
			if m.GetTo() != 2 && n.id != 2 {
				pending = append(pending, m)
			}
		}
		n.rn.Advance(rd)
	}
	deliver := func() {
		msgs := pending
		pending = nil
		for _, m := range msgs {
			if m.GetType() == raftpb.MessageType_MsgApp {
				received[m.GetTo()]++
			}
			if m.GetType() == raftpb.MessageType_MsgAppResp && m.GetReject() {
				rejected[m.GetFrom()]++
			}
			if err := nodes[m.GetTo()].rn.Step(m); err != nil {
				t.Fatalf("member %d steps %s: %v", m.GetTo(), m.GetType(), err)
			}
		}
	}
	settle := func() {
		for i := 0; i < 1000 && (len(pending) > 0 || slices.ContainsFunc([]uint64{1, 2, 3}, func(id uint64) bool { return nodes[id].rn.HasReady() })); i++ {
			for id := uint64(1); id <= 3; id++ {
				ready(nodes[id])
			}
			deliver()
		}
	}
	settle()
	leader := nodes[1]
	if err := leader.rn.Campaign(); err != nil {
		t.Fatal(err)
	}
	settle()
	if st := leader.rn.Status(); st.RaftState != raft.StateLeader {
		t.Fatalf("member 1 is %s after campaigning, want leader", st.RaftState)
	}

	// Proposals arrive while acknowledgements come in, so the leader's
	// Readies mix new entries with commit advances.
	rng := rand.New(rand.NewPCG(1, 2))
	received[2], received[3] = 0, 0
	for round := 0; round < 200; round++ {
		for range 1 + rng.IntN(6) {
			if err := leader.rn.Propose(fmt.Appendf(nil, "request %d", round)); err != nil {
				t.Fatal(err)
			}
		}
		deliver()
		ready(leader)
		deliver()
		ready(nodes[2])
		ready(nodes[3])
		// Member 2 got the same entries and commit index in fewer
		// messages: it must be exactly as far as member 3.
		l2, _ := nodes[2].st.LastIndex()
		l3, _ := nodes[3].st.LastIndex()
		c2, c3 := nodes[2].rn.Status().GetCommit(), nodes[3].rn.Status().GetCommit()
		if l2 != l3 || c2 != c3 {
			t.Fatalf("round %d: member 2 holds up to %d and committed %d, member 3 %d and %d", round, l2, c2, l3, c3)
		}
	}
	settle()

	last, _ := leader.st.LastIndex()
	want, err := leader.st.Entries(1, last+1, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	for id := uint64(2); id <= 3; id++ {
		got, err := nodes[id].st.Entries(1, last+1, 1<<30)
		if err != nil {
			t.Fatalf("member %d: %v", id, err)
		}
		if len(got) != len(want) {
			t.Fatalf("member %d holds %d entries, the leader %d", id, len(got), len(want))
		}
		for i := range want {
			if !proto.Equal(got[i], want[i]) {
				t.Fatalf("member %d entry %d = %v, the leader's %v", id, want[i].GetIndex(), got[i], want[i])
			}
		}
		if c := nodes[id].rn.Status().GetCommit(); c != last {
			t.Errorf("member %d committed %d, want %d", id, c, last)
		}
		if pr := leader.rn.Status().Progress[id]; pr.Match != last {
			t.Errorf("leader has member %d matching up to %d, want %d", id, pr.Match, last)
		}
		// Raft would repair a lost or mangled entry by probing; none
		// may be needed.
		if rejected[id] > 0 {
			t.Errorf("member %d refused %d appends", id, rejected[id])
		}
	}
	if received[2]*2 > received[3] {
		t.Errorf("member 2 stepped %d appends, member 3 %d: want coalescing to halve them at least", received[2], received[3])
	}
	t.Logf("%d entries; appends stepped: coalesced %d, as made %d", last, received[2], received[3])
}

type discardLogger struct{}

func (discardLogger) Debug(...any)            {}
func (discardLogger) Debugf(string, ...any)   {}
func (discardLogger) Error(...any)            {}
func (discardLogger) Errorf(string, ...any)   {}
func (discardLogger) Info(...any)             {}
func (discardLogger) Infof(string, ...any)    {}
func (discardLogger) Warning(...any)          {}
func (discardLogger) Warningf(string, ...any) {}
func (discardLogger) Fatal(v ...any)          { panic(fmt.Sprint(v...)) }
func (discardLogger) Fatalf(f string, v ...any) {
	panic(fmt.Sprintf(f, v...))
}
func (discardLogger) Panic(v ...any)            { panic(fmt.Sprint(v...)) }
func (discardLogger) Panicf(f string, v ...any) { panic(fmt.Sprintf(f, v...)) }
