package playground

import (
	"fmt"
	"time"

	"github.com/tendkv/tend/cluster"
)

// pollInterval is how often the page's state is read off the members.
const pollInterval = 100 * time.Millisecond

// runPoll publishes the members' state and the timeline entries it makes,
// until the playground closes.
func (p *Playground) runPoll() {
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	tr := newTracker()
	last := map[*node]MemberView{}
	for {
		select {
		case <-p.ctx.Done():
			return
		case now := <-t.C:
			st := p.state(last)
			for _, e := range tr.update(st, now) {
				p.hub.Add(e)
			}
			p.hub.SetState(st)
		}
	}
}

// state reads every member's Raft state. last keeps each member's last
// known numbers, drawn greyed while it is down.
func (p *Playground) state(last map[*node]MemberView) State {
	type snap struct {
		n      *node
		m      *cluster.Member
		errMsg string
	}
	p.mu.Lock()
	nodes := make([]snap, 0, len(p.nodes))
	for _, n := range p.nodes {
		nodes = append(nodes, snap{n, n.m, n.errMsg})
	}
	groups := p.sortedGroupsLocked()
	slow := p.slow
	p.mu.Unlock()

	isolated := map[string]bool{}
	for _, g := range groups {
		if len(g) == 1 {
			isolated[g[0]] = true
		}
	}
	st := State{
		Mode:        "playground",
		Now:         time.Now().UnixMilli(),
		Groups:      groups,
		Slow:        slow,
		HeartbeatMS: int64(slow) * p.opts.HeartbeatInterval.Milliseconds(),
		ElectionMS:  int64(slow) * p.opts.ElectionTimeout.Milliseconds(),
		Members:     make([]MemberView, 0, len(nodes)),
	}
	for _, s := range nodes {
		n := s.n
		v := MemberView{
			ID:        hexID(n.id),
			Name:      n.name,
			ClientURL: n.cfg.ListenClientURLs[0],
			PeerURL:   n.cfg.ListenPeerURLs[0],
			Isolated:  isolated[hexID(n.id)],
		}
		m := s.m
		if m != nil {
			select {
			case <-m.Done():
				// It stopped on its own: removed, or a fatal error.
				msg := fmt.Sprint(m.Err())
				p.mu.Lock()
				if n.m == m {
					n.m, n.errMsg = nil, msg
				}
				p.mu.Unlock()
				p.hub.Add(Entry{Kind: KindDown, Member: n.name, Text: fmt.Sprintf("%s stopped: %s", n.name, msg)})
				m, s.errMsg = nil, msg
			default:
			}
		}
		if m == nil {
			prev := last[n]
			v.Role, v.Term, v.Commit, v.Applied, v.Error = RoleDown, prev.Term, prev.Commit, prev.Applied, s.errMsg
			st.Members = append(st.Members, v)
			continue
		}
		rs := m.Status()
		v.Role, v.Term, v.Commit, v.Applied = string(rs.Role), rs.Term, rs.Commit, rs.Applied
		v.Learner = rs.Role == cluster.RoleLearner
		if rs.Leader != 0 {
			v.Leader = hexID(rs.Leader)
		}
		if rs.Role == cluster.RoleLeader && len(rs.Match) > 0 {
			v.Match = map[string]uint64{}
			for id, idx := range rs.Match {
				v.Match[hexID(id)] = idx
			}
		} else {
			v.HeardAt = n.heardAt.Load()
		}
		last[n] = v
		st.Members = append(st.Members, v)
		st.Endpoints = append(st.Endpoints, v.ClientURL)
	}
	st.Leader, st.Term = leaderOf(st.Members)
	return st
}
