package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func newTxnCmd() *cobra.Command {
	var interactive bool
	cmd := &cobra.Command{
		Use:   "txn",
		Short: "Apply compares and requests read from stdin as one atomic transaction",
		Long: `Txn reads a transaction from standard input in etcdctl's format: compares,
a blank line, the requests to run when all compares hold, a blank line, and the
requests to run otherwise (ending with a blank line or the end of input).

  mod("/myapp/lock") = "0"

  put /myapp/lock "me"
  get /myapp/config

  get /myapp/lock

Compares: target("key") op "value" with target one of ver|version, c|create,
m|mod, val|value, lease, and op one of = != < >. Requests: put, get and del
lines with their flags (put KEY VALUE [--lease ID], get KEY [END] [--prefix],
del KEY [END] [--prefix]); quote values with spaces.

Prints SUCCESS or FAILURE, then each response after a blank line.`,
		Args: cobra.NoArgs,
	}
	cf := addClientFlags(cmd)
	cmd.Flags().BoolVarP(&interactive, "interactive", "i", false, "prompt for each part")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := cf.checkWriteOut("txn", "simple", "json"); err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		prompt := func(s string) {
			if interactive {
				fmt.Fprintln(out, s)
			}
		}
		r := &lineReader{r: bufio.NewReader(cmd.InOrStdin())}
		prompt("compares:")
		cmps, err := readCompares(r)
		if err != nil {
			return err
		}
		prompt("success requests (get, put, del):")
		thenOps, err := readOps(r)
		if err != nil {
			return err
		}
		prompt("failure requests (get, put, del):")
		elseOps, err := readOps(r)
		if err != nil {
			return err
		}
		resp, err := call(cmd, cf, "txn", func(ctx context.Context, cli *clientv3.Client) (*clientv3.TxnResponse, error) {
			return cli.Txn(ctx).If(cmps...).Then(thenOps...).Else(elseOps...).Commit()
		})
		if err != nil {
			return err
		}
		if cf.writeOut == "json" {
			return printJSON(out, resp)
		}
		printTxn(out, (*pb.TxnResponse)(resp))
		return nil
	}
	return cmd
}

func printTxn(out io.Writer, resp *pb.TxnResponse) {
	if resp.Succeeded {
		fmt.Fprintln(out, "SUCCESS")
	} else {
		fmt.Fprintln(out, "FAILURE")
	}
	p := kvPrinter{w: out}
	for _, op := range resp.Responses {
		fmt.Fprintln(out)
		switch v := op.Response.(type) {
		case *pb.ResponseOp_ResponsePut:
			fmt.Fprintln(out, "OK")
			if kv := v.ResponsePut.PrevKv; kv != nil {
				p.print(kv.Key, kv.Value)
			}
		case *pb.ResponseOp_ResponseRange:
			for _, kv := range v.ResponseRange.Kvs {
				p.print(kv.Key, kv.Value)
			}
		case *pb.ResponseOp_ResponseDeleteRange:
			fmt.Fprintln(out, v.ResponseDeleteRange.Deleted)
			for _, kv := range v.ResponseDeleteRange.PrevKvs {
				p.print(kv.Key, kv.Value)
			}
		case *pb.ResponseOp_ResponseTxn:
			printTxn(out, v.ResponseTxn)
		}
	}
}

// lineReader reads trimmed lines and counts them for error messages.
type lineReader struct {
	r    *bufio.Reader
	line int
	eof  bool
}

// next returns the next trimmed line; ok is false at a blank line or the end
// of input.
func (lr *lineReader) next() (string, bool, error) {
	if lr.eof {
		return "", false, nil
	}
	s, err := lr.r.ReadString('\n')
	lr.line++
	if errors.Is(err, io.EOF) {
		lr.eof = true
	} else if err != nil {
		return "", false, fmt.Errorf("read txn from stdin: %w", err)
	}
	s = strings.TrimSpace(s)
	return s, s != "", nil
}

func readCompares(r *lineReader) ([]clientv3.Cmp, error) {
	var cmps []clientv3.Cmp
	for {
		line, ok, err := r.next()
		if err != nil || !ok {
			return cmps, err
		}
		cmp, err := parseCompare(line)
		if err != nil {
			return nil, fmt.Errorf("stdin:%d: %w", r.line, err)
		}
		cmps = append(cmps, cmp)
	}
}

func readOps(r *lineReader) ([]clientv3.Op, error) {
	var ops []clientv3.Op
	for {
		line, ok, err := r.next()
		if err != nil || !ok {
			return ops, err
		}
		op, err := parseRequest(line)
		if err != nil {
			return nil, fmt.Errorf("stdin:%d: %w", r.line, err)
		}
		ops = append(ops, op)
	}
}

