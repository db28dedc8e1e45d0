// Package hook holds the actions the agent runs after a rendered file changes:
// run a command, signal a process, restart a supervised process, or call an
// HTTP endpoint.
//
// Each hook is built by a constructor (NewExec, NewSignal, NewRestart,
// NewHTTP) that validates its whole configuration up front and returns an
// error naming the problem and the fix; the agent prefixes that error with the
// HCL file:line:col. A built hook is immutable and safe to run from several
// goroutines. Run reports failures as errors that start with the hook's name
// and the action that failed, e.g.
//
//	hook "notify": exec systemctl reload nginx: exit status 1: Job failed.
//
// Hooks never import the process supervisor: restart and named-signal hooks
// reach supervised processes through Env.Processes (a ProcessRegistry).
package hook
