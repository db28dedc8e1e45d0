package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/tendkv/tend/bench"
)

// newBenchFleetCmd is `tend bench fleet`: many simulated agents with
// status blocks, and rollouts every one of them must apply.
// shared holds the bench command's flags: fleet takes --conns and
// --val-size from it.
func newBenchFleetCmd(cf *clientFlags, timeout *time.Duration, shared *bench.Config) *cobra.Command {
	var (
		fc   bench.FleetConfig
		pids string
	)
	cmd := &cobra.Command{
		Use:   "fleet --agents 1000 --rollouts 10",
		Short: "Time a change reaching many agents and their status coming back, as tend fleet status --wait sees it",
		Long: `Fleet starts --agents simulated agents, each doing what a tend agent with a
status block does against the store: a lease of --ttl kept alive, a watch
on a config key, and its status published under the lease at every change.
Then it puts the config key --rollouts times and prints, over all agents
and rollouts, the time from each put to its event at an agent (deliver),
to that agent's status put acknowledged (status), and, over the rollouts,
to the last agent's status seen by a watcher of the status folder
(rollout). Each agent has its own gRPC connection, as hosts do, unless
--conns is given. Works on tend and etcd alike; everything is written under
a fresh /bench-fleet/ prefix, deleted at the end.

--kill-leader-before N kills the leader's process (--pids lists each
endpoint's process ID) before rollout N: the agents on it must move to the
other members, watch again and still publish every rollout, as tend agents
do; the report counts the watches made again and the puts tried again.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cf.checkWriteOut("bench fleet", "simple", "json"); err != nil {
				return err
			}
			cc, err := cf.config()
			if err != nil {
				return err
			}
			fc.Endpoints, fc.DialTimeout = cf.endpoints, cf.dialTimeout
			fc.Username, fc.Password, fc.TLS = cc.Username, cc.Password, cc.TLS
			fc.ValSize = shared.ValSize
			if cmd.Flags().Changed("conns") {
				fc.Conns = shared.Conns
			}
			if fc.KillLeaderBefore != 0 {
				if fc.Kill, err = killByPID(pids, len(cf.endpoints)); err != nil {
					return err
				}
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), *timeout)
			defer cancel()
			rep, err := bench.Fleet(ctx, fc)
			if rep.Agents > 0 {
				if cf.writeOut == "json" {
					if perr := printJSON(cmd.OutOrStdout(), rep); perr != nil {
						return perr
					}
				} else {
					rep.Print(cmd.OutOrStdout())
				}
			}
			if err != nil {
				return fmt.Errorf("bench fleet: %w", err)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&fc.Agents, "agents", 100, "simulated agents")
	f.IntVar(&fc.Rollouts, "rollouts", 5, "changes every agent must apply, one after another")
	f.DurationVar(&fc.TTL, "ttl", 30*time.Second, "each agent's status lease, kept alive all run long")
	f.DurationVar(&fc.RolloutTimeout, "rollout-timeout", time.Minute, "how long one rollout may take")
	f.IntVar(&fc.KillLeaderBefore, "kill-leader-before", 0, "kill -9 the leader's process before this rollout (needs every member in --endpoints and --pids)")
	f.StringVar(&pids, "pids", "", "with --kill-leader-before: process ID of each endpoint's member, in --endpoints order")
	return cmd
}
