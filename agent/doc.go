// Package agent keeps files on one host in step with the keyspace: it watches
// the prefixes its templates read, renders them consistently at one revision,
// swaps changed files in atomically and runs the hooks that make the
// processes using them notice.
package agent
