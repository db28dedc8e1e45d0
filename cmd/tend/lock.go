package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"go.etcd.io/etcd/client/v3/concurrency"
)

func newLockCmd() *cobra.Command {
	var ttl int
	cmd := &cobra.Command{
		Use:   "lock NAME [COMMAND ARG...]",
		Short: "Hold a named lock until interrupted, or while a command runs",
		Long: `Lock waits for the lock NAME, as etcdctl lock does: it puts a key
NAME/<lease ID in hex> on a session lease (--ttl seconds, kept alive while
tend runs), and the oldest such key holds the lock.

Without COMMAND it prints the key like get prints several keys (the key,
then its empty value on the next line; -w json: the response), holds the lock
until Ctrl-C or SIGTERM, then releases it and exits 0. If the session lease
expires first, it fails with "session expired".

With COMMAND it runs it with ETCD_LOCK_KEY (the key) and ETCD_LOCK_REV (the
revision the lock was acquired at) in its environment and stdin, stdout and
stderr passed through, releases the lock when it ends and exits with its exit
status:

  tend lock db-migrate ./migrate.sh --to 42

Flags after the first word of COMMAND are COMMAND's (etcdctl needs "--"
before such a command, which tend also takes). When tend ends, it revokes the
session lease; etcdctl leaves it to expire.`,
	}
	cf := addClientFlags(cmd)
	cmd.Flags().IntVar(&ttl, "ttl", 10, "session TTL in seconds: if tend stops keeping the lease alive, the lock is released this long after")
	// The command's own flags are not tend's: parsing stops at NAME, and
	// RunE parses only the flags between NAME and COMMAND.
	cmd.Flags().SetInterspersed(false)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) > 1 && cmd.ArgsLenAtDash() < 0 {
			if err := cmd.Flags().Parse(args[1:]); err != nil {
				return err
			}
			if help, _ := cmd.Flags().GetBool("help"); help {
				return cmd.Help()
			}
			args = append([]string{args[0]}, cmd.Flags().Args()...)
		}
		if len(args) == 0 {
			return badArgs("lock takes a lock name argument and an optional command to execute")
		}
		if ttl <= 0 {
			return fmt.Errorf("--ttl %d: give the session TTL in seconds, at least 1 (default 10)", ttl)
		}
		if err := cf.checkWriteOut("lock", "simple", "json"); err != nil {
			return err
		}
		return runLock(cmd, cf, ttl, args[0], args[1:])
	}
	return cmd
}

func runLock(cmd *cobra.Command, cf *clientFlags, ttl int, name string, command []string) error {
	cli, err := cf.client()
	if err != nil {
		return err
	}
	defer cli.Close()
	// Ctrl-C or SIGTERM stops the wait for the lock, or ends the hold.
	// While COMMAND runs they only mark that: tend waits for COMMAND.
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	action := fmt.Sprintf("lock %q", name)
	s, err := newSession(ctx, cf, cli, ttl, action)
	if err != nil {
		return err
	}
	defer closeSession(cf, cli, s)

	m := concurrency.NewMutex(s, name)
	if err := m.Lock(ctx); err != nil {
		// Lock deletes its waiting key when ctx ends.
		return cf.requestError(action, err)
	}
	if len(command) > 0 {
		return runLocked(cmd, cf, m, command)
	}

	gctx, cancel := cf.commandContext(ctx)
	resp, err := cli.Get(gctx, m.Key())
	cancel()
	if err != nil {
		unlock(cf, m)
		return cf.requestError(action, err)
	}
	if len(resp.Kvs) == 0 {
		return errors.New("lock lost on init")
	}
	if err := printGet(cmd.OutOrStdout(), cf, resp); err != nil {
		unlock(cf, m)
		return err
	}
	select {
	case <-ctx.Done():
		return unlock(cf, m)
	case <-s.Done():
		return errors.New("session expired")
	}
}

// runLocked runs command while m is held, releases m and returns command's
// exit status as an exitError.
func runLocked(cmd *cobra.Command, cf *clientFlags, m *concurrency.Mutex, command []string) error {
	c := exec.Command(command[0], command[1:]...)
	// After the inherited environment, so a lock taken inside another
	// lock's command sees its own key (etcdctl puts them first, and an
	// inherited ETCD_LOCK_KEY wins).
	c.Env = append(os.Environ(), "ETCD_LOCK_KEY="+m.Key(), fmt.Sprintf("ETCD_LOCK_REV=%d", m.Header().Revision))
	c.Stdin, c.Stdout, c.Stderr = cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr()
	runErr := c.Run()
	unlockErr := unlock(cf, m)
	var ee *exec.ExitError
	if errors.As(runErr, &ee) {
		// "exit status 3", as etcdctl reports it, with the same status.
		return &exitError{code: ee.ExitCode(), err: runErr}
	}
	if runErr != nil {
		return runErr
	}
	return unlockErr
}

// unlock releases m, bounded by --command-timeout.
func unlock(cf *clientFlags, m *concurrency.Mutex) error {
	key := m.Key()
	ctx, cancel := cf.commandContext(context.Background())
	defer cancel()
	if err := m.Unlock(ctx); err != nil {
		return cf.requestError(fmt.Sprintf("unlock %q", key), err)
	}
	return nil
}
