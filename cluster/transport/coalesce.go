package transport

import (
	"slices"

	raftpb "go.etcd.io/raft/v3/raftpb"
)

// maxCoalesced bounds the entry data of one coalesced append, as Raft's
// own MaxSizePerMsg bounds one it builds.
const maxCoalesced = 1 << 20

// coalesce merges, per peer, each run of messages that say what one
// message can say, so a busy leader sends, and its followers step and
// answer, one append per Ready instead of one per proposal and commit
// advance:
//
//   - an append (MsgApp) that continues the previous append to the same
//     peer in the same term (its Index is the last index that one
//     carries, its LogTerm that entry's term) joins it: the entries of
//     both, the later commit index. A follower does with the merged
//     append what it would do with the two in turn, and acknowledges
//     once, up to the last entry, which frees the leader's flow control
//     for both;
//   - an accepting append acknowledgement (MsgAppResp) followed by
//     another to the same peer in the same term that acknowledges at
//     least as much is dropped: the later says all it did.
//
// Any other message to a peer ends its run, so nothing to that peer moves
// ahead of it. Messages to different peers keep their order among
// themselves. The messages passed in are not changed.
func coalesce(msgs []*raftpb.Message) []*raftpb.Message {
	if len(msgs) < 2 {
		return msgs
	}
	// runs holds, per peer, the message in out a later one may extend
	// (few peers: a slice beats a map).
	type run struct {
		to    uint64
		i     int // index in out
		bytes int // its entries' data
	}
	var runs []run
	find := func(to uint64) int {
		for k := range runs {
			if runs[k].to == to {
				return k
			}
		}
		return -1
	}
	out := make([]*raftpb.Message, 0, len(msgs))
	for _, m := range msgs {
		to, n := m.GetTo(), dataBytes(m)
		k := find(to)
		if k >= 0 && runs[k].bytes+n <= maxCoalesced {
			if merged := join(out[runs[k].i], m); merged != nil {
				out[runs[k].i] = merged
				runs[k].bytes += n
				continue
			}
		}
		extendable := m.GetType() == raftpb.MessageType_MsgApp ||
			m.GetType() == raftpb.MessageType_MsgAppResp && !m.GetReject()
		switch {
		case extendable && k >= 0:
			runs[k] = run{to, len(out), n}
		case extendable:
			runs = append(runs, run{to, len(out), n})
		case k >= 0:
			runs = slices.Delete(runs, k, k+1)
		}
		out = append(out, m)
	}
	return out
}

// join returns the one message that says what a and then b say, or nil
// when there is none.
func join(a, b *raftpb.Message) *raftpb.Message {
	if a.GetType() != b.GetType() || a.GetTerm() != b.GetTerm() || a.GetFrom() != b.GetFrom() {
		return nil
	}
	switch a.GetType() {
	case raftpb.MessageType_MsgApp:
		last, lastTerm := a.GetIndex(), a.GetLogTerm()
		if n := len(a.GetEntries()); n > 0 {
			last, lastTerm = a.GetEntries()[n-1].GetIndex(), a.GetEntries()[n-1].GetTerm()
		}
		if b.GetIndex() != last || b.GetLogTerm() != lastTerm || b.GetCommit() < a.GetCommit() {
			return nil
		}
		ents := make([]*raftpb.Entry, 0, len(a.GetEntries())+len(b.GetEntries()))
		ents = append(append(ents, a.GetEntries()...), b.GetEntries()...)
		return &raftpb.Message{
			Type:    a.Type,
			To:      a.To,
			From:    a.From,
			Term:    a.Term,
			LogTerm: a.LogTerm,
			Index:   a.Index,
			Entries: ents,
			Commit:  b.Commit,
		}
	case raftpb.MessageType_MsgAppResp:
		if b.GetReject() || b.GetIndex() < a.GetIndex() {
			return nil
		}
		return b
	}
	return nil
}

// dataBytes is the size of m's entries' data.
func dataBytes(m *raftpb.Message) int {
	n := 0
	for _, e := range m.GetEntries() {
		n += len(e.GetData())
	}
	return n
}
