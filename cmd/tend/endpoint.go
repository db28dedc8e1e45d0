package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func newEndpointCmd() *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "endpoint",
		Short: "Check the health and status of endpoints",
	}
	cf := addClientFlags(cmd)
	cmd.PersistentFlags().BoolVar(&all, "cluster", false, "use every member's client URLs instead of --endpoints")
	cmd.AddCommand(endpointHealthCmd(cf, &all), endpointStatusCmd(cf, &all), endpointHashKVCmd(cf, &all))
	return cmd
}

// clusterEndpoints returns --endpoints, or with --cluster the client URLs of all
// members.
func clusterEndpoints(ctx context.Context, cf *clientFlags, all bool) ([]string, error) {
	if !all {
		return cf.endpoints, nil
	}
	cli, err := cf.client()
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	ctx, cancel := cf.commandContext(ctx)
	defer cancel()
	resp, err := cli.MemberList(ctx)
	if err != nil {
		return nil, cf.requestError("list members for --cluster", err)
	}
	var eps []string
	for _, m := range resp.Members {
		eps = append(eps, m.ClientURLs...)
	}
	return eps, nil
}

// askEach asks every endpoint (--endpoints, or with --cluster every
// member's) in turn with ask, each within --command-timeout; the first
// failure ends it, named "<what> of <endpoint>".
func askEach[T any](ctx context.Context, cf *clientFlags, all bool, what string, ask func(context.Context, *clientv3.Client, string) (T, error)) ([]T, error) {
	eps, err := clusterEndpoints(ctx, cf, all)
	if err != nil {
		return nil, err
	}
	cli, err := cf.client()
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	var out []T
	for _, ep := range eps {
		actx, cancel := cf.commandContext(ctx)
		v, err := ask(actx, cli, ep)
		cancel()
		if err != nil {
			return nil, oneEndpoint(cf, ep).requestError(fmt.Sprintf("%s of %s", what, ep), err)
		}
		out = append(out, v)
	}
	return out, nil
}

// oneEndpoint returns a copy of cf that talks to ep only.
func oneEndpoint(cf *clientFlags, ep string) *clientFlags {
	c := *cf
	c.endpoints = []string{ep}
	return &c
}

type endpointHealth struct {
	Endpoint string `json:"endpoint"`
	Health   bool   `json:"health"`
	Took     string `json:"took"`
	Error    string `json:"error,omitempty"`
}

