// Package etcdtest runs a real one-member etcd inside a test process: the
// reference that tend's compatibility tests and benchmarks compare against.
//
// Its client URL is on a real loopback port (etcd advertises it in member
// lists and its JSON gateway dials it), taken from the kernel and handed to
// etcd. Another test may take that port in between; Start then begins again
// on other ports instead of failing the test.
package etcdtest
