package cluster

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	raftpb "go.etcd.io/raft/v3/raftpb"

	"github.com/tendkv/tend/internal/scrape"
)

func heartbeatTo(to uint64) *raftpb.Message {
	return &raftpb.Message{Type: raftpb.MessageType_MsgHeartbeat.Enum(), To: &to}
}

// A heartbeat to a peer more than twice the interval after the previous
// one to that peer is late, by the excess; other messages and a peer's
// first heartbeat are not; reset forgets.
func TestHeartbeatWatch(t *testing.T) {
	w := newHeartbeatWatch(100 * time.Millisecond)
	t0 := time.Unix(1000, 0)
	app := &raftpb.Message{Type: raftpb.MessageType_MsgApp.Enum(), To: new(uint64)}
	steps := []struct {
		at   time.Duration
		msgs []*raftpb.Message
		want string
	}{
		{0, []*raftpb.Message{heartbeatTo(2), heartbeatTo(3)}, "[]"},
		{100 * time.Millisecond, []*raftpb.Message{heartbeatTo(2), app}, "[]"},
		{300 * time.Millisecond, []*raftpb.Message{heartbeatTo(2)}, "[]"}, // exactly twice: on time
		{550 * time.Millisecond, []*raftpb.Message{heartbeatTo(2), heartbeatTo(3)}, "[{2 50ms} {3 350ms}]"},
		{700 * time.Millisecond, []*raftpb.Message{heartbeatTo(4)}, "[]"}, // first to 4
	}
	for _, s := range steps {
		if got := fmt.Sprintf("%v", lateString(w.observe(s.msgs, t0.Add(s.at)))); got != s.want {
			t.Errorf("at %v: late %s, want %s", s.at, got, s.want)
		}
	}
	w.reset()
	if late := w.observe([]*raftpb.Message{heartbeatTo(2)}, t0.Add(time.Hour)); len(late) != 0 {
		t.Errorf("after reset: late %v, want none", late)
	}
}

func lateString(late []lateHeartbeat) []string {
	out := []string{}
	for _, l := range late {
		out = append(out, fmt.Sprintf("{%d %v}", l.peer, l.over))
	}
	return out
}

// A leader whose loop is held up (here: a send that blocks, as a slow disk
// would hold it) counts its late heartbeats in
// etcd_server_heartbeat_send_failures_total, as etcd does.
func TestLateHeartbeatsCounted(t *testing.T) {
	var stall atomic.Bool
	c := newTestCluster(t, 3, func(cfg *Config) {
		cfg.ObserveMessage = func(m *raftpb.Message) {
			if m.GetType() == raftpb.MessageType_MsgHeartbeat && stall.CompareAndSwap(true, false) {
				time.Sleep(3 * multiHeartbeat)
			}
		}
	})
	lead := c.waitLeader()
	url := c.member(lead).ClientURLs()[0] + "/metrics"
	count := func() float64 {
		return scrape.Value(scrape.Families(t, url)["etcd_server_heartbeat_send_failures_total"], nil)
	}
	before := count()
	stall.Store(true)
	eventually(t, 10*time.Second, "a late heartbeat counted", func() bool { return count() > before })
}
