package main

import (
	"context"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// newMoveLeaderCmd is `tend move-leader ID`, as etcdctl's, except that the
// leader need not be among --endpoints: tend finds its client URL in the
// member list.
func newMoveLeaderCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "move-leader MEMBER_ID",
		Short: "Hand the leadership to another member (ID in hex, as tend member list prints it)",
		Args:  cobra.ExactArgs(1),
	}
	cf := addClientFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := cf.checkWriteOut("move-leader", "simple", "json"); err != nil {
			return err
		}
		target, err := strconv.ParseUint(args[0], 16, 64)
		if err != nil {
			return fmt.Errorf("MEMBER_ID %q is not a member ID in hex (see tend member list)", args[0])
		}
		leaderURL, leaderID, err := findLeader(cmd, cf)
		if err != nil {
			return err
		}
		resp, err := call(cmd, oneEndpoint(cf, leaderURL), fmt.Sprintf("move the leadership from %x to %x", leaderID, target),
			func(ctx context.Context, cli *clientv3.Client) (*clientv3.MoveLeaderResponse, error) {
				return cli.MoveLeader(ctx, target)
			})
		if err != nil {
			return err
		}
		if cf.writeOut == "json" {
			return printJSON(cmd.OutOrStdout(), resp)
		}
		fmt.Fprintf(cmd.OutOrStdout(), "Leadership transferred from %x to %x\n", leaderID, target)
		return nil
	}
	return cmd
}

// findLeader returns a client URL of the leader and its ID: an endpoint of
// --endpoints if one is the leader, else the leader's first client URL from
// the member list.
func findLeader(cmd *cobra.Command, cf *clientFlags) (string, uint64, error) {
	var leader uint64
	for _, ep := range cf.endpoints {
		resp, err := call(cmd, oneEndpoint(cf, ep), "status of "+ep, func(ctx context.Context, cli *clientv3.Client) (*clientv3.StatusResponse, error) {
			return cli.Status(ctx, ep)
		})
		if err != nil {
			continue // another endpoint may answer
		}
		if resp.Leader == 0 {
			continue
		}
		if resp.Header.GetMemberId() == resp.Leader {
			return ep, resp.Leader, nil
		}
		leader = resp.Leader
	}
	if leader == 0 {
		return "", 0, fmt.Errorf("no leader known to %v (is a majority of members up? see tend endpoint status --cluster)", cf.endpoints)
	}
	members, err := call(cmd, cf, "list members to find the leader", func(ctx context.Context, cli *clientv3.Client) (*clientv3.MemberListResponse, error) {
		return cli.MemberList(ctx)
	})
	if err != nil {
		return "", 0, err
	}
	for _, m := range members.Members {
		if m.ID == leader && len(m.ClientURLs) > 0 {
			return m.ClientURLs[0], leader, nil
		}
	}
	return "", 0, fmt.Errorf("the leader %x advertises no client URL (see tend member list)", leader)
}
