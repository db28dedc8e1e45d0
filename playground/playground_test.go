package playground

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/tendkv/tend/internal/testenv"
)

// drain forgets the states queued so far: what follows is after now.
func (s *stream) drain() {
	for {
		select {
		case <-s.states:
		default:
			return
		}
	}
}

// TestKillLeader writes through one member and reads through another, kills
// the leader through the API, and sees the stream report a new leader of a
// newer term; the old leader, restarted, follows it and catches up.
func TestKillLeader(t *testing.T) {
	_, srv := startTest(t, 5)
	s := openStream(t, srv.URL)
	st := s.waitState(t, 10*time.Second, "one leader", func(st State) bool { return st.Leader != "" && leaders(st) == 1 })
	if len(st.Members) != 5 {
		t.Fatalf("%d members, want 5: %s", len(st.Members), describe(st))
	}

	put := mustPost(t, srv.URL, "put", Request{Member: "m1", Key: "/hello", Value: "raft"})
	if put.Revision < 2 || put.Member != "m1" {
		t.Fatalf("put answered %+v", put)
	}
	get := mustPost(t, srv.URL, "get", Request{Member: "m4", Key: "/hello"})
	if !get.Found || get.Value != "raft" || get.ModRevision != put.Revision || get.Serializable {
		t.Fatalf("linearizable get through m4 = %+v, want raft at revision %d", get, put.Revision)
	}
	if ev := s.waitWatch(t, 5*time.Second, "/hello"); ev.Type != "PUT" || ev.Value != "raft" || ev.Revision != put.Revision {
		t.Fatalf("watch event %+v", ev)
	}

	old, oldTerm := name(st, st.Leader), st.Term
	kill := mustPost(t, srv.URL, "kill", Request{Member: old})
	t.Logf("%s", kill.Text)
	s.drain()
	start := time.Now()
	st = s.waitState(t, 15*time.Second, "a new leader", func(st State) bool {
		return st.Leader != "" && name(st, st.Leader) != old && member(st, old).Role == RoleDown
	})
	t.Logf("after killing %s (term %d): %s is the leader of term %d, reported %v later", old, oldTerm, name(st, st.Leader), st.Term, time.Since(start).Round(time.Millisecond))
	if st.Term <= oldTerm {
		t.Fatalf("new leader's term %d, want above %d", st.Term, oldTerm)
	}
	newLeader := name(st, st.Leader)
	s.waitEntry(t, 5*time.Second, "electing "+newLeader, func(e Entry) bool {
		return e.Kind == KindElected && e.Member == newLeader && e.Term == st.Term
	})

	// A dead member answers nothing; the others write on.
	if res, code := post(t, srv.URL, "put", Request{Member: old, Key: "/x", Value: "y"}); res.OK || code != http.StatusUnprocessableEntity || !strings.Contains(res.Error, "down") {
		t.Fatalf("put through the killed %s: %d %+v", old, code, res)
	}
	put2 := mustPost(t, srv.URL, "put", Request{Member: newLeader, Key: "/hello", Value: "again"})

	mustPost(t, srv.URL, "restart", Request{Member: old})
	st = s.waitState(t, 15*time.Second, old+" following the new leader, caught up", func(st State) bool {
		m := member(st, old)
		return m.Role == "follower" && m.Leader == st.Leader && m.Term == st.Term && m.Applied >= uint64(put2.Revision)
	})
	get = mustPost(t, srv.URL, "get", Request{Member: old, Key: "/hello", Serializable: true})
	if get.Value != "again" || !get.Serializable {
		t.Fatalf("serializable get through the restarted %s = %+v", old, get)
	}
}

