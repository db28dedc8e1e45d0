// Package cluster runs one tend member: a go.etcd.io/raft/v3 node with etcd's
// WAL and snapshot packages for durability, the store as its applied state,
// and the etcd v3 gRPC API it serves. A single member is a one-member cluster;
// there is no separate single-node path.
package cluster
