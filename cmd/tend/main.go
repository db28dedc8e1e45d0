package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(1)
	}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "tend",
		Short:         "Keep config files in step with a replicated key-value store",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	// Each command lives in its own file; list its constructor here.
	for _, newCmd := range []func() *cobra.Command{
		newPutCmd, newSetCmd, newGetCmd, newDelCmd, newWatchCmd, newTxnCmd,
		newLeaseCmd, newMemberCmd, newEndpointCmd, newCompactCmd, newSnapshotCmd,
		newBenchCmd, newServerCmd, newDevCmd, newAgentCmd, newRenderCmd,
	} {
		root.AddCommand(newCmd())
	}
	return root
}
