// Package clustertest starts real tend members for other packages' tests:
// one member or a new cluster of several on free loopback ports, each
// closed when the test ends. The cluster package's own tests have a richer
// harness (multi_test.go); this one serves the rest.
package clustertest
