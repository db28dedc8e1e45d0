package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"go.etcd.io/etcd/api/v3/authpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func newRoleCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "role",
		Short: "Add, inspect and change roles and their key permissions (etcdctl's role commands)",
	}
	cf := addClientFlags(cmd)
	cmd.AddCommand(roleAddCmd(cf), roleDeleteCmd(cf), roleGetCmd(cf), roleListCmd(cf),
		roleGrantCmd(cf), roleRevokeCmd(cf))
	return cmd
}

func roleAddCmd(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "add ROLE",
		Short: "Add a role",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return authRun(cmd, cf, func(ctx context.Context, cli *clientv3.Client) (any, error) {
				resp, err := cli.RoleAdd(ctx, args[0])
				if err != nil {
					return nil, cf.requestError("add role "+args[0], err)
				}
				return resp, nil
			}, func(w io.Writer, _ any) { fmt.Fprintf(w, "Role %s created\n", args[0]) })
		},
	}
}

func roleDeleteCmd(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "delete ROLE",
		Short: "Delete a role (users holding it lose it)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return authRun(cmd, cf, func(ctx context.Context, cli *clientv3.Client) (any, error) {
				resp, err := cli.RoleDelete(ctx, args[0])
				if err != nil {
					return nil, cf.requestError("delete role "+args[0], err)
				}
				return resp, nil
			}, func(w io.Writer, _ any) { fmt.Fprintf(w, "Role %s deleted\n", args[0]) })
		},
	}
}

func roleGetCmd(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "get ROLE",
		Short: "Show a role's key permissions",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return authRun(cmd, cf, func(ctx context.Context, cli *clientv3.Client) (any, error) {
				resp, err := cli.RoleGet(ctx, args[0])
				if err != nil {
					return nil, cf.requestError("get role "+args[0], err)
				}
				return resp, nil
			}, func(w io.Writer, v any) { printRole(w, args[0], v.(*clientv3.AuthRoleGetResponse)) })
		},
	}
}

// printRole prints a role's permissions as etcdctl does: read ranges, then
// write ranges; a range as [key, end) or [key, <open ended>, marked as a
// prefix when it is one.
func printRole(w io.Writer, role string, r *clientv3.AuthRoleGetResponse) {
	fmt.Fprintf(w, "Role %s\n", role)
	if role == "root" && r.Perm == nil {
		fmt.Fprint(w, "KV Read:\n\t[, <open ended>\nKV Write:\n\t[, <open ended>\n")
		return
	}
	print := func(p *authpb.Permission) {
		key, end := string(p.Key), string(p.RangeEnd)
		switch {
		case len(end) == 0:
			fmt.Fprintf(w, "\t%s\n", key)
			return
		case end == "\x00":
			fmt.Fprintf(w, "\t[%s, <open ended>", key)
		default:
			fmt.Fprintf(w, "\t[%s, %s)", key, end)
		}
		if key != "" && clientv3.GetPrefixRangeEnd(key) == end {
			fmt.Fprintf(w, " (prefix %s)", key)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "KV Read:")
	for _, p := range r.Perm {
		if p.PermType == authpb.Permission_READ || p.PermType == authpb.Permission_READWRITE {
			print(p)
		}
	}
	fmt.Fprintln(w, "KV Write:")
	for _, p := range r.Perm {
		if p.PermType == authpb.Permission_WRITE || p.PermType == authpb.Permission_READWRITE {
			print(p)
		}
	}
}

func roleListCmd(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the roles",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return authRun(cmd, cf, func(ctx context.Context, cli *clientv3.Client) (any, error) {
				resp, err := cli.RoleList(ctx)
				if err != nil {
					return nil, cf.requestError("list roles", err)
				}
				return resp, nil
			}, func(w io.Writer, v any) {
				for _, r := range v.(*clientv3.AuthRoleListResponse).Roles {
					fmt.Fprintln(w, r)
				}
			})
		},
	}
}

