// Package autocompact compacts a keyspace's history on a schedule, as
// etcd's --auto-compaction-mode and --auto-compaction-retention do, so that
// a long-running cluster does not grow until its quota alarm stops writes.
//
// A Policy says what to keep:
//
//   - Periodic keeps Period of history. Run samples the revision every
//     tenth of the period (of an hour, for periods over an hour), waits one
//     Period after it starts, then compacts to the oldest sample of the
//     window: the revision of one Period ago. It compacts again every
//     Period (at most every hour), and retries a failed compaction at the
//     next sample.
//   - Revision keeps the newest Revisions revisions: every five minutes it
//     compacts to the current revision minus Revisions.
//
// Only the member that leads compacts (Target.Leader); a compaction is a
// request through Raft like any other, so every member applies it. Time
// comes from a clock, so that tests advance it instead of waiting.
package autocompact
