// Package agent keeps files on one host in step with the keyspace: it watches
// the prefixes its templates read, renders them consistently at one revision,
// swaps changed files in atomically and runs the hooks that make the
// processes using them notice. It also registers the host's services under
// leases, so that others render it into their files while it is healthy.
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
//  2. Render each due template with every read pinned to one revision, so
//     a multi-key txn reaches a file whole or not at all: from the mirror of
//     a watch that holds everything the template read last time (the
//     watch's target loaded once, then kept by its events; no round trip),
//     at the mirror's revision; else from the store at the newest revision
//     the agent knows of. Record the revision and what the render read (its
//     Deps).
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
//     chmod/chown, keep a .bak if asked, rename into place, and have the
//     folder fsynced beside the loop (the hooks wait for it, the next change
//     does not). A failing check leaves the file untouched.
//  6. Once every template rendered once, start the supervised processes;
//     later, restart those whose env_prefix changed, after the splay.
//  7. After the splay (a random delay below the largest splay of the
//     written templates, during which the loop waits), reload the running
//     processes that read a written file (their reload signal, else a
//     restart), then run the hooks the written files name, each once per
//     change set in template order; then the health gate. If any of them
//     fails and rollback is on, restore the previous files, reload and run
//     the hooks again and remember the refused content so it is not
//     applied again.
//  8. Once idle for a second after rendering, return the memory the
//     renders used to the OS, and run Options.Idle (tend agent drops the
//     pages of its binary that the work mapped in).
//
// Beside the loop, each service block has a registrar goroutine that keeps
// the host registered in the store while its health check passes: a lease of
// the service's TTL kept alive, the key put under it, a new lease when the
// old one is lost, and a revoke when the check fails or the agent stops (the
// steps are on registrar). The loop starts and stops registrars at start, on
// reload, and when Run ends.
//
// With a status block, a publisher goroutine beside the loop keeps the
// agent's HostStatus (host, pid, start, and Status and Services below) as
// JSON under the block's key, attached to a lease of its ttl kept alive:
// rewritten, debounced, whenever a status changes; put again under a new
// lease when the old one was lost during an outage; revoked when the agent
// stops, so a dead agent's entry goes a ttl after it died. The agent's user
// needs write permission on the key. tend fleet status lists these entries.
// The loop only signals the publisher: a failed write never holds up a
// render (the steps are on publisher).
//
// With a telemetry block, Run serves on its listen address, until it
// returns, /metrics (Prometheus text from a registry of the agent's own,
// with the Go and process collectors; every series named tend_agent_*,
// labelled by template, hook or service name only) and /health (200 with
// Health as JSON once every template rendered at least once and the store
// connection is up; 503 with the reasons otherwise). A reload keeps a
// template rendered while its destination stays: the last good file is
// still in place, even if the new definition fails to render (that shows
// in the renders metric and the fleet status). A listen address that
// cannot be bound ends Run at start; on reload, the new address is bound
// before the old listener closes, and the old one stays if it cannot be.
//
// Status reports, per template, the revision on disk, when it was applied
// and the outcome of the last attempt; Services, per service, whether it is
// healthy and registered.
package agent
