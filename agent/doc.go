// Package agent keeps files on one host in step with the keyspace: it watches
// the prefixes its templates read, renders them consistently at one revision,
// swaps changed files in atomically and runs the hooks that make the
// processes using them notice.
//
// The agent reaches the store only through go.etcd.io/etcd/client/v3, so it
// works the same against tend and against any etcd cluster. Run is one
// goroutine owning all state in one select loop; watches, template-source
// notifications and configuration reloads reach it over channels.
//
// The loop, as numbered steps:
//
//  1. Learn the store's current revision R (at start, and again whenever a
//     watch reports that the history it needs was compacted). Every
//     template is due.
//  2. Render each due template with every read pinned to one revision (the
//     newest the agent knows of), so a multi-key txn reaches a file whole or
//     not at all. Record the revision and what the render read (its Deps).
//     A failed render (unreachable store, missing key) keeps the last good
//     file and is retried with a doubling backoff, or at once when a change
//     it depends on arrives.
//  3. Merge all Deps into the fewest watches (a prefix inside another, or a
//     key under a watched prefix, needs none of its own) and start each new
//     watch just after the oldest revision a template it covers was read at,
//     so no change is missed.
//  4. A watch event marks the templates whose Deps it touches. A marked
//     template is due once no further change came for its wait min, and at
//     the latest wait max after its first change (zero min: at once).
//  5. Apply the templates whose bytes differ from the file on disk: stage
//     next to the destination, run the check on the staged file, fsync,
//     chmod/chown, keep a .bak if asked, rename into place, fsync the
//     folder. A failing check leaves the file untouched.
//  6. Once every template rendered once, start the supervised processes.
//  7. After the splay, run the hooks the written files name, each once per
//     change set in template order; then the health gate. If either fails
//     and rollback is on, restore the previous files, run the hooks again
//     and remember the refused content so it is not applied again.
//
// Status reports, per template, the revision on disk, when it was applied
// and the outcome of the last attempt.
package agent