// TestIsolateFollower cuts a follower off. With pre-vote and check quorum on
// (our Raft configuration), the follower campaigns only as a pre-candidate:
// it asks whether it could win, hears nothing, and its term does not climb;
// the rest keep their leader, its term, and serve writes. A serializable
// read through the isolated member answers from its stale copy; a
// linearizable one fails. On heal the follower rejoins under the same
// leader and term: nobody's term changed, no election happened.
func TestIsolateFollower(t *testing.T) {
	_, srv := startTest(t, 5)
	s := openStream(t, srv.URL)
	st := s.waitState(t, 10*time.Second, "one leader", func(st State) bool { return st.Leader != "" && leaders(st) == 1 })
	leader, term := name(st, st.Leader), st.Term
	var follower string
	for _, m := range st.Members {
		if m.Role == "follower" {
			follower = m.Name
			break
		}
	}
	other := ""
	for _, m := range st.Members {
		if m.Role == "follower" && m.Name != follower {
			other = m.Name
			break
		}
	}
	mustPost(t, srv.URL, "put", Request{Member: leader, Key: "/k", Value: "before"})
	s.drain()
	mustPost(t, srv.URL, "isolate", Request{Member: follower})
	if res, _ := post(t, srv.URL, "isolate", Request{Member: follower}); res.OK {
		t.Fatalf("isolating %s twice succeeded", follower)
	}

	st = s.waitState(t, 10*time.Second, follower+" campaigning", func(st State) bool {
		return member(st, follower).Role == "pre-candidate" || member(st, follower).Role == "candidate"
	})
	if !member(st, follower).Isolated || len(st.Groups) != 2 {
		t.Fatalf("isolated member not drawn cut off: %s", describe(st))
	}
	s.waitEntry(t, 5*time.Second, follower+" pre-voting", func(e Entry) bool { return e.Kind == KindPreVote && e.Member == follower })

	// Over several election timeouts the rest keep serving, under the same
	// leader and term, and the isolated member's term stays.
	for i := range 3 {
		put := mustPost(t, srv.URL, "put", Request{Member: other, Key: "/k", Value: "during"})
		t.Logf("put %d through %s while %s is cut off: revision %d in %.1f ms", i, other, follower, put.Revision, put.LatencyMS)
	}
	until := time.Now().Add(3 * time.Second)
	var climbed uint64
	for time.Now().Before(until) {
		st = s.waitState(t, 2*time.Second, "any state", func(State) bool { return true })
		f := member(st, follower)
		climbed = max(climbed, f.Term)
		if name(st, st.Leader) != leader || st.Term != term {
			t.Fatalf("the majority's leader changed while %s was cut off: %s", follower, describe(st))
		}
	}
	t.Logf("observed: isolated %s is %s, its term %d (the leader's %d): pre-vote keeps it from climbing", follower, member(st, follower).Role, climbed, term)
	if climbed != term {
		t.Fatalf("isolated %s's term went to %d, want it to stay %d (pre-vote)", follower, climbed, term)
	}

	stale := mustPost(t, srv.URL, "get", Request{Member: follower, Key: "/k", Serializable: true})
	if stale.Value != "before" {
		t.Fatalf("serializable get through the isolated %s = %q, want its stale %q", follower, stale.Value, "before")
	}
	if res, _ := post(t, srv.URL, "get", Request{Member: follower, Key: "/k"}); res.OK {
		t.Fatalf("linearizable get through the isolated %s succeeded: %+v", follower, res)
	} else {
		t.Logf("linearizable get through the isolated %s: %s", follower, res.Error)
	}

	last := mustPost(t, srv.URL, "put", Request{Member: leader, Key: "/k", Value: "after"})
	mustPost(t, srv.URL, "heal", Request{})
	s.drain()
	st = s.waitState(t, 15*time.Second, follower+" following "+leader+" again", func(st State) bool {
		if name(st, st.Leader) != leader || st.Term != term {
			t.Fatalf("heal changed the leader or term: %s (was %s, term %d)", describe(st), leader, term)
		}
		f := member(st, follower)
		return f.Role == "follower" && f.Term == term && name(st, f.Leader) == leader && f.Applied >= uint64(last.Revision)
	})
	if len(st.Groups) != 0 || member(st, follower).Isolated {
		t.Fatalf("healed network still drawn partitioned: %s", describe(st))
	}
}

