package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/tendkv/tend/bench"
)

// newBenchAgentCmd is `tend bench agent`: put → file latency (latency, the
// run the bench command's flags describe), or with --templates the footprint
// of an agent process rendering that many templates.
func newBenchAgentCmd(cf *clientFlags, timeout *time.Duration, latency func(*cobra.Command, []string) error) *cobra.Command {
	fc := bench.FootprintConfig{Idle: 10 * time.Second}
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Time put acknowledged → file replaced by an in-process agent, or with --templates measure an agent's memory and idle CPU",
		Long: `Without --templates: run an agent in this process with one template (wait 0),
put --total values one after another and time each put's acknowledgement →
the file holding it (rendered, fsynced, renamed).

With --templates N: put --keys keys under a fresh prefix (--val-size bytes
each, spread evenly over N folders), start "tend agent" as its own process
with N templates each listing one folder, wait for every file, then report
the agent's resident set (VmRSS after the run, VmHWM its peak), its CPU time
over an --idle window with no change, and --changes put → file latencies.

  tend bench agent --total 2000
  tend bench agent --templates 100 --keys 10000 --idle 10s`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if fc.Templates == 0 {
				return latency(cmd, args)
			}
			if err := cf.checkWriteOut("bench", "simple", "json"); err != nil {
				return err
			}
			self, err := os.Executable()
			if err != nil {
				return fmt.Errorf("find the tend binary to run the agent: %w", err)
			}
			fc.Agent = []string{self, "agent"}
			fc.Endpoints, fc.DialTimeout = cf.endpoints, cf.dialTimeout
			fc.ValSize, _ = cmd.Flags().GetInt("val-size")
			ctx, cancel := context.WithTimeout(cmd.Context(), *timeout)
			defer cancel()
			rep, err := bench.Footprint(ctx, fc)
			if err != nil {
				return fmt.Errorf("bench agent: %w", err)
			}
			if cf.writeOut == "json" {
				return printJSON(cmd.OutOrStdout(), rep)
			}
			rep.Print(cmd.OutOrStdout())
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&fc.Templates, "templates", 0, "measure the footprint of an agent process with this many templates (0: time put → file instead)")
	f.IntVar(&fc.Keys, "keys", 10000, "with --templates: keys the templates render, spread evenly over them")
	f.DurationVar(&fc.Idle, "idle", 10*time.Second, "with --templates: how long to measure idle CPU")
	f.IntVar(&fc.Changes, "changes", 100, "with --templates: puts to time after the idle window, one template after another")
	return cmd
}
