package playground

import (
	"sort"
	"time"

	raftpb "go.etcd.io/raft/v3/raftpb"
)

// msgKind names a message type as the page draws it ("": not drawn).
func msgKind(t raftpb.MessageType) string {
	switch t {
	case raftpb.MessageType_MsgHeartbeat:
		return "heartbeat"
	case raftpb.MessageType_MsgHeartbeatResp:
		return "heartbeat-resp"
	case raftpb.MessageType_MsgApp:
		return "append"
	case raftpb.MessageType_MsgAppResp:
		return "append-resp"
	case raftpb.MessageType_MsgVote:
		return "vote"
	case raftpb.MessageType_MsgVoteResp:
		return "vote-resp"
	case raftpb.MessageType_MsgPreVote:
		return "prevote"
	case raftpb.MessageType_MsgPreVoteResp:
		return "prevote-resp"
	case raftpb.MessageType_MsgSnap:
		return "snapshot"
	case raftpb.MessageType_MsgProp:
		return "proposal"
	case raftpb.MessageType_MsgReadIndex:
		return "readindex"
	case raftpb.MessageType_MsgReadIndexResp:
		return "readindex-resp"
	case raftpb.MessageType_MsgTimeoutNow:
		return "timeout-now"
	}
	return ""
}

// Sampling: a person follows a few dots a second, not a hundred. The
// routine traffic of one link (heartbeats, acknowledgements) is drawn at
// most once per routineGap, standing for every message it replaced
// (Msg.Count); appends that carry entries at most once per entriesGap;
// votes, snapshots and the rest always.
const (
	sampleTick  = 50 * time.Millisecond
	routineGap  = 700 * time.Millisecond
	entriesGap  = 150 * time.Millisecond
	maxPerFlush = 64
)

func sampleGap(kind string, entries int) time.Duration {
	switch kind {
	case "heartbeat", "heartbeat-resp", "append-resp", "readindex", "readindex-resp":
		return routineGap
	case "append":
		if entries == 0 {
			return routineGap
		}
		return entriesGap
	}
	return 0
}

// runSampler turns what members send into the "msgs" the page draws, and
// keeps each member's election-timer start, until the playground closes.
func (p *Playground) runSampler() {
	type link struct {
		from, to uint64
		kind     string
	}
	pending := map[link]*Msg{}
	last := map[link]time.Time{}
	t := time.NewTicker(sampleTick)
	defer t.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case o := <-p.obs:
			dropped := p.heard(o)
			k := link{o.from, o.to, o.kind}
			pm := pending[k]
			if pm == nil {
				pm = &Msg{From: hexID(o.from), To: hexID(o.to), Kind: o.kind}
				pending[k] = pm
			}
			pm.Count++
			pm.Entries += o.entries
			pm.Term = max(pm.Term, o.term)
			pm.Reject = o.reject
			pm.Dropped = dropped
		case now := <-t.C:
			var out []Msg
			for k, pm := range pending {
				if now.Sub(last[k]) < sampleGap(k.kind, pm.Entries) {
					continue
				}
				out = append(out, *pm)
				delete(pending, k)
				last[k] = now
			}
			sort.Slice(out, func(i, j int) bool {
				if out[i].From != out[j].From {
					return out[i].From < out[j].From
				}
				return out[i].To < out[j].To
			})
			if len(out) > maxPerFlush {
				out = out[:maxPerFlush]
			}
			p.hub.Msgs(out)
		}
	}
}

// heard updates election-timer starts for one message and reports whether
// the message is lost (its link is cut or its receiver is down).
//
// A follower's timer starts again when a message from the leader reaches it
// (heartbeat, append, snapshot), when it campaigns (pre-vote or vote), and
// when it grants a vote: what go.etcd.io/raft does with electionElapsed.
func (p *Playground) heard(o observed) (dropped bool) {
	to, up := p.nodeByID(o.to)
	dropped = !up || p.faults.Link(o.from, o.to).Drop
	now := time.Now().UnixMilli()
	switch o.kind {
	case "heartbeat", "append", "snapshot":
		if !dropped {
			to.heardAt.Store(now)
		}
	case "vote", "prevote":
		if from, _ := p.nodeByID(o.from); from != nil {
			from.heardAt.Store(now)
		}
	case "vote-resp":
		if from, _ := p.nodeByID(o.from); from != nil && !o.reject {
			from.heardAt.Store(now)
		}
	}
	return dropped
}
