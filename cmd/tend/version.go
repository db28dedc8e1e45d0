package main

import (
	"fmt"
	"runtime/debug"

	"github.com/spf13/cobra"
	"go.etcd.io/etcd/api/v3/version"
)

// newVersionCmd is `tend version`: this binary's version and the etcd API
// version its server speaks, as etcdctl version prints its own.
func newVersionCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print tend's version and the etcd API version it speaks",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := "(unknown)"
			if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
				v = bi.Main.Version
			}
			fmt.Fprintf(cmd.OutOrStdout(), "tend version: %s\nAPI version: %s\n", v, version.APIVersion)
			return nil
		},
	}
	// Accepted (and unused) so that `tend --endpoints X version` works as
	// etcdctl's does: it asks no server.
	addClientFlags(cmd)
	return cmd
}
