// Package store is tend's MVCC keyspace: a deterministic state machine with
// etcd v3 semantics, persisted in bbolt together with the last applied index.
//
// The contract, in the order a caller uses it:
//
//  1. Open a Store on a bbolt file. AppliedIndex reports the index of the last
//     request whose effects are durable in that file; the caller (the Raft
//     member) replays its log from the entry after it.
//  2. Feed every committed write to Apply, in log order, each with its log
//     index. The same sequence of (index, request) gives the same state on
//     every member. Apply never consults the clock or the network.
//  3. Serve reads (Range, lease lookups, HashKV) from the applied state at any
//     time, from any goroutine.
//  4. Watch streams see every event of every applied revision, in order,
//     exactly once, from any uncompacted start revision.
//  5. Close flushes pending backend work and releases the file.
//
// The store never knows who ordered the requests: it imports none of tend's
// other packages and nothing about Raft, gRPC or the network.
//
// Inside, in the order a write travels:
//
//   - store.go: Open, Apply (dispatch by request kind), Close, and the one
//     lock: Apply and maintenance hold Store.mu exclusively, readers share it.
//   - kv.go, txn.go: writes and reads as etcd's mvcc and apply layers do them
//     (the same revision, count, limit, sort and compare rules).
//   - index.go: the in-memory index from key to its generations of
//     revisions, like etcd's treeIndex, in sorted blocks.
//   - backend.go: bbolt with etcd's bucket layout; one write transaction
//     collects a batch of requests and commits every BatchInterval or
//     BatchLimit requests. Reads outside Apply use a read transaction on the
//     committed file plus the batch's buffer, so they see applied but
//     uncommitted writes.
//   - lease.go, alarm.go: leases and alarms, persisted; lease expiry is
//     leader bookkeeping in memory.
//   - auth.go, authperm.go: users, roles and permissions in etcd's auth
//     buckets, the Auth service's requests, and the checks every applied
//     request passes when auth is on (the sender is in its header), so all
//     members decide alike; permission ranges merged per user. Tokens are
//     not state: a TokenIssuer set by the API layer hands them out.
//   - watch.go: synced and unsynced watchers; a slow reader is caught up from
//     the backend instead of blocking Apply.
//   - compact.go, compactor.go, snapshot.go: compaction (logical in Apply,
//     the old revisions deleted from the backend beside it in batches, as
//     etcd does), HashKV, Snapshot, Restore, Defragment.
package store