// TestSplit cuts the network in two with the leader on the minority side:
// the majority elects a leader of a newer term, the old leader steps down
// (check quorum), writes through the minority fail and through the
// majority succeed; after heal there is one leader and every member agrees.
// TestIsolateWithoutPreVote shows what pre-vote prevents: with it off, an
// isolated follower's term climbs at every election timeout, and when the
// network heals its return forces an election at a higher term.
func TestIsolateWithoutPreVote(t *testing.T) {
	_, srv := startWith(t, Options{Members: 3, DisablePreVote: true})
	s := openStream(t, srv.URL)
	st := s.waitState(t, 10*time.Second, "one leader", func(st State) bool { return st.Leader != "" && leaders(st) == 1 })
	term := st.Term
	var follower string
	for _, m := range st.Members {
		if m.Role == "follower" {
			follower = m.Name
			break
		}
	}
	mustPost(t, srv.URL, "isolate", Request{Member: follower})
	s.waitState(t, 15*time.Second, follower+"'s term climbing", func(st State) bool {
		return member(st, follower).Term >= term+2 && st.Term == term
	})
	mustPost(t, srv.URL, "heal", Request{})
	st = s.waitState(t, 15*time.Second, "an election at a higher term after the heal", func(st State) bool {
		return st.Leader != "" && leaders(st) == 1 && st.Term > term+1
	})
	t.Logf("without pre-vote: %s came back and the cluster moved from term %d to %d", follower, term, st.Term)
}

func TestSplit(t *testing.T) {
	_, srv := startTest(t, 5)
	s := openStream(t, srv.URL)
	st := s.waitState(t, 10*time.Second, "one leader", func(st State) bool { return st.Leader != "" && leaders(st) == 1 })
	old, term := name(st, st.Leader), st.Term
	split := mustPost(t, srv.URL, "split", Request{})
	t.Logf("%s", split.Text)
	s.drain()
	st = s.waitState(t, 15*time.Second, "a majority leader and the old one stepped down", func(st State) bool {
		return st.Leader != "" && name(st, st.Leader) != old && member(st, old).Role != "leader"
	})
	if len(st.Groups) != 2 || len(st.Groups[0]) != 3 || len(st.Groups[1]) != 2 || st.Term <= term {
		t.Fatalf("after split: %s", describe(st))
	}
	if res, _ := post(t, srv.URL, "put", Request{Member: old, Key: "/split", Value: "minority"}); res.OK {
		t.Fatalf("put through %s on the minority side succeeded: %+v", old, res)
	}
	put := mustPost(t, srv.URL, "put", Request{Member: name(st, st.Leader), Key: "/split", Value: "majority"})
	mustPost(t, srv.URL, "heal", Request{})
	s.drain()
	s.waitState(t, 15*time.Second, "every member following one leader", func(st State) bool {
		if leaders(st) != 1 {
			return false
		}
		for _, m := range st.Members {
			if m.Term != st.Term || m.Leader != st.Leader || m.Applied < uint64(put.Revision) {
				return false
			}
		}
		return true
	})
	get := mustPost(t, srv.URL, "get", Request{Member: old, Key: "/split"})
	if get.Value != "majority" {
		t.Fatalf("get through %s after heal = %+v", old, get)
	}
}

