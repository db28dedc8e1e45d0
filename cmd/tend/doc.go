// Command tend is the one binary: a member of the key-value cluster, its
// etcd-compatible client, the per-host agent and the playground. This package
// wires the others into cobra commands and holds no logic beyond flags and
// output.
package main
