// Package v3rpc serves the etcd v3 gRPC API (KV, Watch, Lease, Cluster,
// Maintenance, Auth, Lock, Election and the gRPC health service) over a
// Backend, which is a tend member. It validates requests as etcd does, turns every error into
// etcd's rpctypes value in one table (errors.go), and fills response headers.
//
// Nothing here knows about Raft: writes go through Backend.Propose, reads
// through Backend.LinearizableRead followed by the store.
//
// Authorisation, as etcd does it, in three places:
//
//  1. The interceptors (interceptor.go) find the caller of each call from
//     its token or client certificate (authinfo.go), refuse invalid tokens,
//     and refuse calls that need a user or the root role (compaction,
//     maintenance, membership, lease calls) when the caller lacks it.
//  2. Reads served from the local store (Range, watch creation, lease
//     time-to-live and listing) are checked against the caller's key ranges
//     in their handlers.
//  3. Everything proposed carries the caller in its header (propose in
//     kv.go); the store checks it when it applies the request, so every
//     member decides alike and a permission change orders with the writes.
//
// Lock and Election are etcd's too: go.etcd.io/etcd/client/v3/concurrency
// run on a clientv3 client inside this process (local.go), whose calls go
// through the same interceptors and handlers with the outer call's
// context, so they are authorised as its caller, as etcd's are.
package v3rpc
