// Package bench is for measuring a cluster that speaks the etcd v3 API, tend's
// or etcd's, the way etcd's benchmark tool does: a fixed number of requests
// spread over concurrent clients sharing gRPC connections, reported as
// throughput and latency percentiles.
//
// Each run:
//  1. opens Conns connections to Endpoints;
//  2. starts Clients workers, worker i using connection i mod Conns;
//  3. the workers take requests from a shared counter until Total are done or
//     the context ends;
//  4. closes the connections and returns a Report.
//
// The scripts next to this file build a reference etcd (build-etcd.sh) and
// compare tend with it (compare.sh).
package bench
