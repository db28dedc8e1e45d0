package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// electSessionTTL is the session TTL of elect, concurrency's default, which
// etcdctl elect uses (it has no --ttl).
const electSessionTTL = 60

func newElectCmd() *cobra.Command {
	var listen bool
	cmd := &cobra.Command{
		Use:   "elect NAME [PROPOSAL]",
		Short: "Campaign to lead the election NAME, or watch who leads it",
		Long: `Elect is etcdctl elect. With PROPOSAL it campaigns: it puts
NAME/<lease ID in hex> = PROPOSAL on a session lease and waits until that key
is the oldest under NAME/, then prints it like get prints several keys (the
key, then the proposal; -w json: the response), leads until Ctrl-C or
SIGTERM, and resigns. If the session lease expires first it fails with
"elect: session expired".

With -l and no PROPOSAL it observes: it prints the leader's key and value,
and again each time the leader or its value changes, until Ctrl-C or SIGTERM.`,
	}
	cf := addClientFlags(cmd)
	cmd.Flags().BoolVarP(&listen, "listen", "l", false, "observe the election instead of campaigning")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) != 1 && len(args) != 2 {
			return badArgs("elect takes one election name argument and an optional proposal argument")
		}
		if len(args) == 1 && !listen {
			return badArgs("no proposal argument but -l not set")
		}
		if len(args) == 2 && listen {
			return badArgs("proposal given but -l is set")
		}
		if err := cf.checkWriteOut("elect", "simple", "json"); err != nil {
			return err
		}
		cli, err := cf.client()
		if err != nil {
			return err
		}
		defer cli.Close()
		ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		action := fmt.Sprintf("elect %q", args[0])
		s, err := newSession(ctx, cf, cli, electSessionTTL, action)
		if err != nil {
			return err
		}
		defer closeSession(cf, cli, s)
		e := concurrency.NewElection(s, args[0])
		if listen {
			return observe(ctx, cmd, cf, e)
		}
		return campaign(ctx, cmd, cf, s, e, action, args[1])
	}
	return cmd
}

// observe prints each leader of e until ctx ends.
func observe(ctx context.Context, cmd *cobra.Command, cf *clientFlags, e *concurrency.Election) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // on a print error: ends Observe's goroutine
	for resp := range e.Observe(ctx) {
		if err := printGet(cmd.OutOrStdout(), cf, resp); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	return errors.New("elect: observer lost")
}

// campaign waits to lead e with proposal, prints the leader key and leads
// until ctx ends, then resigns.
func campaign(ctx context.Context, cmd *cobra.Command, cf *clientFlags, s *concurrency.Session, e *concurrency.Election, action, proposal string) error {
	if err := e.Campaign(ctx, proposal); err != nil {
		// Campaign resigns when ctx ends.
		return cf.requestError(action, err)
	}
	gctx, cancel := cf.commandContext(ctx)
	resp, err := s.Client().Get(gctx, e.Key())
	cancel()
	if err != nil {
		resign(cf, e)
		return cf.requestError(action, err)
	}
	if err := printGet(cmd.OutOrStdout(), cf, resp); err != nil {
		resign(cf, e)
		return err
	}
	select {
	case <-ctx.Done():
		return resign(cf, e)
	case <-s.Done():
		return errors.New("elect: session expired")
	}
}

// resign gives up e's leadership, bounded by --command-timeout.
func resign(cf *clientFlags, e *concurrency.Election) error {
	key := e.Key()
	ctx, cancel := cf.commandContext(context.Background())
	defer cancel()
	if err := e.Resign(ctx); err != nil {
		return cf.requestError(fmt.Sprintf("resign %q", key), err)
	}
	return nil
}