// permFlags are --prefix and --from-key of grant- and revoke-permission.
type permFlags struct{ prefix, fromKey bool }

func (pf *permFlags) add(cmd *cobra.Command, verb string) {
	cmd.Flags().BoolVar(&pf.prefix, "prefix", false, verb+" a permission on every key with the prefix KEY")
	cmd.Flags().BoolVar(&pf.fromKey, "from-key", false, verb+" a permission on every key from KEY on (byte order)")
}

// keyRange turns KEY [END] and the flags into a permission's key and range
// end, as etcdctl does ("" with --prefix or --from-key is every key).
func (pf *permFlags) keyRange(args []string) (string, string, error) {
	if pf.prefix && pf.fromKey {
		return "", "", errors.New("--from-key and --prefix go alone (give one)")
	}
	key := args[0]
	if key == "" {
		if pf.prefix || pf.fromKey {
			return "\x00", "\x00", nil
		}
		return "\x00", "", nil
	}
	if len(args) == 2 {
		if pf.prefix {
			return "", "", errors.New("an END key with --prefix: give KEY alone (the prefix)")
		}
		if pf.fromKey {
			return "", "", errors.New("an END key with --from-key: give KEY alone")
		}
		return key, args[1], nil
	}
	switch {
	case pf.prefix:
		return key, clientv3.GetPrefixRangeEnd(key), nil
	case pf.fromKey:
		return key, "\x00", nil
	}
	return key, "", nil
}

func roleGrantCmd(cf *clientFlags) *cobra.Command {
	var pf permFlags
	cmd := &cobra.Command{
		Use:   "grant-permission ROLE read|write|readwrite KEY [END]",
		Short: "Grant a role read, write or both on a key, a range [KEY, END), a prefix or every key from KEY on",
		Args:  cobra.RangeArgs(3, 4),
		RunE: func(cmd *cobra.Command, args []string) error {
			perm, err := clientv3.StrToPermissionType(args[1])
			if err != nil {
				return fmt.Errorf("%w (use read, write or readwrite)", err)
			}
			key, end, err := pf.keyRange(args[2:])
			if err != nil {
				return err
			}
			return authRun(cmd, cf, func(ctx context.Context, cli *clientv3.Client) (any, error) {
				resp, err := cli.RoleGrantPermission(ctx, args[0], key, end, perm)
				if err != nil {
					return nil, cf.requestError("grant a permission to role "+args[0], err)
				}
				return resp, nil
			}, func(w io.Writer, _ any) { fmt.Fprintf(w, "Role %s updated\n", args[0]) })
		},
	}
	pf.add(cmd, "grant")
	return cmd
}

func roleRevokeCmd(cf *clientFlags) *cobra.Command {
	var pf permFlags
	cmd := &cobra.Command{
		Use:   "revoke-permission ROLE KEY [END]",
		Short: "Revoke a role's permission on a key, range, prefix or keys from KEY on",
		Args:  cobra.RangeArgs(2, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			key, end, err := pf.keyRange(args[1:])
			if err != nil {
				return err
			}
			return authRun(cmd, cf, func(ctx context.Context, cli *clientv3.Client) (any, error) {
				resp, err := cli.RoleRevokePermission(ctx, args[0], key, end)
				if err != nil {
					return nil, cf.requestError("revoke a permission from role "+args[0], err)
				}
				return resp, nil
			}, func(w io.Writer, _ any) {
				switch {
				case end == "":
					fmt.Fprintf(w, "Permission of key %s is revoked from role %s\n", args[1], args[0])
				case end == "\x00":
					fmt.Fprintf(w, "Permission of range [%s, <open ended> is revoked from role %s\n", args[1], args[0])
				default:
					fmt.Fprintf(w, "Permission of range [%s, %s) is revoked from role %s\n", args[1], end, args[0])
				}
			})
		},
	}
	pf.add(cmd, "revoke")
	return cmd
}
