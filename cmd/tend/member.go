package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func newMemberCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "member",
		Short: "List, add, remove, update and promote the cluster's members",
	}
	cf := addClientFlags(cmd)
	list := &cobra.Command{
		Use:   "list",
		Short: "List the members: ID, status, name, peer and client URLs, learner",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := cf.checkWriteOut("member list", "simple", "table", "json"); err != nil {
				return err
			}
			resp, err := call(cmd, cf, "list members", func(ctx context.Context, cli *clientv3.Client) (*clientv3.MemberListResponse, error) {
				return cli.MemberList(ctx)
			})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			switch cf.writeOut {
			case "json":
				return printJSON(out, resp)
			case "table":
				printTable(out, memberHeader, memberRows(resp))
			default:
				printRows(out, memberRows(resp))
			}
			return nil
		},
	}
	cmd.AddCommand(list, newMemberAddCmd(cf), newMemberRemoveCmd(cf), newMemberUpdateCmd(cf), newMemberPromoteCmd(cf))
	return cmd
}

func newMemberAddCmd(cf *clientFlags) *cobra.Command {
	var peerURLs string
	var learner bool
	cmd := &cobra.Command{
		Use:   "add <name> --peer-urls=<url>[,<url>...]",
		Short: "Add a member; then start it with --initial-cluster-state existing",
		Long: `Add a member to the cluster, then start it with the printed settings:
its --initial-cluster lists the members and itself, and
--initial-cluster-state existing makes it join instead of starting a new
cluster. A --learner receives the log but does not vote until promoted.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				for _, a := range args {
					if strings.HasPrefix(strings.ToLower(a), "http") {
						return fmt.Errorf("give the member's name only (did you mean --peer-urls=%s?)", a)
					}
				}
				return fmt.Errorf("give the new member's name, as in: tend member add m4 --peer-urls=http://127.0.0.1:2380")
			}
			if peerURLs == "" {
				return fmt.Errorf("--peer-urls is empty: give the new member's peer URLs, as in --peer-urls=http://127.0.0.1:2380")
			}
			if err := cf.checkWriteOut("member add", "simple", "json"); err != nil {
				return err
			}
			name, urls := args[0], strings.Split(peerURLs, ",")
			return cf.do(cmd, "add member", func(ctx context.Context, cli *clientv3.Client) error {
				var resp *clientv3.MemberAddResponse
				var err error
				if learner {
					resp, err = cli.MemberAddAsLearner(ctx, urls)
				} else {
					resp, err = cli.MemberAdd(ctx, urls)
				}
				if err != nil {
					return err
				}
				out := cmd.OutOrStdout()
				if cf.writeOut == "json" {
					return printJSON(out, resp)
				}
				as := " "
				if resp.Member.IsLearner {
					as = " as learner "
				}
				fmt.Fprintf(out, "Member %16x added%sto cluster %16x\n\n", resp.Member.ID, as, resp.Header.ClusterId)
				var conf []string
				for _, m := range resp.Members {
					n := m.Name
					if m.ID == resp.Member.ID {
						n = name
					}
					for _, u := range m.PeerURLs {
						conf = append(conf, n+"="+u)
					}
				}
				fmt.Fprintf(out, "ETCD_NAME=%q\n", name)
				fmt.Fprintf(out, "ETCD_INITIAL_CLUSTER=%q\n", strings.Join(conf, ","))
				fmt.Fprintf(out, "ETCD_INITIAL_ADVERTISE_PEER_URLS=%q\n", peerURLs)
				fmt.Fprintf(out, "ETCD_INITIAL_CLUSTER_STATE=\"existing\"\n\n")
				fmt.Fprintf(out, "Start it with:\n  tend server --name %s --initial-advertise-peer-urls %s --listen-peer-urls %s \\\n    --initial-cluster %s --initial-cluster-state existing\n",
					name, peerURLs, peerURLs, strings.Join(conf, ","))
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&peerURLs, "peer-urls", "", "comma-separated peer URLs of the new member")
	cmd.Flags().BoolVar(&learner, "learner", false, "add the member as a learner (a non-voting member)")
	return cmd
}

// memberIDArg parses a member ID as etcdctl prints it (hex).
func memberIDArg(args []string, verb string) (uint64, error) {
	if len(args) != 1 {
		return 0, fmt.Errorf("give the ID of the member to %s (tend member list shows IDs)", verb)
	}
	id, err := strconv.ParseUint(args[0], 16, 64)
	if err != nil {
		return 0, fmt.Errorf("member ID %q: want a hex ID as tend member list prints it", args[0])
	}
	return id, nil
}

func newMemberRemoveCmd(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "remove <memberID>",
		Short: "Remove a member from the cluster; it stops",
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := memberIDArg(args, "remove")
			if err != nil {
				return err
			}
			return cf.do(cmd, "remove member", func(ctx context.Context, cli *clientv3.Client) error {
				resp, err := cli.MemberRemove(ctx, id)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Member %16x removed from cluster %16x\n", id, resp.Header.ClusterId)
				return nil
			})
		},
	}
}

func newMemberUpdateCmd(cf *clientFlags) *cobra.Command {
	var peerURLs string
	cmd := &cobra.Command{
		Use:   "update <memberID> --peer-urls=<url>[,<url>...]",
		Short: "Change a member's peer URLs",
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := memberIDArg(args, "update")
			if err != nil {
				return err
			}
			if peerURLs == "" {
				return fmt.Errorf("--peer-urls is empty: give the member's new peer URLs")
			}
			return cf.do(cmd, "update member", func(ctx context.Context, cli *clientv3.Client) error {
				resp, err := cli.MemberUpdate(ctx, id, strings.Split(peerURLs, ","))
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Member %16x updated in cluster %16x\n", id, resp.Header.ClusterId)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&peerURLs, "peer-urls", "", "comma-separated new peer URLs of the member")
	return cmd
}

func newMemberPromoteCmd(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "promote <memberID>",
		Short: "Make a learner that has caught up a voting member",
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := memberIDArg(args, "promote")
			if err != nil {
				return err
			}
			return cf.do(cmd, "promote member", func(ctx context.Context, cli *clientv3.Client) error {
				resp, err := cli.MemberPromote(ctx, id)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Member %16x promoted in cluster %16x\n", id, resp.Header.ClusterId)
				return nil
			})
		},
	}
}

var memberHeader = []string{"ID", "Status", "Name", "Peer Addrs", "Client Addrs", "Is Learner"}

func memberRows(resp *clientv3.MemberListResponse) [][]string {
	var rows [][]string
	for _, m := range resp.Members {
		status := "started"
		if m.Name == "" {
			status = "unstarted"
		}
		rows = append(rows, []string{
			fmt.Sprintf("%x", m.ID), status, m.Name,
			strings.Join(m.PeerURLs, ","), strings.Join(m.ClientURLs, ","),
			fmt.Sprint(m.IsLearner),
		})
	}
	return rows
}
