package cluster

import (
	"testing"
	"time"

	"go.etcd.io/raft/v3"
)

// TestRaftDefaults pins the Raft settings a member runs with when nothing
// is configured, which are etcd's: a heartbeat every 100ms, an election
// timeout of 1000ms (ten ticks of one heartbeat each), a snapshot every
// 10000 applied entries, and pre-vote and check-quorum on.
func TestRaftDefaults(t *testing.T) {
	cfg := NewConfig()
	if cfg.HeartbeatInterval != 100*time.Millisecond || cfg.ElectionTimeout != 1000*time.Millisecond ||
		cfg.SnapshotCount != 10000 || cfg.DisablePreVote {
		t.Fatalf("defaults: heartbeat %v, election %v, snapshot count %d, pre-vote off %v; want 100ms, 1s, 10000, false",
			cfg.HeartbeatInterval, cfg.ElectionTimeout, cfg.SnapshotCount, cfg.DisablePreVote)
	}
	if err := cfg.validate(); err != nil {
		t.Fatalf("the defaults do not validate: %v", err)
	}
	rc := raftConfig(cfg, raft.NewMemoryStorage(), nil)
	if rc.HeartbeatTick != 1 || rc.ElectionTick != 10 || !rc.PreVote || !rc.CheckQuorum {
		t.Fatalf("raft config from the defaults: heartbeat tick %d, election tick %d, pre-vote %v, check-quorum %v; want 1, 10, true, true",
			rc.HeartbeatTick, rc.ElectionTick, rc.PreVote, rc.CheckQuorum)
	}
	// Pre-vote can be turned off (for showing what it prevents);
	// check-quorum cannot.
	cfg.DisablePreVote = true
	cfg.HeartbeatInterval, cfg.ElectionTimeout = 20*time.Millisecond, 200*time.Millisecond
	rc = raftConfig(cfg, raft.NewMemoryStorage(), nil)
	if rc.PreVote || !rc.CheckQuorum || rc.ElectionTick != 10 {
		t.Fatalf("raft config with pre-vote off: pre-vote %v, check-quorum %v, election tick %d; want false, true, 10", rc.PreVote, rc.CheckQuorum, rc.ElectionTick)
	}
}