// parseCompare parses target("key") op "value".
func parseCompare(line string) (clientv3.Cmp, error) {
	target, rest, ok := strings.Cut(line, "(")
	if !ok {
		return clientv3.Cmp{}, fmt.Errorf("compare %q: want target(\"key\") op \"value\", e.g. mod(\"/k\") > \"0\"", line)
	}
	var key, op, val string
	if n, err := fmt.Sscanf(rest, "%q) %s %q", &key, &op, &val); n != 3 {
		return clientv3.Cmp{}, fmt.Errorf("compare %q: want target(\"key\") op \"value\", e.g. mod(\"/k\") > \"0\" (%v)", line, err)
	}
	switch op {
	case "=", "!=", "<", ">":
	default:
		return clientv3.Cmp{}, fmt.Errorf("compare %q: unknown operator %q (use = != < >)", line, op)
	}
	num := func() (int64, error) {
		v, err := strconv.ParseInt(val, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("compare %q: %q is not a number", line, val)
		}
		return v, nil
	}
	switch target {
	case "ver", "version":
		v, err := num()
		return clientv3.Compare(clientv3.Version(key), op, v), err
	case "c", "create":
		v, err := num()
		return clientv3.Compare(clientv3.CreateRevision(key), op, v), err
	case "m", "mod":
		v, err := num()
		return clientv3.Compare(clientv3.ModRevision(key), op, v), err
	case "val", "value":
		return clientv3.Compare(clientv3.Value(key), op, val), nil
	case "lease":
		v, err := strconv.ParseInt(val, 16, 64)
		if err != nil {
			return clientv3.Cmp{}, fmt.Errorf("compare %q: %q is not a hex lease ID", line, val)
		}
		return clientv3.Compare(clientv3.LeaseValue(key), op, v), nil
	default:
		return clientv3.Cmp{}, fmt.Errorf("compare %q: unknown target %q (use ver, create, mod, value or lease)", line, target)
	}
}

// parseRequest parses one put, get or del line with the flags of those
// commands.
func parseRequest(line string) (clientv3.Op, error) {
	args, err := splitArgs(line)
	if err != nil {
		return clientv3.Op{}, fmt.Errorf("request %q: %w", line, err)
	}
	if len(args) < 2 {
		return clientv3.Op{}, fmt.Errorf("request %q: want put KEY VALUE, get KEY or del KEY", line)
	}
	var op clientv3.Op
	sub := &cobra.Command{Args: cobra.MinimumNArgs(1), SilenceErrors: true, SilenceUsage: true}
	switch args[0] {
	case "put":
		var pf putFlags
		sub.Flags().StringVar(&pf.lease, "lease", "0", "")
		sub.Flags().BoolVar(&pf.prevKV, "prev-kv", false, "")
		sub.Flags().BoolVar(&pf.ignoreValue, "ignore-value", false, "")
		sub.Flags().BoolVar(&pf.ignoreLease, "ignore-lease", false, "")
		sub.RunE = func(_ *cobra.Command, a []string) error {
			if len(a) != 2 && !(pf.ignoreValue && len(a) == 1) {
				return errors.New("put needs KEY and VALUE")
			}
			key, value, opts, err := putOp(a, strings.NewReader(""), pf)
			op = clientv3.OpPut(key, value, opts...)
			return err
		}
	case "get":
		var gf getFlags
		fs := sub.Flags()
		fs.BoolVar(&gf.prefix, "prefix", false, "")
		fs.BoolVar(&gf.fromKey, "from-key", false, "")
		fs.BoolVar(&gf.keysOnly, "keys-only", false, "")
		fs.BoolVar(&gf.countOnly, "count-only", false, "")
		fs.Int64Var(&gf.limit, "limit", 0, "")
		fs.Int64Var(&gf.rev, "rev", 0, "")
		fs.StringVar(&gf.consistency, "consistency", "l", "")
		fs.StringVar(&gf.sortBy, "sort-by", "", "")
		fs.StringVar(&gf.order, "order", "", "")
		sub.RunE = func(_ *cobra.Command, a []string) error {
			if len(a) > 2 {
				return errors.New("get takes KEY [END]")
			}
			key, opts, err := getOp(a, gf)
			op = clientv3.OpGet(key, opts...)
			return err
		}
	case "del", "delete":
		var df delFlags
		sub.Flags().BoolVar(&df.prefix, "prefix", false, "")
		sub.Flags().BoolVar(&df.fromKey, "from-key", false, "")
		sub.Flags().BoolVar(&df.prevKV, "prev-kv", false, "")
		sub.RunE = func(_ *cobra.Command, a []string) error {
			if len(a) > 2 {
				return errors.New("del takes KEY [END]")
			}
			key, opts, err := delOp(a, df)
			op = clientv3.OpDelete(key, opts...)
			return err
		}
	default:
		return clientv3.Op{}, fmt.Errorf("request %q: unknown request %q (use put, get or del)", line, args[0])
	}
	sub.SetArgs(args[1:])
	sub.SetOut(io.Discard)
	sub.SetErr(io.Discard)
	if err := sub.Execute(); err != nil {
		return clientv3.Op{}, fmt.Errorf("request %q: %w", line, err)
	}
	return op, nil
}

// splitArgs splits a line on spaces, keeping double-quoted parts (with Go
// escapes) together.
func splitArgs(line string) ([]string, error) {
	var args []string
	for i := 0; i < len(line); {
		switch {
		case line[i] == ' ' || line[i] == '\t':
			i++
		case line[i] == '"':
			j := i + 1
			for j < len(line) && line[j] != '"' {
				if line[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(line) {
				return nil, fmt.Errorf("unterminated quote at column %d", i+1)
			}
			s, err := strconv.Unquote(line[i : j+1])
			if err != nil {
				return nil, fmt.Errorf("bad quoted string at column %d: %w", i+1, err)
			}
			args = append(args, s)
			i = j + 1
		default:
			j := i
			for j < len(line) && line[j] != ' ' && line[j] != '\t' {
				j++
			}
			args = append(args, line[i:j])
			i = j
		}
	}
	return args, nil
}
