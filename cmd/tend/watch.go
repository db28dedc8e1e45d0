package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func newWatchCmd() *cobra.Command {
	var (
		prefix bool
		rev    int64
		prevKV bool
	)
	cmd := &cobra.Command{
		Use:   "watch KEY [END]",
		Short: "Print changes to a key, a range or a prefix until interrupted",
		Long: `Watch prints each event like etcdctl: PUT or DELETE on one line, then
the previous pair (with --prev-kv), then the key and the value on one line each.
With --rev it starts at that past revision and replays the history since then.
It runs until Ctrl-C or until the server ends the watch (for example because
--rev is compacted), which is an error.`,
		Args: cobra.RangeArgs(1, 2),
	}
	cf := addClientFlags(cmd)
	cmd.Flags().BoolVar(&prefix, "prefix", false, "watch all keys starting with KEY")
	cmd.Flags().Int64Var(&rev, "rev", 0, "start at this revision (0: from now)")
	cmd.Flags().BoolVar(&prevKV, "prev-kv", false, "print the pair before each event")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := cf.checkWriteOut("watch", "simple", "json"); err != nil {
			return err
		}
		key := args[0]
		var opts []clientv3.OpOption
		if len(args) > 1 {
			if prefix {
				return fmt.Errorf("END cannot be combined with --prefix (drop one)")
			}
			opts = append(opts, clientv3.WithRange(args[1]))
		}
		if prefix {
			if key == "" {
				key = "\x00"
				opts = append(opts, clientv3.WithFromKey())
			} else {
				opts = append(opts, clientv3.WithPrefix())
			}
		}
		if rev > 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		if prevKV {
			opts = append(opts, clientv3.WithPrevKV())
		}
		cli, err := cf.client()
		if err != nil {
			return err
		}
		defer cli.Close()
		// The watch ends with the context: Ctrl-C or SIGTERM cancels it.
		ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		out := cmd.OutOrStdout()
		p := kvPrinter{w: out}
		for resp := range cli.Watch(clientv3.WithRequireLeader(ctx), key, opts...) {
			if err := resp.Err(); err != nil {
				return cf.requestError(fmt.Sprintf("watch %q", args[0]), err)
			}
			if cf.writeOut == "json" {
				if err := printJSON(out, resp); err != nil {
					return err
				}
				continue
			}
			for _, ev := range resp.Events {
				fmt.Fprintln(out, ev.Type)
				if ev.PrevKv != nil {
					p.print(ev.PrevKv.Key, ev.PrevKv.Value)
				}
				p.print(ev.Kv.Key, ev.Kv.Value)
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("watch %q: the server closed the watch (is the member still running?)", args[0])
	}
	return cmd
}
