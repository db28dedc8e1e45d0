package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
)

type delFlags struct {
	prefix  bool
	fromKey bool
	prevKV  bool
}

func newDelCmd() *cobra.Command {
	var df delFlags
	cmd := &cobra.Command{
		Use:     "del KEY [END]",
		Aliases: []string{"delete", "rm"},
		Short:   "Delete a key, a range [KEY, END), a prefix or all keys from KEY; prints the count",
		Args:    cobra.RangeArgs(1, 2),
	}
	cf := addClientFlags(cmd)
	cmd.Flags().BoolVar(&df.prefix, "prefix", false, "delete all keys starting with KEY")
	cmd.Flags().BoolVar(&df.fromKey, "from-key", false, "delete all keys >= KEY")
	cmd.Flags().BoolVar(&df.prevKV, "prev-kv", false, "print the deleted pairs")
	// etcdctl waits two seconds before deleting [KEY, END) unless --range is
	// given; tend never waits, and accepts the flag so scripts carry over.
	cmd.Flags().Bool("range", false, "accepted for etcdctl compatibility (tend deletes [KEY, END) without waiting)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := cf.checkWriteOut("del", "simple", "json"); err != nil {
			return err
		}
		key, opts, err := delOp(args, df)
		if err != nil {
			return err
		}
		resp, err := call(cmd, cf, fmt.Sprintf("delete %q", args[0]), func(ctx context.Context, cli *clientv3.Client) (*clientv3.DeleteResponse, error) {
			return cli.Delete(ctx, key, opts...)
		})
		if err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		if cf.writeOut == "json" {
			return printJSON(out, resp)
		}
		fmt.Fprintln(out, resp.Deleted)
		p := kvPrinter{w: out}
		for _, kv := range resp.PrevKvs {
			p.print(kv.Key, kv.Value)
		}
		return nil
	}
	return cmd
}

// delOp turns del's arguments into a request. txn reuses it.
func delOp(args []string, df delFlags) (string, []clientv3.OpOption, error) {
	if df.prefix && df.fromKey {
		return "", nil, errors.New("--prefix and --from-key exclude each other (choose one)")
	}
	key := args[0]
	var opts []clientv3.OpOption
	if len(args) > 1 {
		if df.prefix || df.fromKey {
			return "", nil, errors.New("END cannot be combined with --prefix or --from-key (drop one)")
		}
		opts = append(opts, clientv3.WithRange(args[1]))
	}
	if df.prefix {
		if key == "" {
			key = "\x00"
			opts = append(opts, clientv3.WithFromKey())
		} else {
			opts = append(opts, clientv3.WithPrefix())
		}
	}
	if df.fromKey {
		if key == "" {
			key = "\x00"
		}
		opts = append(opts, clientv3.WithFromKey())
	}
	if df.prevKV {
		opts = append(opts, clientv3.WithPrevKV())
	}
	return key, opts, nil
}
