// Package fleet reads what the agents publish about themselves (each
// host's agent.HostStatus, as JSON under a common prefix) and says whether
// the fleet has reached a store revision: which templates are behind it or
// failed, which entries are not statuses, which hosts went, and whether
// enough hosts publish at all.
//
// A View holds the entries as last read or watched, and keeps what lags up
// to date as each entry changes, so that asking whether the fleet has
// reached the revision costs the same for five hosts as for five thousand.
// The full, sorted list of laggards is built only when asked for, once, to
// print it.
//
// View.Wait, as numbered steps:
//
//  1. The keys present when it starts are expected: one that goes from now
//     on is a laggard (its agent stopped, or lost the store for longer than
//     its status ttl), until it comes back.
//  2. Watch the prefix from the revision after the last read, with
//     WithRequireLeader, and apply each event; after each response, stop if
//     the fleet has reached the revision.
//  3. If the watch ends first (a compaction, a lost leader or stream), read
//     the prefix again, keeping the expected keys, and go back to step 2.
//  4. When the duration passes or the context ends, stop: the caller
//     reports what lags. Only a read that fails on its own is an error.
//
// A View is not safe for concurrent use: Wait applies the watch's events
// in the caller's goroutine.
package fleet