// TestAddRemove adds a member through the API (member add, then it joins)
// and removes another; the ring follows.
func TestAddRemove(t *testing.T) {
	_, srv := startTest(t, 3)
	s := openStream(t, srv.URL)
	s.waitState(t, 10*time.Second, "a leader", func(st State) bool { return st.Leader != "" })
	mustPost(t, srv.URL, "put", Request{Member: "m1", Key: "/before-join", Value: "v"})
	add := mustPost(t, srv.URL, "add", Request{})
	if add.Member != "m4" {
		t.Fatalf("added %q, want m4", add.Member)
	}
	s.drain()
	st := s.waitState(t, 20*time.Second, "m4 following", func(st State) bool {
		m := member(st, "m4")
		return len(st.Members) == 4 && m.Role == "follower" && m.Leader == st.Leader && m.Applied >= 2
	})
	get := mustPost(t, srv.URL, "get", Request{Member: "m4", Key: "/before-join", Serializable: true})
	if get.Value != "v" {
		t.Fatalf("m4 does not have what was written before it joined: %+v", get)
	}
	victim := "m1"
	if name(st, st.Leader) == victim {
		victim = "m2"
	}
	mustPost(t, srv.URL, "remove", Request{Member: victim})
	s.drain()
	s.waitState(t, 15*time.Second, victim+" gone", func(st State) bool {
		return len(st.Members) == 3 && member(st, victim).Name == "" && st.Leader != ""
	})
	mustPost(t, srv.URL, "put", Request{Member: "m4", Key: "/after-remove", Value: "v"})
}

// TestLearner adds a learner through the API: the stream draws it with the
// learner role, the cluster's own member list says it is one, and its
// applied index reaches the voters'; a second learner is refused while it
// is one. Promoted, it follows the leader as a voter.
func TestLearner(t *testing.T) {
	p, srv := startTest(t, 3)
	s := openStream(t, srv.URL)
	s.waitState(t, 10*time.Second, "a leader", func(st State) bool { return st.Leader != "" })
	put := mustPost(t, srv.URL, "put", Request{Member: "m1", Key: "/before-learner", Value: "v"})

	add := mustPost(t, srv.URL, "add", Request{Learner: true})
	if add.Member != "m4" || !strings.Contains(add.Text, "learner") {
		t.Fatalf("add learner answered %+v", add)
	}
	s.drain()
	st := s.waitState(t, 20*time.Second, "m4 a learner, caught up with the voters", func(st State) bool {
		m := member(st, "m4")
		if m.Role != "learner" || !m.Learner || m.Leader != st.Leader || len(st.Members) != 4 {
			return false
		}
		for _, o := range st.Members {
			if o.Applied > m.Applied {
				return false
			}
		}
		return true
	})
	t.Logf("learner m4 applied %d, as every voter: %s", member(st, "m4").Applied, describe(st))
	if !isLearner(t, p, "m4") {
		t.Fatalf("the cluster's member list does not hold m4 as a learner")
	}
	get := mustPost(t, srv.URL, "get", Request{Member: "m4", Key: "/before-learner", Serializable: true})
	if get.Value != "v" || get.ModRevision != put.Revision {
		t.Fatalf("serializable get through the learner m4 = %+v, want what was put at revision %d", get, put.Revision)
	}
	if res, code := post(t, srv.URL, "add", Request{Learner: true}); res.OK || code != http.StatusUnprocessableEntity || !strings.Contains(res.Error, "promote or remove the learner first") {
		t.Fatalf("second learner: %d %+v", code, res)
	}
	if res, _ := post(t, srv.URL, "promote", Request{Member: "m1"}); res.OK || !strings.Contains(res.Error, "only a learner can be promoted") {
		t.Fatalf("promoting the voter m1: %+v", res)
	}

	prom := mustPost(t, srv.URL, "promote", Request{Member: "m4"})
	t.Logf("%s", prom.Text)
	s.drain()
	st = s.waitState(t, 15*time.Second, "m4 a follower", func(st State) bool {
		m := member(st, "m4")
		return m.Role == "follower" && !m.Learner && m.Leader == st.Leader
	})
	if isLearner(t, p, "m4") {
		t.Fatalf("the cluster's member list still holds m4 as a learner after promote")
	}
	s.waitEntry(t, 5*time.Second, "promoting m4", func(e Entry) bool {
		return e.Kind == KindMembers && e.Member == "m4" && strings.Contains(e.Text, "promoted")
	})
	// The next add is the one after m4: the refused one took no name.
	if add := mustPost(t, srv.URL, "add", Request{Learner: true}); add.Member != "m5" {
		t.Fatalf("the add after a refused one is %q, want m5", add.Member)
	}
}

