package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/tendkv/tend/playground"
)

// newDashboardCmd is `tend dashboard`: the playground's page, read-only, on
// a running cluster.
func newDashboardCmd() *cobra.Command {
	var (
		port int
		o    playground.DashboardOptions
	)
	cmd := &cobra.Command{
		Use:   "dashboard",
		Short: "Draw a running tend or etcd cluster live in a web page (read-only)",
		Long: `Dashboard serves, on 127.0.0.1:--port, the playground's page for a running
tend or etcd cluster: its members with their roles, terms, raft indexes, db
sizes and versions, the leader and a timeline of leader changes, the keys
under --prefix and a live feed of their changes, and the fleet: what the
agents with a status block publish under --fleet-prefix (as tend fleet status
lists it), one row per host and template with the revision on disk, the last
outcome, when applied and the error, the failed ones marked. It talks to the
cluster through the etcd v3 API only (member list, each member's status,
ranges and watches) and changes nothing: the page has no buttons that act.`,
		Args: cobra.NoArgs,
		RunE: nil, // set below, once the client flags exist
	}
	cf := addClientFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cli, err := cf.client()
		if err != nil {
			return err
		}
		defer cli.Close()
		ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return runDashboard(ctx, cmd.OutOrStdout(), port, playground.NewDashboard(cli, o))
	}
	f := cmd.Flags()
	f.IntVar(&port, "port", 8380, "port of the web page on 127.0.0.1 (0: a free one)")
	f.StringVar(&o.Prefix, "prefix", "/", "show and watch the keys under this prefix ('' for every key)")
	f.StringVar(&o.FleetPrefix, "fleet-prefix", defaultFleetPrefix, "show the status the agents publish under this prefix ('' for no fleet panel)")
	f.DurationVar(&o.Interval, "interval", playground.DefaultDashboardInterval, "how often to ask every member for its status")
	return cmd
}

func runDashboard(ctx context.Context, out io.Writer, port int, d *playground.Dashboard) error {
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return fmt.Errorf("listen on --port %d: %w (pick another, or 0 for a free one)", port, err)
	}
	defer l.Close()
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); d.Run(rctx) }()
	defer func() { cancel(); <-done }()
	fmt.Fprintf(out, "tend dashboard: open http://%s/ in a browser (read-only). Ctrl-C stops it.\n", l.Addr())
	return serveUntil(ctx, l, playground.Handler(d.Hub(), nil))
}
