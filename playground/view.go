package playground

import (
	"fmt"
	"strconv"
)

// Roles a member is drawn with: cluster.Role's values, and these.
const (
	RoleDown    = "down"    // stopped (killed, crashed, or not answering)
	RoleUnknown = "unknown" // running, Raft state not known (dashboard)
)

// State is what the page draws of the cluster at one moment.
type State struct {
	Mode    string       `json:"mode"` // "playground" or "dashboard"
	Now     int64        `json:"now"`  // server time, Unix milliseconds
	Members []MemberView `json:"members"`
	// Leader is the leader of the highest term any member knows ("" when
	// none); Term is that term.
	Leader string `json:"leader"`
	Term   uint64 `json:"term"`
	// Groups are the sides of a partition, by member ID, the largest
	// first; empty when every link is healthy.
	Groups [][]string `json:"groups,omitempty"`
	// HeartbeatMS and ElectionMS are the cluster's timing now (slow
	// motion included); Slow is the slow-motion factor (1: real time).
	HeartbeatMS int64 `json:"heartbeatMS"`
	ElectionMS  int64 `json:"electionMS"`
	Slow        int   `json:"slow"`
	// Endpoints is what a client can use: every running member's client
	// URL.
	Endpoints []string `json:"endpoints"`
	Prefix    string   `json:"prefix,omitempty"` // dashboard: the keys shown
	Error     string   `json:"error,omitempty"`  // dashboard: why nothing answers
}

// MemberView is one member as the page draws it.
type MemberView struct {
	ID        string `json:"id"` // hex, as etcdctl prints it
	Name      string `json:"name"`
	Role      string `json:"role"`
	Term      uint64 `json:"term"`
	Leader    string `json:"leader,omitempty"` // who it thinks leads
	Commit    uint64 `json:"commit"`
	Applied   uint64 `json:"applied"`
	ClientURL string `json:"clientURL"`
	PeerURL   string `json:"peerURL,omitempty"`
	Learner   bool   `json:"learner,omitempty"`
	Isolated  bool   `json:"isolated,omitempty"` // alone on its side of a partition
	// HeardAt is when it last heard from a leader or started or granted a
	// vote (Unix ms; 0: unknown): its election timer started then.
	HeardAt int64 `json:"heardAt,omitempty"`
	// Match is, on a leader, how far each member's log matches its own.
	Match   map[string]uint64 `json:"match,omitempty"`
	DBSize  int64             `json:"dbSize,omitempty"` // dashboard
	Version string            `json:"version,omitempty"`
	Error   string            `json:"error,omitempty"` // why it is down
}

// Msg is one Raft message drawn flowing (or several, sampled: Count).
type Msg struct {
	From string `json:"from"`
	To   string `json:"to"`
	Kind string `json:"kind"` // heartbeat, append, vote, prevote, ...; "-resp" for answers
	// Reject is set on an answer that refuses (a vote not granted, an
	// append that did not match).
	Reject  bool   `json:"reject,omitempty"`
	Entries int    `json:"entries,omitempty"` // entries carried by an append
	Term    uint64 `json:"term"`
	Count   int    `json:"count"` // messages of this kind on this link it stands for
	// Dropped is set when the message never arrives: the link is cut or
	// the receiver is down.
	Dropped bool `json:"dropped,omitempty"`
}

// WatchEvent is one keyspace change, as a watch delivered it.
type WatchEvent struct {
	Type     string `json:"type"` // PUT or DELETE
	Key      string `json:"key"`
	Value    string `json:"value,omitempty"`
	Revision int64  `json:"revision"` // the change's (mod) revision
	Version  int64  `json:"version,omitempty"`
	At       int64  `json:"at"` // Unix ms, when it reached us
}

// KV is one key of the keyspace panel.
type KV struct {
	Key         string `json:"key"`
	Value       string `json:"value"`
	ModRevision int64  `json:"modRevision"`
	Version     int64  `json:"version"`
}

