// Package testenv is for tests that need something from the machine they run
// on: an external program, or a reference build of etcd. When it is missing a
// test skips with a message naming what to install, unless TEND_E2E=require,
// in which case it fails (CI sets that, so nothing is skipped there silently).
package testenv