// isLearner asks the cluster itself (clientv3's member list through m1)
// whether the member named name is a learner.
func isLearner(t *testing.T, p *Playground, name string) bool {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: p.Endpoints()[:1], DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cli.MemberList(ctx)
	if err != nil {
		t.Fatalf("member list: %v", err)
	}
	for _, m := range resp.Members {
		if m.Name == name {
			return m.IsLearner
		}
	}
	t.Fatalf("member list %v has no %s", resp.Members, name)
	return false
}

// TestMessages reads the Raft messages the stream draws: heartbeats and
// appends from the leader to each follower and their answers back, and,
// after the leader is killed, the pre-votes and votes of the election, the
// ones to the dead member marked lost. Every message is between members
// that exist, and only a leader sends heartbeats.
func TestMessages(t *testing.T) {
	_, srv := startTest(t, 3)
	s := openStream(t, srv.URL)
	st := s.waitState(t, 10*time.Second, "one leader", func(st State) bool { return st.Leader != "" && leaders(st) == 1 })
	ids := map[string]bool{}
	var followers []string
	for _, m := range st.Members {
		ids[m.ID] = true
		if m.ID != st.Leader {
			followers = append(followers, m.ID)
		}
	}
	old, term := st.Leader, st.Term
	leaderIDs := map[string]bool{old: true}
	check := func(m Msg) {
		t.Helper()
		if !ids[m.From] || !ids[m.To] || m.From == m.To || m.Count < 1 {
			t.Fatalf("message %+v: want one between two different members of %v, counted", m, ids)
		}
		// A forwarded proposal or read index request carries no term.
		if m.Term == 0 && m.Kind != "proposal" && !strings.HasPrefix(m.Kind, "readindex") {
			t.Fatalf("message %+v carries no term", m)
		}
		if m.Kind == "heartbeat" && !leaderIDs[m.From] {
			t.Fatalf("heartbeat %+v from %s, which never led", m, name(st, m.From))
		}
	}
	wants := map[string]func(Msg) bool{}
	for _, f := range followers {
		wants["heartbeat from the leader to "+name(st, f)] = func(m Msg) bool {
			return m.Kind == "heartbeat" && m.From == old && m.To == f && m.Term == term && !m.Dropped
		}
		wants["heartbeat answer from "+name(st, f)] = func(m Msg) bool {
			return m.Kind == "heartbeat-resp" && m.From == f && m.To == old && m.Term == term
		}
	}
	s.waitMsgs(t, 5*time.Second, check, wants)

	mustPost(t, srv.URL, "put", Request{Member: name(st, followers[0]), Key: "/msgs", Value: "v"})
	for _, f := range followers {
		wants["append with entries from the leader to "+name(st, f)] = func(m Msg) bool {
			return m.Kind == "append" && m.From == old && m.To == f && m.Entries >= 1
		}
		wants["append accepted by "+name(st, f)] = func(m Msg) bool {
			return m.Kind == "append-resp" && m.From == f && m.To == old && !m.Reject
		}
	}
	s.waitMsgs(t, 5*time.Second, check, wants)

	mustPost(t, srv.URL, "kill", Request{Member: name(st, old)})
	next := s.waitState(t, 15*time.Second, "a new leader", func(st State) bool { return st.Leader != "" && st.Leader != old })
	nl, other := next.Leader, followers[0]
	if other == nl {
		other = followers[1]
	}
	leaderIDs[nl] = true
	t.Logf("killed %s; %s won term %d", name(st, old), name(st, nl), next.Term)
	s.waitMsgs(t, 5*time.Second, check, map[string]func(Msg) bool{
		"pre-vote request from the winner to " + name(st, other): func(m Msg) bool {
			return m.Kind == "prevote" && m.From == nl && m.To == other && !m.Dropped
		},
		"pre-vote request to the killed member, lost": func(m Msg) bool {
			return m.Kind == "prevote" && m.To == old && m.Dropped
		},
		"pre-vote granted to the winner": func(m Msg) bool {
			return m.Kind == "prevote-resp" && m.From == other && m.To == nl && !m.Reject
		},
		"vote request of the new term": func(m Msg) bool {
			return m.Kind == "vote" && m.From == nl && m.To == other && m.Term == next.Term
		},
		"vote granted to the winner": func(m Msg) bool {
			return m.Kind == "vote-resp" && m.From == other && m.To == nl && m.Term == next.Term && !m.Reject
		},
		"heartbeat from the new leader": func(m Msg) bool {
			return m.Kind == "heartbeat" && m.From == nl && m.To == other && m.Term == next.Term
		},
	})
}

