package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func newMemberCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "member",
		Short: "Inspect the cluster's members",
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
			cli, err := cf.client()
			if err != nil {
				return err
			}
			defer cli.Close()
			ctx, cancel := cf.commandContext(cmd.Context())
			defer cancel()
			resp, err := cli.MemberList(ctx)
			if err != nil {
				return cf.requestError("list members", err)
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
	cmd.AddCommand(list)
	return cmd
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
