package playground

import (
	"fmt"
	"time"

	"github.com/tendkv/tend/cluster"
)

// tracker turns successive States into timeline entries: elections,
// pre-votes, leaders elected and stepping down, and time without a leader.
type tracker struct {
	prev          map[string]MemberView // by ID
	leader        string                // ID of the last leader seen
	noLeaderSince time.Time             // zero while there is a leader
	// reportDown adds an entry when a member stops answering or answers
	// again (the dashboard's; the playground says what it did instead).
	reportDown bool
}

func newTracker() *tracker { return &tracker{prev: map[string]MemberView{}} }

// update returns the entries that st, following the last state, makes.
func (t *tracker) update(st State, now time.Time) []Entry {
	var out []Entry
	add := func(kind string, v MemberView, term uint64, format string, args ...any) {
		out = append(out, Entry{At: now.UnixMilli(), Kind: kind, Member: v.Name, Term: term, Text: fmt.Sprintf(format, args...)})
	}
	for _, v := range st.Members {
		p, seen := t.prev[v.ID]
		t.prev[v.ID] = v
		if t.reportDown && seen && (p.Role == RoleDown) != (v.Role == RoleDown) {
			if v.Role == RoleDown {
				add(KindDown, v, p.Term, "%s does not answer: %s", v.Name, v.Error)
			} else {
				add(KindUp, v, v.Term, "%s answers again", v.Name)
			}
		}
		if !seen || v.Role == RoleDown || v.Role == RoleUnknown {
			continue
		}
		switch role := cluster.Role(v.Role); {
		case role == cluster.RoleCandidate && (p.Role != v.Role || p.Term != v.Term):
			add(KindElection, v, v.Term, "%s campaigns for term %d: it votes for itself and asks the others", v.Name, v.Term)
		case role == cluster.RolePreCandidate && p.Role != v.Role:
			add(KindPreVote, v, v.Term, "%s heard no leader for an election timeout: it asks whether it could win term %d (pre-vote; its term stays %d)", v.Name, v.Term+1, v.Term)
		case role != cluster.RoleLeader && p.Role == string(cluster.RoleLeader):
			if v.Term > p.Term {
				add(KindStepDown, v, v.Term, "%s steps down: it saw term %d, newer than its own", v.Name, v.Term)
			} else {
				add(KindStepDown, v, v.Term, "%s steps down: it stopped hearing from a majority (check quorum)", v.Name)
			}
		}
	}
	if st.Leader != "" {
		if st.Leader != t.leader {
			v := memberByID(st.Members, st.Leader)
			if !t.noLeaderSince.IsZero() && t.leader != "" {
				add(KindElected, v, st.Term, "%s is the leader of term %d, after %.1f s without one", v.Name, st.Term, now.Sub(t.noLeaderSince).Seconds())
			} else {
				add(KindElected, v, st.Term, "%s is the leader of term %d", v.Name, st.Term)
			}
		}
		t.leader, t.noLeaderSince = st.Leader, time.Time{}
	} else if t.noLeaderSince.IsZero() {
		t.noLeaderSince = now
		if t.leader != "" {
			out = append(out, Entry{At: now.UnixMilli(), Kind: KindNoLeader, Term: st.Term,
				Text: "no leader: nothing can be written until a majority elects one"})
		}
	}
	return out
}

func memberByID(ms []MemberView, id string) MemberView {
	for _, m := range ms {
		if m.ID == id {
			return m
		}
	}
	return MemberView{ID: id, Name: id}
}

// leaderOf returns the leader of the highest term among the members, and
// that term (the highest any member knows when there is no leader).
func leaderOf(ms []MemberView) (id string, term uint64) {
	var lterm uint64
	for _, m := range ms {
		if m.Role == RoleDown {
			continue
		}
		term = max(term, m.Term)
		if m.Role == string(cluster.RoleLeader) && (id == "" || m.Term > lterm) {
			id, lterm = m.ID, m.Term
		}
	}
	if id != "" {
		return id, lterm
	}
	return "", term
}