// TestElectionTimer checks what drives the page's election-timer rings:
// each follower's HeardAt. While the leader is alive every follower's
// advances and stays within an election timeout of now (the leader draws no
// timer); a follower cut off stops being refreshed by the leader's
// heartbeats, so its timer runs to an election timeout (it restarts only
// when the member campaigns), while the others' stay fresh; healed, it is
// refreshed again.
func TestElectionTimer(t *testing.T) {
	_, srv := startTest(t, 5)
	s := openStream(t, srv.URL)
	st := s.waitState(t, 10*time.Second, "one leader", func(st State) bool { return st.Leader != "" && leaders(st) == 1 })
	leader := name(st, st.Leader)
	var followers []string
	for _, m := range st.Members {
		if m.Name != leader {
			followers = append(followers, m.Name)
		}
	}
	// watch reads states for d and returns, per follower, the first and last
	// HeardAt and the largest time since it (now - HeardAt) seen.
	type seen struct{ first, last, maxAge int64 }
	watch := func(d time.Duration) map[string]seen {
		out := map[string]seen{}
		s.drain()
		for until := time.Now().Add(d); time.Now().Before(until); {
			st := s.waitState(t, 2*time.Second, "any state", func(State) bool { return true })
			if name(st, st.Leader) != leader || member(st, leader).HeardAt != 0 {
				t.Fatalf("want %s leading, drawn without a timer: %s (its heardAt %d)", leader, describe(st), member(st, leader).HeardAt)
			}
			for _, f := range followers {
				m := member(st, f)
				if m.HeardAt == 0 {
					t.Fatalf("follower %s reports no heardAt: %s", f, describe(st))
				}
				v, ok := out[f]
				if !ok {
					v.first = m.HeardAt
				}
				v.last, v.maxAge = m.HeardAt, max(v.maxAge, st.Now-m.HeardAt)
				out[f] = v
			}
		}
		return out
	}
	et := st.ElectionMS
	for f, v := range watch(2 * time.Second) {
		if v.last < v.first+1000 || v.maxAge >= et {
			t.Fatalf("with %s leading, follower %s's heardAt went from %d to %d in 2 s, at most %d ms old: want it refreshed by heartbeats, never an election timeout (%d ms) old", leader, f, v.first, v.last, v.maxAge, et)
		}
	}

	cut := followers[0]
	mustPost(t, srv.URL, "isolate", Request{Member: cut})
	during := watch(3 * time.Second)
	for f, v := range during {
		switch {
		case f == cut && v.maxAge < et*9/10:
			t.Fatalf("isolated %s's heardAt was at most %d ms old over 3 s: the leader's lost heartbeats still refresh its timer (election timeout %d ms)", f, v.maxAge, et)
		case f != cut && v.maxAge >= et:
			t.Fatalf("connected %s's heardAt got %d ms old while %s was cut off", f, v.maxAge, cut)
		}
	}
	t.Logf("isolated %s's timer reached %d ms (election timeout %d ms); the others' at most %d ms", cut, during[cut].maxAge, et, during[followers[1]].maxAge)

	mustPost(t, srv.URL, "heal", Request{})
	s.waitState(t, 10*time.Second, cut+" hearing the leader again", func(st State) bool {
		m := member(st, cut)
		return m.Role == "follower" && m.HeardAt > during[cut].last && st.Now-m.HeardAt < st.HeartbeatMS*3
	})
}