// Keyspace is the keyspace panel's content.
type Keyspace struct {
	Revision  int64 `json:"revision"`
	Keys      []KV  `json:"keys"`
	Truncated bool  `json:"truncated,omitempty"` // more keys than shown
}

// Fleet is the fleet panel's content: the status each agent publishes
// under Prefix (agent.HostStatus), one row per host and template.
type Fleet struct {
	Prefix string `json:"prefix"`
	// Revision is the store revision the rows are at: the read's, or the
	// latest watch response's.
	Revision  int64 `json:"revision"`
	Hosts     int   `json:"hosts"`     // entries under the prefix
	Templates int   `json:"templates"` // templates over every host
	Failed    int   `json:"failed"`    // rows with Failed set
	// Rows are at most maxFleetRows: the failed first, then the others,
	// each by host, a host's templates in its agent's order. More is how
	// many were left out.
	Rows  []FleetRow `json:"rows"`
	More  int        `json:"more,omitempty"`
	Error string     `json:"error,omitempty"` // why the prefix could not be read
}

// FleetRow is one template of one host, as its agent last published it.
type FleetRow struct {
	Host     string `json:"host"`
	Template string `json:"template,omitempty"` // "": the host has none, or its entry is invalid
	// Revision is the store revision the file on disk was rendered at.
	Revision int64  `json:"revision"`
	Outcome  string `json:"outcome,omitempty"` // the last attempt's; "invalid" for an entry that is not a status
	// AppliedAt is when the file was last replaced, Unix ms (0: never).
	AppliedAt int64  `json:"appliedAt,omitempty"`
	Error     string `json:"error,omitempty"` // the last attempt's, truncated
	// Failed is set when the last attempt failed (agent.Status.Failed),
	// or the entry is not an agent's status.
	Failed bool `json:"failed,omitempty"`
}

// Entry is one line of the timeline.
type Entry struct {
	Seq    int64  `json:"seq"` // grows by one per new entry; a repeat keeps it
	At     int64  `json:"at"`  // Unix ms, of the latest repeat
	Kind   string `json:"kind"`
	Member string `json:"member,omitempty"` // name
	Term   uint64 `json:"term,omitempty"`
	Text   string `json:"text"`
	Count  int    `json:"count"` // repeats folded into this line
}

// Timeline kinds.
const (
	KindElected   = "elected"   // a member became leader
	KindElection  = "election"  // a member campaigned for a new term
	KindPreVote   = "prevote"   // a member asked whether it could win (term unchanged)
	KindStepDown  = "stepdown"  // a leader became a follower
	KindNoLeader  = "noleader"  // no member is leader
	KindAction    = "action"    // something a person did
	KindDown      = "down"      // a member stopped
	KindUp        = "up"        // a member is running again
	KindMembers   = "members"   // membership changed
	KindConnected = "connected" // dashboard: reached the cluster again
)

// ActionResult answers a POST /api/<action>.
type ActionResult struct {
	OK      bool   `json:"ok"`
	Action  string `json:"action"`
	Member  string `json:"member,omitempty"` // name
	Key     string `json:"key,omitempty"`
	Value   string `json:"value,omitempty"`
	Found   bool   `json:"found,omitempty"`
	Deleted int64  `json:"deleted,omitempty"`
	// Revision is the store revision the answer was read at (the header's);
	// ModRevision the key's own.
	Revision     int64   `json:"revision,omitempty"`
	ModRevision  int64   `json:"modRevision,omitempty"`
	Serializable bool    `json:"serializable,omitempty"`
	LatencyMS    float64 `json:"latencyMS"`
	Text         string  `json:"text"` // one line for a person
	Error        string  `json:"error,omitempty"`
}

// hexID is a member ID as etcdctl prints it.
func hexID(id uint64) string { return strconv.FormatUint(id, 16) }

func parseID(s string) (uint64, error) {
	id, err := strconv.ParseUint(s, 16, 64)
	if err != nil {
		return 0, fmt.Errorf("member id %q: want hex, as in the member list", s)
	}
	return id, nil
}
