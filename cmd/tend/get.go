package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
)

type getFlags struct {
	prefix         bool
	fromKey        bool
	keysOnly       bool
	countOnly      bool
	printValueOnly bool
	limit          int64
	rev            int64
	consistency    string
	sortBy         string
	order          string
}

// singleKey reports whether the get names exactly one key, which is printed
// as its bare value.
func (gf getFlags) singleKey(args []string) bool {
	return len(args) == 1 && !gf.prefix && !gf.fromKey && !gf.keysOnly && !gf.countOnly
}

func newGetCmd() *cobra.Command {
	var gf getFlags
	cmd := &cobra.Command{
		Use:   "get KEY [END]",
		Short: "Get a key, a range [KEY, END), a prefix or all keys from KEY",
		Long: `Get reads keys.

For one key (no END, --prefix, --from-key, --keys-only or --count-only) it prints
the value alone, byte for byte and with no newline added, so a file stored with
put is reproduced exactly:

  tend get /myapp/production/config > application.yml

If that key does not exist, get prints nothing on stdout, names the key on
stderr and exits 1 (etcdctl exits 0), so a script never writes an empty file
without noticing. With -w json a missing key is not an error: the response
(count 0) says it.

For several keys it prints each key on one line and its value on the next,
like etcdctl; --print-value-only leaves out the keys, --keys-only the values.`,
		Args: cobra.RangeArgs(1, 2),
	}
	cf := addClientFlags(cmd)
	fs := cmd.Flags()
	fs.BoolVar(&gf.prefix, "prefix", false, "get all keys starting with KEY")
	fs.BoolVar(&gf.fromKey, "from-key", false, "get all keys >= KEY")
	fs.BoolVar(&gf.keysOnly, "keys-only", false, "print keys only")
	fs.BoolVar(&gf.countOnly, "count-only", false, "print the number of keys only")
	fs.BoolVar(&gf.printValueOnly, "print-value-only", false, "print values only")
	fs.Int64Var(&gf.limit, "limit", 0, "at most this many keys (0: no limit)")
	fs.Int64Var(&gf.rev, "rev", 0, "read at this revision (0: the newest)")
	fs.StringVar(&gf.consistency, "consistency", "l", "l (linearizable) or s (serializable: may be stale, answered locally)")
	fs.StringVar(&gf.sortBy, "sort-by", "", "sort by KEY, CREATE, MODIFY, VALUE or VERSION")
	fs.StringVar(&gf.order, "order", "", "ASCEND or DESCEND")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := cf.checkWriteOut("get", "simple", "json"); err != nil {
			return err
		}
		key, opts, err := getOp(args, gf)
		if err != nil {
			return err
		}
		resp, err := call(cmd, cf, fmt.Sprintf("get %q", args[0]), func(ctx context.Context, cli *clientv3.Client) (*clientv3.GetResponse, error) {
			return cli.Get(ctx, key, opts...)
		})
		if err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		if cf.writeOut == "json" {
			return printJSON(out, resp)
		}
		if gf.countOnly {
			fmt.Fprintln(out, resp.Count)
			return nil
		}
		if gf.singleKey(args) {
			if len(resp.Kvs) == 0 {
				return fmt.Errorf("key %q not found (list what exists with: tend get --prefix --keys-only %q)", key, parentPrefix(key))
			}
			_, err := out.Write(resp.Kvs[0].Value)
			return err
		}
		p := kvPrinter{w: out, valueOnly: gf.printValueOnly, keysOnly: gf.keysOnly}
		for _, kv := range resp.Kvs {
			p.print(kv.Key, kv.Value)
		}
		return nil
	}
	return cmd
}

// parentPrefix is the key up to its last slash, for hints.
func parentPrefix(key string) string {
	if i := strings.LastIndex(key, "/"); i > 0 {
		return key[:i+1]
	}
	return "/"
}

// getOp turns get's arguments into a request. txn reuses it.
func getOp(args []string, gf getFlags) (string, []clientv3.OpOption, error) {
	key := args[0]
	if gf.prefix && gf.fromKey {
		return "", nil, errors.New("--prefix and --from-key exclude each other (choose one)")
	}
	if gf.keysOnly && gf.countOnly {
		return "", nil, errors.New("--keys-only and --count-only exclude each other (choose one)")
	}
	var opts []clientv3.OpOption
	switch gf.consistency {
	case "l", "":
	case "s":
		opts = append(opts, clientv3.WithSerializable())
	default:
		return "", nil, fmt.Errorf("--consistency %q: use l (linearizable) or s (serializable)", gf.consistency)
	}
	if len(args) > 1 {
		if gf.prefix || gf.fromKey {
			return "", nil, errors.New("END cannot be combined with --prefix or --from-key (drop one)")
		}
		opts = append(opts, clientv3.WithRange(args[1]))
	}
	opts = append(opts, clientv3.WithLimit(gf.limit))
	if gf.rev > 0 {
		opts = append(opts, clientv3.WithRev(gf.rev))
	}
	order := clientv3.SortNone
	switch strings.ToUpper(gf.order) {
	case "":
	case "ASCEND":
		order = clientv3.SortAscend
	case "DESCEND":
		order = clientv3.SortDescend
	default:
		return "", nil, fmt.Errorf("--order %q: use ASCEND or DESCEND", gf.order)
	}
	target := clientv3.SortByKey
	switch strings.ToUpper(gf.sortBy) {
	case "", "KEY":
	case "CREATE":
		target = clientv3.SortByCreateRevision
	case "MODIFY":
		target = clientv3.SortByModRevision
	case "VALUE":
		target = clientv3.SortByValue
	case "VERSION":
		target = clientv3.SortByVersion
	default:
		return "", nil, fmt.Errorf("--sort-by %q: use KEY, CREATE, MODIFY, VALUE or VERSION", gf.sortBy)
	}
	opts = append(opts, clientv3.WithSort(target, order))
	if gf.prefix {
		if key == "" {
			key = "\x00"
			opts = append(opts, clientv3.WithFromKey())
		} else {
			opts = append(opts, clientv3.WithPrefix())
		}
	}
	if gf.fromKey {
		if key == "" {
			key = "\x00"
		}
		opts = append(opts, clientv3.WithFromKey())
	}
	if gf.keysOnly {
		opts = append(opts, clientv3.WithKeysOnly())
	}
	if gf.countOnly {
		opts = append(opts, clientv3.WithCountOnly())
	}
	return key, opts, nil
}