// TestDelete puts two keys through one member and deletes one through
// another: the answer counts it at a new revision, a linearizable get
// through a third says not found at that revision, the watch feed reports
// the delete, and the keyspace a page sees (the API's and a new stream's)
// holds only the other key. Deleting it again deletes nothing and leaves the
// revision where it was.
func TestDelete(t *testing.T) {
	_, srv := startTest(t, 3)
	s := openStream(t, srv.URL)
	s.waitState(t, 10*time.Second, "a leader", func(st State) bool { return st.Leader != "" })
	put := mustPost(t, srv.URL, "put", Request{Member: "m1", Key: "/del/gone", Value: "v"})
	keep := mustPost(t, srv.URL, "put", Request{Member: "m1", Key: "/del/kept", Value: "w"})
	s.waitWatch(t, 5*time.Second, "/del/kept")

	del := mustPost(t, srv.URL, "delete", Request{Member: "m3", Key: "/del/gone"})
	t.Logf("%s", del.Text)
	if del.Member != "m3" || del.Deleted != 1 || del.Revision != keep.Revision+1 {
		t.Fatalf("delete through m3 answered %+v, want 1 deleted at revision %d", del, keep.Revision+1)
	}
	get := mustPost(t, srv.URL, "get", Request{Member: "m2", Key: "/del/gone"})
	if get.Found || get.Value != "" || get.Revision != del.Revision || !strings.Contains(get.Text, "not found") {
		t.Fatalf("get through m2 after the delete = %+v, want not found at revision %d", get, del.Revision)
	}
	if ev := s.waitWatch(t, 5*time.Second, "/del/gone"); ev.Type != "DELETE" || ev.Revision != del.Revision {
		t.Fatalf("watch event after the delete %+v, want DELETE at revision %d (the put was at %d)", ev, del.Revision, put.Revision)
	}
	var ks Keyspace
	getJSON(t, srv.URL+"/api/keys", &ks)
	if len(ks.Keys) != 1 || ks.Keys[0].Key != "/del/kept" || ks.Revision != del.Revision {
		t.Fatalf("keyspace after the delete: %+v, want only /del/kept at revision %d", ks, del.Revision)
	}
	fresh := openStream(t, srv.URL)
	select {
	case ks := <-fresh.keys:
		if len(ks.Keys) != 1 || ks.Keys[0].Key != "/del/kept" {
			t.Fatalf("a new page starts from keyspace %+v, want only /del/kept", ks)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a new stream sent no keyspace")
	}

	again := mustPost(t, srv.URL, "delete", Request{Member: "m1", Key: "/del/gone"})
	if again.Deleted != 0 || again.Revision != del.Revision || !strings.Contains(again.Text, "nothing deleted") {
		t.Fatalf("deleting /del/gone again = %+v, want nothing deleted and the revision staying %d", again, del.Revision)
	}
	if res, _ := post(t, srv.URL, "delete", Request{Member: "m1"}); res.OK || !strings.Contains(res.Error, "give a key") {
		t.Fatalf("delete without a key: %+v", res)
	}
}

// getJSON decodes the answer to GET url into v.
func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: decode: %v", url, err)
	}
}

// TestSlowMotion checks that slow motion really slows Raft's clock: with
// ticks ten times slower the followers wait ten times longer before
// electing a new leader, and back at real time they elect one at once.
func TestSlowMotion(t *testing.T) {
	_, srv := startTest(t, 3)
	s := openStream(t, srv.URL)
	st := s.waitState(t, 10*time.Second, "a leader", func(st State) bool { return st.Leader != "" })
	mustPost(t, srv.URL, "slow", Request{Slow: 10})
	st = s.waitState(t, 5*time.Second, "slow motion", func(st State) bool { return st.Slow == 10 })
	if st.ElectionMS != 10_000 || st.HeartbeatMS != 1000 {
		t.Fatalf("slow ×10 reports heartbeat %d ms, election %d ms", st.HeartbeatMS, st.ElectionMS)
	}
	old := name(st, st.Leader)
	mustPost(t, srv.URL, "kill", Request{Member: old})
	// At real time a new leader comes within 1 to 2 s; slowed ten times,
	// not before 10 s.
	s.drain()
	until := time.Now().Add(3 * time.Second)
	for time.Now().Before(until) {
		st = s.waitState(t, 2*time.Second, "any state", func(State) bool { return true })
		if st.Leader != "" {
			t.Fatalf("a leader (%s) within 3 s of killing %s in slow motion ×10", name(st, st.Leader), old)
		}
	}
	mustPost(t, srv.URL, "slow", Request{Slow: 1})
	// The election timer, counted in ticks, is now well past its timeout.
	s.waitState(t, 10*time.Second, "a new leader at real time", func(st State) bool { return st.Leader != "" && name(st, st.Leader) != old })
	if res, code := post(t, srv.URL, "slow", Request{Slow: 0}); res.OK || code != http.StatusUnprocessableEntity {
		t.Fatalf("slow 0: %d %+v", code, res)
	}
}

