package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// authRun connects, runs f with a --command-timeout context, and prints its
// result as JSON or with simple, as etcdctl's user, role and auth commands
// do.
func authRun(cmd *cobra.Command, cf *clientFlags, f func(ctx context.Context, cli *clientv3.Client) (any, error), simple func(io.Writer, any)) error {
	if err := cf.checkWriteOut(cmd.CommandPath(), "simple", "json"); err != nil {
		return err
	}
	cli, err := cf.client()
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := cf.commandContext(cmd.Context())
	defer cancel()
	resp, err := f(ctx, cli)
	if err != nil {
		return err
	}
	if cf.writeOut == "json" {
		return printJSON(cmd.OutOrStdout(), resp)
	}
	simple(cmd.OutOrStdout(), resp)
	return nil
}

func newAuthCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "auth",
		Short: "Enable, disable or show authentication (etcdctl's auth commands)",
	}
	cf := addClientFlags(cmd)
	cmd.AddCommand(&cobra.Command{
		Use:   "enable",
		Short: "Enable authentication (the root user must exist; the root role is created and granted to it if missing)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return authRun(cmd, cf, func(ctx context.Context, cli *clientv3.Client) (any, error) {
				// As etcdctl: a root user without the root role gets it.
				for {
					resp, err := cli.AuthEnable(ctx)
					if err == nil {
						return resp, nil
					}
					if !errors.Is(err, rpctypes.ErrRootRoleNotExist) {
						if errors.Is(err, rpctypes.ErrRootUserNotExist) {
							return nil, cf.requestError("enable authentication", fmt.Errorf("%w (add it first: tend user add root)", err))
						}
						return nil, cf.requestError("enable authentication", err)
					}
					if _, err := cli.RoleAdd(ctx, "root"); err != nil {
						return nil, cf.requestError("add the root role", err)
					}
					if _, err := cli.UserGrantRole(ctx, "root", "root"); err != nil {
						return nil, cf.requestError("grant the root role to root", err)
					}
				}
			}, func(w io.Writer, _ any) { fmt.Fprintln(w, "Authentication Enabled") })
		},
	}, &cobra.Command{
		Use:   "disable",
		Short: "Disable authentication",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return authRun(cmd, cf, func(ctx context.Context, cli *clientv3.Client) (any, error) {
				resp, err := cli.AuthDisable(ctx)
				if err != nil {
					return nil, cf.requestError("disable authentication", err)
				}
				return resp, nil
			}, func(w io.Writer, _ any) { fmt.Fprintln(w, "Authentication Disabled") })
		},
	}, &cobra.Command{
		Use:   "status",
		Short: "Show whether authentication is on, and the auth revision",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return authRun(cmd, cf, func(ctx context.Context, cli *clientv3.Client) (any, error) {
				resp, err := cli.AuthStatus(ctx)
				if err != nil {
					return nil, cf.requestError("get authentication status", err)
				}
				return resp, nil
			}, func(w io.Writer, v any) {
				r := v.(*clientv3.AuthStatusResponse)
				fmt.Fprintln(w, "Authentication Status:", r.Enabled)
				fmt.Fprintln(w, "AuthRevision:", r.AuthRevision)
			})
		},
	})
	return cmd
}
