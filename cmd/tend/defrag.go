package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// newDefragCmd is `tend defrag`: etcdctl's defrag, one endpoint after
// another.
func newDefragCmd() *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "defrag",
		Short: "Give the space of deleted and compacted keys back to the file system, member by member",
		Long: `Defrag rewrites each endpoint's database without its free pages, one
endpoint after another (a member serves no requests while it defragments).
Compact first (tend compact REV) so there is history to free. With --cluster
it defragments every member. It exits 1 if any endpoint fails.`,
		Args: cobra.NoArgs,
	}
	cf := addClientFlags(cmd)
	cmd.Flags().BoolVar(&all, "cluster", false, "defragment every member (their client URLs) instead of --endpoints")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := cf.checkWriteOut("defrag", "simple", "json"); err != nil {
			return err
		}
		eps, err := clusterEndpoints(cmd.Context(), cf, all)
		if err != nil {
			return err
		}
		failed := 0
		for _, ep := range eps {
			start := time.Now()
			err := oneEndpoint(cf, ep).do(cmd, "defragment "+ep, func(ctx context.Context, cli *clientv3.Client) error {
				_, err := cli.Defragment(ctx, ep)
				return err
			})
			took := time.Since(start)
			if err != nil {
				failed++
				fmt.Fprintf(cmd.ErrOrStderr(), "Failed to defragment etcd member[%s]. took %s. (%v)\n", ep, took, err)
				continue
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Finished defragmenting etcd member[%s]. took %s\n", ep, took)
		}
		if failed > 0 {
			return errors.New("defragmentation failed (see the endpoints above)")
		}
		return nil
	}
	return cmd
}