// TestStartOnTakenPort has another listener take a free port the
// playground chose before its member listens on it: Start starts again on
// other ports, and the members elect a leader.
func TestStartOnTakenPort(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	calls := 0
	choosePeerURLs = func(base, n int) ([]string, error) {
		calls++
		urls, err := peerURLs(base, n)
		if calls == 1 && err == nil {
			urls[n-1] = "http://" + taken.Addr().String()
		}
		return urls, err
	}
	t.Cleanup(func() { choosePeerURLs = peerURLs })
	p, srv := startTest(t, 3)
	if calls != 2 {
		t.Fatalf("chose peer ports %d times, want 2 (the first choice holds a taken port)", calls)
	}
	s := openStream(t, srv.URL)
	st := s.waitState(t, 10*time.Second, "a leader", func(st State) bool { return st.Leader != "" && leaders(st) == 1 })
	for _, m := range st.Members {
		if strings.Contains(m.PeerURL, taken.Addr().String()) {
			t.Fatalf("%s listens for peers on the taken %s", m.Name, m.PeerURL)
		}
	}
	if len(p.Endpoints()) != 3 {
		t.Fatalf("endpoints %v, want 3", p.Endpoints())
	}
}

// TestHandler checks the page and the API's answers to what it cannot do.
func TestHandler(t *testing.T) {
	hub := NewHub()
	srv := httptest.NewServer(Handler(hub, nil))
	defer srv.Close()
	for path, want := range map[string]string{"/": "<svg id=\"ring\"", "/app.js": "EventSource", "/app.css": "--leader"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), want) {
			t.Errorf("GET %s: %d, want a body with %q", path, resp.StatusCode, want)
		}
	}
	res, code := post(t, srv.URL, "kill", Request{Member: "m1"})
	if code != http.StatusForbidden || !strings.Contains(res.Error, "read-only") {
		t.Errorf("kill on a dashboard: %d %+v", code, res)
	}

	p := &Playground{hub: hub}
	srv2 := httptest.NewServer(Handler(hub, p))
	defer srv2.Close()
	if res, code := post(t, srv2.URL, "explode", Request{}); code != http.StatusNotFound || !strings.Contains(res.Error, "try one of") {
		t.Errorf("unknown action: %d %+v", code, res)
	}
	resp, err := http.Post(srv2.URL+"/api/put", "application/json", strings.NewReader("{"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("bad JSON: %d", resp.StatusCode)
	}
}

// TestImports keeps the playground on the cluster's public API and
// clientv3: it never reaches into the store or the agent. It reads the
// agents' status through package fleet, which uses clientv3 only (its own
// test checks that) and the agent's types.
func TestImports(t *testing.T) {
	testenv.CheckImports(t, ".", func(path string) bool {
		return !strings.HasPrefix(path, "github.com/tendkv/tend/") ||
			path == "github.com/tendkv/tend/cluster" ||
			path == "github.com/tendkv/tend/cluster/transport" ||
			path == "github.com/tendkv/tend/fleet" ||
			path == "github.com/tendkv/tend/playground/web"
	})
}
