// Package process supervises the agent's child processes: it starts them,
// forwards their output, reloads them with a signal or restarts them when
// their configuration changes, restarts them with backoff when they exit on
// their own, and stops them all gracefully when the agent stops.
//
// The lifecycle of one supervised process:
//
//  1. Start runs Spec.Command in its own process group and returns once the
//     program has been executed.
//  2. Reload sends Spec.ReloadSignal to the process (only the leader, so use
//     exec in shell wrappers), or restarts it when no reload signal is set.
//  3. Restart and Update stop the process gracefully: Spec.KillSignal to the
//     whole group, then SIGKILL to the group after Spec.KillTimeout. They
//     start it again and return once the new process has started.
//  4. A process that exits when nobody asked it to is logged with its exit
//     status and, with Spec.RestartOnExit, started again after a backoff
//     that doubles while it keeps failing quickly.
//  5. Close stops every process as in step 3, at the same time, and waits
//     for all of them and for every goroutine the supervisor started.
//
// Every child is waited for, so none is left a zombie.
package process
