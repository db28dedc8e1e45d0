// Package templates renders Go text/templates (with sprig and store
// functions) against a read-only view of the keyspace at one revision, and
// reports which keys and prefixes each render read. It is pure: no network,
// no files, testable without a server.
package templates
