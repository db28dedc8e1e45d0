package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		code := 1
		var ee *exitError
		if errors.As(err, &ee) {
			code = ee.code
		}
		os.Exit(code)
	}
}

// exitError is an error that ends tend with an exit status other than 1.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// exitBadArgs is etcdctl's exit status for wrong arguments (cobrautl.ExitBadArgs).
const exitBadArgs = 128

// badArgs is an argument error with etcdctl's exit status for one.
func badArgs(msg string) error {
	return &exitError{code: exitBadArgs, err: errors.New(msg)}
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
		newDefragCmd, newAlarmCmd, newMoveLeaderCmd, newVersionCmd, newLockCmd, newElectCmd,
		newUserCmd, newRoleCmd, newAuthCmd,
		newBenchCmd, newServerCmd, newClusterCmd, newDevCmd, newAgentCmd, newRenderCmd,
		newPlaygroundCmd, newDashboardCmd,
		newMakeMirrorCmd, newCheckCmd,
		newFleetCmd,
	} {
		root.AddCommand(newCmd())
	}
	return root
}
