// Package cluster runs one tend member: a go.etcd.io/raft/v3 node with etcd's
// WAL and snapshot packages for durability, the store as its applied state,
// and the etcd v3 gRPC API it serves (package v3rpc). A single member is a
// one-member cluster; there is no separate single-node path.
//
// StartMember opens the data directory (<data-dir>/member/wal, .../snap, and
// the store's bbolt file .../snap/db), then either creates the WAL of a new
// member or restarts: newest snapshot the WAL knows, WAL entries after it
// into Raft's storage, committed entries replayed through the loop below
// (the store skips those at or below its AppliedIndex). A new member of a
// new cluster (--initial-cluster-state new) derives its and the cluster's
// IDs as etcd does, from the token and the peer URLs; a member joining an
// existing cluster asks the members in --initial-cluster for theirs, finds
// itself by its peer URLs (tend member add put it there) and starts with an
// empty log that the leader fills (by snapshot when it compacted its log).
//
// Members talk over the peer transport (package transport): one listener
// per --listen-peer-urls, a stream per peer for Raft messages, snapshots on
// connections of their own. Membership changes are Raft conf changes whose
// context is the member (ID, peer URLs, learner); a member publishes its
// name and client URLs through Raft once it is ready. Both are checked when
// applied, the same way on every member; an invalid change applies as no
// change. A member that applies its own removal stops with ErrRemoved.
//
// The Ready loop is the only writer of the WAL, Raft's storage and the store
// (part of step 6 runs in a goroutine it starts and waits for within the
// same Ready). For each Ready it:
//
//  1. records the leader and term; promotes the store's lease clock on
//     becoming leader and demotes it on losing leadership;
//  2. hands read states to the ReadIndex loop;
//  3. saves a snapshot received from the leader (file, then WAL record),
//     restores the store from the data that came with it, and takes its
//     member list and configuration;
//  4. saves HardState and entries to the WAL (fsync) and appends them to
//     Raft's storage;
//  5. sends messages through the Transport: the leader sends all of them
//     before step 4, writing its entries while the followers write theirs,
//     as etcd does; other members send the proposals and read requests
//     they forward to the leader before step 4 too (they claim nothing
//     about the member's log or vote) and everything else, acknowledgements
//     and votes, after it; a snapshot message is rewritten
//     to describe the applied state (so a member added since the last
//     snapshot finds itself in its configuration), and the transport
//     streams the store with it;
//  6. applies committed entries in order: requests to the store, whose
//     result goes to the proposer waiting under the request's ID; conf
//     changes to Raft. Entries an earlier Ready saved are applied while
//     step 4 fsyncs, as etcd applies them (up to the first conf change),
//     the rest after it. A store failure stops the member: a crash beats
//     replicas that diverge;
//  7. every SnapshotCount applied entries, writes a snapshot at an index the
//     store holds durably, records it in the WAL, and releases the WAL and
//     Raft's memory before it;
//  8. calls Advance.
//
// Proposals carry an etcdserverpb.InternalRaftRequest with a unique ID; a
// follower's reach the leader through Raft. Linearizable reads share
// ReadIndex rounds and wait until the member has applied the round's index.
// The leader alone keeps lease time and revokes expired leases through Raft;
// followers check the caller's permissions and then forward keep-alives,
// TTL queries and learner promotion to it as calls over the peer transport
// (forward.go), as etcd does over its peer URLs. A new leader gives every
// lease a fresh TTL.
//
// Each client URL serves gRPC and, on the same port as etcd does, HTTP/1.1:
// /health, /livez, /readyz, /version, /metrics (etcd's metric names, see
// metrics.go) and the JSON gateway under /v3/; --listen-metrics-urls adds
// listeners for /metrics and the health endpoints alone.
//
// Every goroutine stops when the member's context is cancelled (Close, or a
// fatal error recorded for Err); Done closes once files are released.
package cluster
