package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/tendkv/tend/bench"
)

// newBenchFailoverCmd is `tend bench failover`: kill the leader's process
// and time the first acknowledged write after it.
func newBenchFailoverCmd(cf *clientFlags, timeout *time.Duration) *cobra.Command {
	var pids string
	cmd := &cobra.Command{
		Use:   "failover --endpoints A,B,C --pids PA,PB,PC",
		Short: "Kill -9 the leader's process and time the first acknowledged write after it",
		Long: `Failover finds the leader among --endpoints, sends SIGKILL to its process
(--pids lists each endpoint's process ID, in the same order), then writes
through the other members until one write is acknowledged, and prints the
time from the kill to that acknowledgement. Works on tend and etcd alike.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cf.checkWriteOut("bench failover", "simple", "json"); err != nil {
				return err
			}
			kill, err := killByPID(pids, len(cf.endpoints))
			if err != nil {
				return err
			}
			cc, err := cf.config()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), *timeout)
			defer cancel()
			rep, err := bench.Failover(ctx, bench.FailoverConfig{
				Endpoints: cf.endpoints, DialTimeout: cf.dialTimeout,
				Username: cc.Username, Password: cc.Password, TLS: cc.TLS,
				Kill: kill,
			})
			if err != nil {
				return fmt.Errorf("bench failover: %w", err)
			}
			if cf.writeOut == "json" {
				return printJSON(cmd.OutOrStdout(), rep)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "killed the leader at %s; first write acknowledged %v later (after %d tries) through %s\n",
				rep.Leader, rep.FirstAck.Round(time.Millisecond), rep.Attempts, strings.Join(rep.Survivors, ","))
			return nil
		},
	}
	cmd.Flags().StringVar(&pids, "pids", "", "process ID of each endpoint's member, in --endpoints order")
	return cmd
}

// killByPID parses --pids, one process ID per endpoint, and returns what
// kills the member behind endpoint i with SIGKILL.
func killByPID(pids string, endpoints int) (func(i int) error, error) {
	var ps []int
	for _, s := range strings.Split(pids, ",") {
		p, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || p <= 0 {
			return nil, fmt.Errorf("--pids %q: want process IDs, comma-separated, one per endpoint", pids)
		}
		ps = append(ps, p)
	}
	if len(ps) != endpoints {
		return nil, fmt.Errorf("--pids has %d IDs for %d --endpoints: give one per endpoint, in the same order", len(ps), endpoints)
	}
	return func(i int) error { return syscall.Kill(ps[i], syscall.SIGKILL) }, nil
}