func endpointHealthCmd(cf *clientFlags, all *bool) *cobra.Command {
	return &cobra.Command{
		Use:   "health",
		Short: "Check each endpoint with a linearizable read and an alarm check",
		Long: `Health reads the key "health" linearizably through each endpoint (so the
member must reach a quorum) and checks that no alarm is raised, like etcdctl.
It exits 1 when any endpoint is unhealthy.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := cf.checkWriteOut("endpoint health", "simple", "table", "json"); err != nil {
				return err
			}
			eps, err := clusterEndpoints(cmd.Context(), cf, *all)
			if err != nil {
				return err
			}
			var hs []endpointHealth
			for _, ep := range eps {
				hs = append(hs, checkHealth(cmd.Context(), oneEndpoint(cf, ep)))
			}
			out := cmd.OutOrStdout()
			switch cf.writeOut {
			case "json":
				if err := printJSON(out, hs); err != nil {
					return err
				}
			case "table":
				var rows [][]string
				for _, h := range hs {
					rows = append(rows, []string{h.Endpoint, strconv.FormatBool(h.Health), h.Took, h.Error})
				}
				printTable(out, []string{"endpoint", "health", "took", "error"}, rows)
			default:
				for _, h := range hs {
					if h.Health {
						fmt.Fprintf(out, "%s is healthy: successfully committed proposal: took = %s\n", h.Endpoint, h.Took)
					} else {
						fmt.Fprintf(cmd.ErrOrStderr(), "%s is unhealthy: failed to commit proposal: %s\n", h.Endpoint, h.Error)
					}
				}
			}
			for _, h := range hs {
				if !h.Health {
					return errors.New("unhealthy cluster (see the endpoints above)")
				}
			}
			return nil
		},
	}
}

func checkHealth(ctx context.Context, cf *clientFlags) endpointHealth {
	h := endpointHealth{Endpoint: cf.endpoints[0]}
	cli, err := cf.client()
	if err != nil {
		h.Error = err.Error()
		return h
	}
	defer cli.Close()
	start := time.Now()
	ctx, cancel := cf.commandContext(ctx)
	defer cancel()
	_, err = cli.Get(ctx, "health")
	// A permission error still proves the request went through consensus.
	if err != nil && !errors.Is(err, rpctypes.ErrPermissionDenied) {
		h.Error = err.Error()
		return h
	}
	h.Took = time.Since(start).String()
	alarms, err := cli.AlarmList(ctx)
	if err != nil {
		h.Error = fmt.Sprintf("list alarms: %v", err)
		return h
	}
	if len(alarms.Alarms) > 0 {
		var names []string
		for _, a := range alarms.Alarms {
			names = append(names, a.Alarm.String())
		}
		h.Error = "active alarm(s): " + strings.Join(names, " ")
		return h
	}
	h.Health = true
	return h
}

type endpointStatus struct {
	Endpoint string                   `json:"Endpoint"`
	Status   *clientv3.StatusResponse `json:"Status"`
}

var statusHeader = []string{
	"endpoint", "ID", "version", "storage version", "db size", "in use", "percentage not in use", "quota",
	"is leader", "is learner", "raft term", "raft index", "raft applied index", "errors",
	"downgrade target version", "downgrade enabled",
}

func endpointStatusCmd(cf *clientFlags, all *bool) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Print each endpoint's member ID, version, db size, leader, raft term and index",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := cf.checkWriteOut("endpoint status", "simple", "table", "json"); err != nil {
				return err
			}
			sts, err := askEach(cmd.Context(), cf, *all, "status", func(ctx context.Context, cli *clientv3.Client, ep string) (endpointStatus, error) {
				resp, err := cli.Status(ctx, ep)
				return endpointStatus{Endpoint: ep, Status: resp}, err
			})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if cf.writeOut == "json" {
				return printJSON(out, sts)
			}
			var rows [][]string
			for _, s := range sts {
				r := s.Status
				notInUse := "0%"
				if r.DbSize > 0 {
					notInUse = fmt.Sprintf("%d%%", 100-r.DbSizeInUse*100/r.DbSize)
				}
				rows = append(rows, []string{
					s.Endpoint,
					fmt.Sprintf("%x", r.Header.MemberId),
					r.Version,
					r.StorageVersion,
					humanize.Bytes(uint64(r.DbSize)),
					humanize.Bytes(uint64(r.DbSizeInUse)),
					notInUse,
					humanize.Bytes(uint64(r.DbSizeQuota)),
					fmt.Sprint(r.Leader == r.Header.MemberId),
					fmt.Sprint(r.IsLearner),
					fmt.Sprint(r.RaftTerm),
					fmt.Sprint(r.RaftIndex),
					fmt.Sprint(r.RaftAppliedIndex),
					strings.Join(r.Errors, ", "),
					r.DowngradeInfo.GetTargetVersion(),
					strconv.FormatBool(r.DowngradeInfo.GetEnabled()),
				})
			}
			if cf.writeOut == "table" {
				printTable(out, statusHeader, rows)
			} else {
				printRows(out, rows)
			}
			return nil
		},
	}
}

// endpointHashKV is one line of endpoint hashkv -w json, as etcdctl's.
type endpointHashKV struct {
	Endpoint string                   `json:"Endpoint"`
	HashKV   *clientv3.HashKVResponse `json:"HashKV"`
}

var hashKVHeader = []string{"endpoint", "hash", "hash revision"}

// endpointHashKVCmd is etcdctl's endpoint hashkv: each member's hash of
// the keyspace's history up to --rev, equal on every member that applied
// the same requests.
func endpointHashKVCmd(cf *clientFlags, all *bool) *cobra.Command {
	var rev int64
	cmd := &cobra.Command{
		Use:   "hashkv",
		Short: "Print each endpoint's hash of the keyspace history (equal on members that agree)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := cf.checkWriteOut("endpoint hashkv", "simple", "table", "json"); err != nil {
				return err
			}
			hs, err := askEach(cmd.Context(), cf, *all, "hashkv", func(ctx context.Context, cli *clientv3.Client, ep string) (endpointHashKV, error) {
				resp, err := cli.HashKV(ctx, ep, rev)
				return endpointHashKV{Endpoint: ep, HashKV: resp}, err
			})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if cf.writeOut == "json" {
				return printJSON(out, hs)
			}
			var rows [][]string
			for _, h := range hs {
				rows = append(rows, []string{h.Endpoint, fmt.Sprint(h.HashKV.Hash), fmt.Sprint(h.HashKV.HashRevision)})
			}
			if cf.writeOut == "table" {
				printTable(out, hashKVHeader, rows)
			} else {
				printRows(out, rows)
			}
			return nil
		},
	}
	cmd.Flags().Int64Var(&rev, "rev", 0, "maximum revision to hash (default: latest revision)")
	return cmd
}
