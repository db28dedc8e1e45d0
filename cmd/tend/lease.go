package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func newLeaseCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "lease",
		Short: "Grant, revoke, keep alive and inspect leases (IDs in hex, as etcdctl prints them)",
	}
	cf := addClientFlags(cmd)
	cmd.AddCommand(leaseGrantCmd(cf), leaseRevokeCmd(cf), leaseKeepAliveCmd(cf), leaseTimeToLiveCmd(cf), leaseListCmd(cf))
	return cmd
}

func parseLeaseID(s string) (clientv3.LeaseID, error) {
	id, err := strconv.ParseInt(s, 16, 64)
	if err != nil {
		return 0, fmt.Errorf("lease ID %q is not hex (use the ID lease grant or lease list printed, e.g. 694d77aa9e38260f)", s)
	}
	return clientv3.LeaseID(id), nil
}

// leaseRun connects, runs f with a --command-timeout context and prints its
// result as JSON or with simple.
func leaseRun(cmd *cobra.Command, cf *clientFlags, f func(cli *clientv3.Client, cmd *cobra.Command) (any, error), simple func(io.Writer, any)) error {
	if err := cf.checkWriteOut(cmd.Name(), "simple", "json"); err != nil {
		return err
	}
	cli, err := cf.client()
	if err != nil {
		return err
	}
	defer cli.Close()
	resp, err := f(cli, cmd)
	if err != nil {
		return err
	}
	if cf.writeOut == "json" {
		return printJSON(cmd.OutOrStdout(), resp)
	}
	simple(cmd.OutOrStdout(), resp)
	return nil
}

func leaseGrantCmd(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "grant TTL",
		Short: "Grant a lease of TTL seconds",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ttl, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil {
				return fmt.Errorf("TTL %q is not a number of seconds", args[0])
			}
			return leaseRun(cmd, cf, func(cli *clientv3.Client, cmd *cobra.Command) (any, error) {
				ctx, cancel := cf.commandContext(cmd.Context())
				defer cancel()
				resp, err := cli.Grant(ctx, ttl)
				if err != nil {
					return nil, cf.requestError("grant lease", err)
				}
				return resp, nil
			}, func(w io.Writer, v any) {
				r := v.(*clientv3.LeaseGrantResponse)
				fmt.Fprintf(w, "lease %016x granted with TTL(%ds)\n", r.ID, r.TTL)
			})
		},
	}
}

func leaseRevokeCmd(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a lease, deleting its keys",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseLeaseID(args[0])
			if err != nil {
				return err
			}
			return leaseRun(cmd, cf, func(cli *clientv3.Client, cmd *cobra.Command) (any, error) {
				ctx, cancel := cf.commandContext(cmd.Context())
				defer cancel()
				resp, err := cli.Revoke(ctx, id)
				if err != nil {
					return nil, cf.requestError(fmt.Sprintf("revoke lease %016x", id), err)
				}
				return resp, nil
			}, func(w io.Writer, _ any) {
				fmt.Fprintf(w, "lease %016x revoked\n", id)
			})
		},
	}
}

func leaseKeepAliveCmd(cf *clientFlags) *cobra.Command {
	var once bool
	cmd := &cobra.Command{
		Use:   "keep-alive ID",
		Short: "Keep a lease alive until interrupted (or once with --once)",
		Args:  cobra.ExactArgs(1),
	}
	cmd.Flags().BoolVar(&once, "once", false, "renew once and exit")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		id, err := parseLeaseID(args[0])
		if err != nil {
			return err
		}
		printKeepAlive := func(w io.Writer, v any) {
			r := v.(*clientv3.LeaseKeepAliveResponse)
			fmt.Fprintf(w, "lease %016x keepalived with TTL(%d)\n", r.ID, r.TTL)
		}
		if once {
			return leaseRun(cmd, cf, func(cli *clientv3.Client, cmd *cobra.Command) (any, error) {
				ctx, cancel := cf.commandContext(cmd.Context())
				defer cancel()
				resp, err := cli.KeepAliveOnce(ctx, id)
				if err != nil {
					return nil, cf.requestError(fmt.Sprintf("keep lease %016x alive", id), err)
				}
				return resp, nil
			}, printKeepAlive)
		}
		if err := cf.checkWriteOut("keep-alive", "simple", "json"); err != nil {
			return err
		}
		cli, err := cf.client()
		if err != nil {
			return err
		}
		defer cli.Close()
		// Renewals stop with the context: Ctrl-C or SIGTERM.
		ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		ch, err := cli.KeepAlive(ctx, id)
		if err != nil {
			return cf.requestError(fmt.Sprintf("keep lease %016x alive", id), err)
		}
		out := cmd.OutOrStdout()
		for resp := range ch {
			if cf.writeOut == "json" {
				if err := printJSON(out, resp); err != nil {
					return err
				}
				continue
			}
			printKeepAlive(out, resp)
		}
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("lease %016x expired or was revoked (grant a new one with: tend lease grant TTL)", id)
	}
	return cmd
}

func leaseTimeToLiveCmd(cf *clientFlags) *cobra.Command {
	var keys bool
	cmd := &cobra.Command{
		Use:     "timetolive ID",
		Aliases: []string{"ttl"},
		Short:   "Print a lease's granted and remaining TTL (and its keys with --keys)",
		Args:    cobra.ExactArgs(1),
	}
	cmd.Flags().BoolVar(&keys, "keys", false, "also list the keys attached to the lease")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		id, err := parseLeaseID(args[0])
		if err != nil {
			return err
		}
		return leaseRun(cmd, cf, func(cli *clientv3.Client, cmd *cobra.Command) (any, error) {
			ctx, cancel := cf.commandContext(cmd.Context())
			defer cancel()
			var opts []clientv3.LeaseOption
			if keys {
				opts = append(opts, clientv3.WithAttachedKeys())
			}
			resp, err := cli.TimeToLive(ctx, id, opts...)
			if err != nil {
				return nil, cf.requestError(fmt.Sprintf("read lease %016x", id), err)
			}
			return resp, nil
		}, func(w io.Writer, v any) {
			r := v.(*clientv3.LeaseTimeToLiveResponse)
			if r.GrantedTTL == 0 && r.TTL == -1 {
				fmt.Fprintf(w, "lease %016x already expired\n", r.ID)
				return
			}
			txt := fmt.Sprintf("lease %016x granted with TTL(%ds), remaining(%ds)", r.ID, r.GrantedTTL, r.TTL)
			if keys {
				ks := make([]string, len(r.Keys))
				for i, k := range r.Keys {
					ks[i] = string(k)
				}
				txt += fmt.Sprintf(", attached keys(%v)", ks)
			}
			fmt.Fprintln(w, txt)
		})
	}
	return cmd
}

func leaseListCmd(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the IDs of all leases",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return leaseRun(cmd, cf, func(cli *clientv3.Client, cmd *cobra.Command) (any, error) {
				ctx, cancel := cf.commandContext(cmd.Context())
				defer cancel()
				resp, err := cli.Leases(ctx)
				if err != nil {
					return nil, cf.requestError("list leases", err)
				}
				return resp, nil
			}, func(w io.Writer, v any) {
				r := v.(*clientv3.LeaseLeasesResponse)
				fmt.Fprintf(w, "found %d leases\n", len(r.Leases))
				for _, l := range r.Leases {
					fmt.Fprintf(w, "%016x\n", l.ID)
				}
			})
		},
	}
}
