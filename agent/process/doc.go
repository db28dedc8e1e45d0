// Package process supervises the agent's child processes: it starts them,
// forwards their output, reloads them with a signal or restarts them when
// their configuration changes, restarts them with backoff when they exit on
// their own, and stops them all gracefully when the agent stops.
//
// The lifecycle of one supervised process:
//
//  1. Start runs Spec.Command in its own process group, with Spec.Env added
//     to the agent's environment and its output sent to Spec.Stdout and
//     Spec.Stderr, and returns once the program has been executed.
//  2. Reload and Restart first wait a random time below Spec.Splay, if set.
//     Reload then sends Spec.ReloadSignal to the process (the leader only,
//     so shell wrappers should exec the program), or restarts it when no
//     reload signal is set.
//  3. Restart and Update stop the process gracefully: Spec.KillSignal to the
//     whole group, SIGKILL to the group after Spec.KillTimeout (or at once
//     when the caller's context ends), and SIGKILL to any member of the
//     group left after the leader exits. They start it again and return once
//     the new process has started.
//  4. A process that exits when nobody asked it to is logged with its exit
//     status and, with Spec.RestartOnExit, started again after a backoff
//     that doubles while it keeps failing quickly.
//  5. Close stops every process as in step 3, all at once, and waits for
//     them and for every goroutine the supervisor started.
//
// Every child is waited for, so none is left a zombie.
package process
