// Package cluster runs one tend member: a go.etcd.io/raft/v3 node with etcd's
// WAL and snapshot packages for durability, the store as its applied state,
// and the etcd v3 gRPC API it serves (package v3rpc). A single member is a
// one-member cluster; there is no separate single-node path.
//
// StartMember opens the data directory (<data-dir>/member/wal, .../snap, and
// the store's bbolt file .../snap/db), then either creates the WAL of a new
// member (IDs derived as etcd derives them, recorded in the WAL metadata) or
// restarts: newest snapshot the WAL knows, WAL entries after it into Raft's
// storage, committed entries replayed through the loop below (the store
// skips those at or below its AppliedIndex).
//
// The Ready loop is the only writer of the WAL, Raft's storage and the store.
// For each Ready it:
//
//  1. records the leader and term; promotes the store's lease clock on
//     becoming leader and demotes it on losing leadership;
//  2. hands read states to the ReadIndex loop;
//  3. saves a received snapshot (file, then WAL record) — restoring from a
//     peer comes with the peer transport;
//  4. saves HardState and entries to the WAL (fsync) and appends them to
//     Raft's storage;
//  5. sends messages through the Transport (none for one member);
//  6. applies committed entries in order: requests to the store, whose
//     result goes to the proposer waiting under the request's ID; conf
//     changes to Raft. A store failure stops the member: a crash beats
//     replicas that diverge;
//  7. every SnapshotCount applied entries, writes a snapshot at an index the
//     store holds durably, records it in the WAL, and releases the WAL and
//     Raft's memory before it;
//  8. calls Advance.
//
// Proposals carry an etcdserverpb.InternalRaftRequest with a unique ID.
// Linearizable reads share ReadIndex rounds and wait until the member has
// applied the round's index. The leader revokes expired leases through Raft.
//
// Each client URL serves gRPC and, on the same port as etcd does, HTTP/1.1:
// /health, /version and the JSON gateway under /v3/.
//
// Every goroutine stops when the member's context is cancelled (Close, or a
// fatal error recorded for Err); Done closes once files are released.
package cluster
