// Package config decodes and validates the agent's HCL configuration: where
// the store is, which templates render to which files, the hooks that run
// after a change, the processes the agent supervises, the health gate, the
// services the agent registers under leases, where it publishes its fleet
// status, and where it serves its metrics and health.
//
// Loading is one step with two halves, so a running agent can be handed a new
// configuration only when the whole of it is good:
//
//  1. Decode: parse one file, or every *.hcl file of a folder merged, into
//     the raw block structure (HCL reports syntax errors with file:line,col).
//  2. Validate: check every value (durations, perms, signals, names that
//     refer to other blocks, template syntax, source files), build the
//     hooks, parse the templates, and return a Config, or one error listing
//     every problem, each starting with file:line,col and naming the fix.
//
// # Missing keys
//
// A template's error_on_missing_key is on unless set to false: a key that
// `key` or `getv` (without a default) does not find, or a missing map
// entry, fails the render. The agent then keeps the last good file, logs
// the missing keys, and renders again when they appear; `tend render
// --once` names them and exits non-zero. Read a key that may be missing
// with keyOrDefault, exists or getv with a default. error_on_missing_key =
// false makes a missing key read as "" (a missing map entry as "<no
// value>"), as consul-template and confd do by default.
//
// # Processes and the files they read
//
// A process block's templates attribute lists the templates whose files the
// process reads. When a change set writes one of them, the agent reloads
// the process once, after the files are written and before the hooks run:
// it sends reload_signal, or restarts the process when reload_signal is
// unset. Without a templates attribute, a process with a reload_signal
// reads every template of the configuration (consul-template's exec
// mode), and a process without one reads none: its restart and signal
// hooks act on it, or it re-reads its files by itself (logback's scan).
// templates = [] says "none" for a process with a reload_signal. A process
// that one of the change set's hooks restarts or signals is left to that
// hook. A change under env_prefix always restarts the process, since a
// running program cannot take a new environment.
//
// # Fleet status
//
// A status block makes the agent publish what it did, for tend fleet
// status; without one it publishes nothing (the agent writes to the store
// only when asked to, and with auth its user needs write permission on the
// key):
//
//	status {
//	  key = "/tend/fleet/{{ hostname }}" # the default; hostname, env, sprig
//	  ttl = "30s"                        # the default; whole seconds, 1s or more
//	}
//
// key is rendered once when the configuration loads, as a service's key is,
// and cannot read the store; it may not be a service's key. The value is a
// JSON document, agent.HostStatus:
//
//	{"host": "web-1", "pid": 4242,
//	 "started_at": "2025-01-02T03:04:05Z", "updated_at": "2025-01-02T03:09:00Z",
//	 "templates": [{"template": "app", "destination": "/etc/myapp/app.yml",
//	   "revision": 1234, "applied_at": "2025-01-02T03:08:59Z",
//	   "outcome": "applied"}],
//	 "services": [{"service": "web", "key": "/services/web/web-1",
//	   "healthy": true, "registered": true, "lease": 7587862237128290049}]}
//
// revision is the store revision the file on disk was rendered at; outcome
// is the last attempt's: pending (not tried yet), applied, unchanged,
// render-failed, check-failed, write-failed, hook-failed or rolled-back,
// with error saying why when it failed (cut to 1 KiB).
//
// # Telemetry
//
// A telemetry block makes the agent serve Prometheus metrics and its
// health over HTTP; without one it listens on nothing:
//
//	telemetry {
//	  listen = "127.0.0.1:9102" # host:port; the host an IP, localhost or empty (every interface)
//	}
//
// GET /metrics answers these series, and the Go and process collectors'
// (go_*, process_*):
//
//	tend_agent_renders_total{template,outcome}           counter: applied, unchanged, rejected, render-failed, check-failed, write-failed
//	tend_agent_applies_total{template}                   counter: files replaced
//	tend_agent_last_applied_revision{template}           gauge: the revision the file on disk was rendered at
//	tend_agent_last_apply_timestamp_seconds{template}    gauge: when the file was last replaced
//	tend_agent_render_duration_seconds                   histogram: one render, its store reads included
//	tend_agent_apply_duration_seconds                    histogram: render start to file replaced and fsynced
//	tend_agent_hook_runs_total{hook,outcome}             counter: ok, failed
//	tend_agent_rollbacks_total{template}                 counter: files put back after a failed hook, reload or health gate
//	tend_agent_store_connected                           gauge: 1 while the store connection is up
//	tend_agent_watch_streams                             gauge: watches held on the store
//	tend_agent_services_registered{service}              gauge: 1 while registered
//
// GET /health answers 200 and {"healthy": true, "store_connected": true,
// "templates": 2, "rendered": 2} once every template rendered at least
// once and the store connection is up, and 503 with "reasons" naming what
// is missing otherwise (a template not rendered yet and its last error, or
// the store connection's state).
package config
