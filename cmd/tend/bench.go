package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"github.com/tendkv/tend/bench"
)

func newBenchCmd() *cobra.Command {
	var (
		c           bench.Config
		consistency = "l" // only range has the flag
		timeout     time.Duration
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure throughput and latency of a cluster (tend or etcd), like etcd's benchmark tool",
		Long: `Bench sends --total requests from --clients concurrent clients sharing
--conns gRPC connections and prints requests per second and latency
percentiles (p50, p90, p99, max), as a table or with -w json.

  tend bench put   --clients 16 --conns 4 --total 10000
  tend bench range --clients 16 --conns 4 --total 10000 --consistency s
  tend bench watch --watchers 8 --total 1000
  tend bench agent --total 1000
  tend bench agent --templates 100 --keys 10000
  tend bench fleet --agents 1000 --rollouts 10

Run bench put before bench range with the same --key-size and
--key-space-size so the keys exist. Each run stops after --total requests or
--timeout, whichever comes first.`,
	}
	cf := addClientFlags(cmd)
	fs := cmd.PersistentFlags()
	fs.IntVar(&c.Clients, "clients", 1, "concurrent clients")
	fs.IntVar(&c.Conns, "conns", 1, "gRPC connections the clients share")
	fs.IntVar(&c.Total, "total", 10000, "requests to send (puts for watch)")
	fs.IntVar(&c.KeySize, "key-size", 8, "key size in bytes")
	fs.IntVar(&c.ValSize, "val-size", 256, "value size in bytes")
	fs.IntVar(&c.KeySpace, "key-space-size", 1, "number of distinct keys")
	fs.BoolVar(&c.Sequential, "sequential-keys", false, "use keys in order instead of at random")
	fs.DurationVar(&timeout, "timeout", 10*time.Minute, "stop the run after this long")

	runWith := func(name string, f func(context.Context, bench.Config) (bench.Report, error)) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, args []string) error {
			if err := cf.checkWriteOut("bench", "simple", "json"); err != nil {
				return err
			}
			switch consistency {
			case "l":
				c.Serializable = false
			case "s":
				c.Serializable = true
			default:
				return fmt.Errorf("--consistency %q: use l (linearizable) or s (serializable)", consistency)
			}
			c.Endpoints, c.DialTimeout = cf.endpoints, cf.dialTimeout
			cc, err := cf.config()
			if err != nil {
				return err
			}
			c.Username, c.Password, c.TLS = cc.Username, cc.Password, cc.TLS
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			rep, err := f(ctx, c)
			out := cmd.OutOrStdout()
			if rep.Op != "" {
				if cf.writeOut == "json" {
					if perr := printJSON(out, rep); perr != nil {
						return perr
					}
				} else {
					rep.Print(out)
				}
			}
			if err != nil {
				return fmt.Errorf("bench %s: %w", name, err)
			}
			return nil
		}
	}
	put := &cobra.Command{Use: "put", Short: "Put keys", Args: cobra.NoArgs, RunE: runWith("put", bench.Put)}
	rng := &cobra.Command{Use: "range", Short: "Read single keys", Args: cobra.NoArgs, RunE: runWith("range", bench.Range)}
	rng.Flags().StringVar(&consistency, "consistency", "l", "l (linearizable) or s (serializable)")
	watch := &cobra.Command{Use: "watch", Short: "Deliver puts to watchers on a prefix and time each event", Args: cobra.NoArgs, RunE: runWith("watch", bench.Watch)}
	watch.Flags().IntVar(&c.Watchers, "watchers", 10, "watchers on the prefix")
	agentCmd := newBenchAgentCmd(cf, &timeout, runWith("agent", bench.Agent))
	cmd.AddCommand(put, rng, watch, agentCmd, newBenchFailoverCmd(cf, &timeout), newBenchFleetCmd(cf, &timeout, &c))
	return cmd
}
