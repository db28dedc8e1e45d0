// Package compat holds differential tests: the same operations run through
// clientv3 against tend (cluster.StartMember) and against a real etcd
// (embedded), and the responses must be equal once the fields that are
// legitimately different are normalised (cluster and member IDs, raft term,
// server-generated lease IDs). It also runs the real etcdctl against
// `tend server` and a real etcd server and compares their outputs.
//
// The package has no code outside its tests. A failing test names the step,
// the operation and both responses; that is the repro.
//
//	go test ./cluster/compat                 # scripted + randomized (seed 1)
//	go test ./cluster/compat -seed=0 -ops=2000   # a fresh random seed, logged
package compat
