package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// newAlarmCmd is `tend alarm list|disarm`, as etcdctl's.
func newAlarmCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "alarm",
		Short: "List or disarm the cluster's alarms (NOSPACE, CORRUPT)",
		Long: `A member raises NOSPACE when its database reaches --quota-backend-bytes;
the cluster then refuses writes until the alarm is disarmed. Free space first
(tend compact REV, then tend defrag), then tend alarm disarm.`,
	}
	cf := addClientFlags(cmd)
	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List the raised alarms",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return alarmRun(cmd, cf, "list alarms", func(ctx context.Context, cli *clientv3.Client) (*clientv3.AlarmResponse, error) {
				return cli.AlarmList(ctx)
			})
		},
	}, &cobra.Command{
		Use:   "disarm",
		Short: "Disarm every raised alarm, printing those it disarmed",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return alarmRun(cmd, cf, "disarm alarms", func(ctx context.Context, cli *clientv3.Client) (*clientv3.AlarmResponse, error) {
				return cli.AlarmDisarm(ctx, &clientv3.AlarmMember{})
			})
		},
	})
	return cmd
}

func alarmRun(cmd *cobra.Command, cf *clientFlags, action string, request func(context.Context, *clientv3.Client) (*clientv3.AlarmResponse, error)) error {
	if err := cf.checkWriteOut("alarm", "simple", "json"); err != nil {
		return err
	}
	resp, err := call(cmd, cf, action, request)
	if err != nil {
		return err
	}
	if cf.writeOut == "json" {
		return printJSON(cmd.OutOrStdout(), resp)
	}
	printAlarms(cmd.OutOrStdout(), resp.Alarms)
	return nil
}

// printAlarms prints one line per alarm, as etcdctl does.
func printAlarms(w io.Writer, alarms []*pb.AlarmMember) {
	for _, a := range alarms {
		fmt.Fprintf(w, "memberID:%d  alarm:%s\n", a.MemberID, a.Alarm)
	}
}
