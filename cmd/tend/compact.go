package main

import (
	"context"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func newCompactCmd() *cobra.Command {
	var physical bool
	cmd := &cobra.Command{
		Use:     "compact REV",
		Aliases: []string{"compaction"},
		Short:   "Discard the history before revision REV",
		Args:    cobra.ExactArgs(1),
	}
	cf := addClientFlags(cmd)
	cmd.Flags().BoolVar(&physical, "physical", false, "wait until the compaction is written to disk")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := cf.checkWriteOut("compact", "simple", "json"); err != nil {
			return err
		}
		rev, err := strconv.ParseInt(args[0], 10, 64)
		if err != nil {
			return fmt.Errorf("REV %q is not a revision number (see the revision in: tend get -w json KEY)", args[0])
		}
		var opts []clientv3.CompactOption
		if physical {
			opts = append(opts, clientv3.WithCompactPhysical())
		}
		resp, err := call(cmd, cf, fmt.Sprintf("compact to revision %d", rev), func(ctx context.Context, cli *clientv3.Client) (*clientv3.CompactResponse, error) {
			return cli.Compact(ctx, rev, opts...)
		})
		if err != nil {
			return err
		}
		if cf.writeOut == "json" {
			return printJSON(cmd.OutOrStdout(), resp)
		}
		fmt.Fprintf(cmd.OutOrStdout(), "compacted revision %d\n", rev)
		return nil
	}
	return cmd
}
