// Package v3rpc serves the etcd v3 gRPC API (KV, Watch, Lease, Cluster,
// Maintenance, Auth and the gRPC health service) over a Backend, which is a
// tend member. It validates requests as etcd does, turns every error into
// etcd's rpctypes value in one table (errors.go), and fills response headers.
//
// Nothing here knows about Raft: writes go through Backend.Propose, reads
// through Backend.LinearizableRead followed by the store.
package v3rpc
