package main

import (
	"context"
	"fmt"
	"io"
	"strconv"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
)

type putFlags struct {
	lease       string
	prevKV      bool
	ignoreValue bool
	ignoreLease bool
}

func newPutCmd() *cobra.Command { return putCommand("put") }

// newSetCmd is put under the name etcd v2 users know: tend set /my_key "my value".
func newSetCmd() *cobra.Command {
	cmd := putCommand("set")
	cmd.Short = "Put a key (alias of put)"
	return cmd
}

func putCommand(name string) *cobra.Command {
	var pf putFlags
	cmd := &cobra.Command{
		Use:   name + " KEY [VALUE]",
		Short: "Put a key; the value is read from stdin, byte for byte, when omitted",
		Long: `Put stores VALUE under KEY. Without VALUE it reads standard input to its end
and stores it exactly, so a whole file can be kept under one key:

  tend put /myapp/production/config < application.yml

Prints OK (and the previous pair with --prev-kv).`,
		Args: cobra.RangeArgs(1, 2),
	}
	cf := addClientFlags(cmd)
	cmd.Flags().StringVar(&pf.lease, "lease", "0", "attach the key to this lease (hex ID as printed by lease grant)")
	cmd.Flags().BoolVar(&pf.prevKV, "prev-kv", false, "print the previous key-value pair")
	cmd.Flags().BoolVar(&pf.ignoreValue, "ignore-value", false, "keep the current value (only the lease changes)")
	cmd.Flags().BoolVar(&pf.ignoreLease, "ignore-lease", false, "keep the current lease (only the value changes)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := cf.checkWriteOut(name, "simple", "json"); err != nil {
			return err
		}
		key, value, opts, err := putOp(args, cmd.InOrStdin(), pf)
		if err != nil {
			return err
		}
		resp, err := call(cmd, cf, fmt.Sprintf("put %q", key), func(ctx context.Context, cli *clientv3.Client) (*clientv3.PutResponse, error) {
			return cli.Put(ctx, key, value, opts...)
		})
		if err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		if cf.writeOut == "json" {
			return printJSON(out, resp)
		}
		fmt.Fprintln(out, "OK")
		if resp.PrevKv != nil {
			kvPrinter{w: out}.print(resp.PrevKv.Key, resp.PrevKv.Value)
		}
		return nil
	}
	return cmd
}

// putOp turns put's arguments into a request; it reads stdin when the value
// is not an argument. txn reuses it for its put lines.
func putOp(args []string, stdin io.Reader, pf putFlags) (key, value string, opts []clientv3.OpOption, err error) {
	key = args[0]
	if pf.ignoreValue && len(args) > 1 {
		return "", "", nil, fmt.Errorf("put %q: --ignore-value takes no VALUE argument (drop the value or the flag)", key)
	}
	if !pf.ignoreValue {
		if len(args) > 1 {
			value = args[1]
		} else {
			b, err := io.ReadAll(stdin)
			if err != nil {
				return "", "", nil, fmt.Errorf("put %q: read value from stdin: %w", key, err)
			}
			value = string(b)
		}
	}
	id, err := strconv.ParseInt(pf.lease, 16, 64)
	if err != nil {
		return "", "", nil, fmt.Errorf("--lease %q: not a hex lease ID (use the ID lease grant printed, e.g. 694d77aa9e38260f)", pf.lease)
	}
	if id != 0 {
		opts = append(opts, clientv3.WithLease(clientv3.LeaseID(id)))
	}
	if pf.prevKV {
		opts = append(opts, clientv3.WithPrevKV())
	}
	if pf.ignoreValue {
		opts = append(opts, clientv3.WithIgnoreValue())
	}
	if pf.ignoreLease {
		opts = append(opts, clientv3.WithIgnoreLease())
	}
	return key, value, opts, nil
}
