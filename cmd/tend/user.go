package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func newUserCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "user",
		Short: "Add, inspect and change users (etcdctl's user commands)",
	}
	cf := addClientFlags(cmd)
	cmd.AddCommand(userAddCmd(cf), userDeleteCmd(cf), userGetCmd(cf), userListCmd(cf),
		userPasswdCmd(cf), userGrantRoleCmd(cf), userRevokeRoleCmd(cf))
	return cmd
}

func userAddCmd(cf *clientFlags) *cobra.Command {
	var (
		interactive bool
		password    string
		noPassword  bool
	)
	cmd := &cobra.Command{
		Use:   "add NAME[:PASSWORD]",
		Short: "Add a user (the password is asked for unless given; --no-password for certificate-only users)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, pw := args[0], password
			opts := &clientv3.UserAddOptions{NoPassword: noPassword}
			if !noPassword && password == "" {
				if n, p, ok := strings.Cut(args[0], ":"); ok {
					if n == "" {
						return fmt.Errorf("empty user name is not allowed (give NAME:PASSWORD)")
					}
					name, pw = n, p
				} else {
					var err error
					if pw, err = readPassword(cmd.InOrStdin(), cmd.ErrOrStderr(), name, interactive); err != nil {
						return err
					}
				}
			} else if noPassword {
				pw = ""
			}
			return authRun(cmd, cf, func(ctx context.Context, cli *clientv3.Client) (any, error) {
				resp, err := cli.UserAddWithOptions(ctx, name, pw, opts)
				if err != nil {
					return nil, cf.requestError("add user "+name, err)
				}
				return resp, nil
			}, func(w io.Writer, _ any) { fmt.Fprintf(w, "User %s created\n", name) })
		},
	}
	cmd.Flags().BoolVar(&interactive, "interactive", true, "ask for the password on the terminal (false: read it from stdin)")
	cmd.Flags().StringVar(&password, "new-user-password", "", "the password, on the command line")
	cmd.Flags().BoolVar(&noPassword, "no-password", false, "a user without a password (authenticated by its client certificate's common name)")
	return cmd
}

func userDeleteCmd(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a user",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return authRun(cmd, cf, func(ctx context.Context, cli *clientv3.Client) (any, error) {
				resp, err := cli.UserDelete(ctx, args[0])
				if err != nil {
					return nil, cf.requestError("delete user "+args[0], err)
				}
				return resp, nil
			}, func(w io.Writer, _ any) { fmt.Fprintf(w, "User %s deleted\n", args[0]) })
		},
	}
}

func userGetCmd(cf *clientFlags) *cobra.Command {
	var detail bool
	cmd := &cobra.Command{
		Use:   "get NAME",
		Short: "Show a user's roles (--detail: and their permissions)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			var roles []*clientv3.AuthRoleGetResponse
			return authRun(cmd, cf, func(ctx context.Context, cli *clientv3.Client) (any, error) {
				resp, err := cli.UserGet(ctx, name)
				if err != nil {
					return nil, cf.requestError("get user "+name, err)
				}
				if detail && cf.writeOut != "json" {
					for _, r := range resp.Roles {
						rr, err := cli.RoleGet(ctx, r)
						if err != nil {
							return nil, cf.requestError("get role "+r, err)
						}
						roles = append(roles, rr)
					}
				}
				return resp, nil
			}, func(w io.Writer, v any) {
				r := v.(*clientv3.AuthUserGetResponse)
				fmt.Fprintf(w, "User: %s\n", name)
				if detail {
					for i, rr := range roles {
						fmt.Fprintln(w)
						printRole(w, r.Roles[i], rr)
					}
					return
				}
				fmt.Fprint(w, "Roles:")
				for _, role := range r.Roles {
					fmt.Fprintf(w, " %s", role)
				}
				fmt.Fprintln(w)
			})
		},
	}
	cmd.Flags().BoolVar(&detail, "detail", false, "show the permissions of the user's roles")
	return cmd
}

func userListCmd(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the users",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return authRun(cmd, cf, func(ctx context.Context, cli *clientv3.Client) (any, error) {
				resp, err := cli.UserList(ctx)
				if err != nil {
					return nil, cf.requestError("list users", err)
				}
				return resp, nil
			}, func(w io.Writer, v any) {
				for _, u := range v.(*clientv3.AuthUserListResponse).Users {
					fmt.Fprintln(w, u)
				}
			})
		},
	}
}

func userPasswdCmd(cf *clientFlags) *cobra.Command {
	var interactive bool
	cmd := &cobra.Command{
		Use:   "passwd NAME",
		Short: "Change a user's password (its sessions end)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pw, err := readPassword(cmd.InOrStdin(), cmd.ErrOrStderr(), args[0], interactive)
			if err != nil {
				return err
			}
			return authRun(cmd, cf, func(ctx context.Context, cli *clientv3.Client) (any, error) {
				resp, err := cli.UserChangePassword(ctx, args[0], pw)
				if err != nil {
					return nil, cf.requestError("change the password of "+args[0], err)
				}
				return resp, nil
			}, func(w io.Writer, _ any) { fmt.Fprintln(w, "Password updated") })
		},
	}
	cmd.Flags().BoolVar(&interactive, "interactive", true, "ask for the password on the terminal (false: read it from stdin)")
	return cmd
}

func userGrantRoleCmd(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "grant-role NAME ROLE",
		Short: "Grant a role to a user",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return authRun(cmd, cf, func(ctx context.Context, cli *clientv3.Client) (any, error) {
				resp, err := cli.UserGrantRole(ctx, args[0], args[1])
				if err != nil {
					return nil, cf.requestError(fmt.Sprintf("grant role %s to %s", args[1], args[0]), err)
				}
				return resp, nil
			}, func(w io.Writer, _ any) { fmt.Fprintf(w, "Role %s is granted to user %s\n", args[1], args[0]) })
		},
	}
}

func userRevokeRoleCmd(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke-role NAME ROLE",
		Short: "Revoke a role from a user",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return authRun(cmd, cf, func(ctx context.Context, cli *clientv3.Client) (any, error) {
				resp, err := cli.UserRevokeRole(ctx, args[0], args[1])
				if err != nil {
					return nil, cf.requestError(fmt.Sprintf("revoke role %s from %s", args[1], args[0]), err)
				}
				return resp, nil
			}, func(w io.Writer, _ any) { fmt.Fprintf(w, "Role %s is revoked from user %s\n", args[1], args[0]) })
		},
	}
}
