package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/mirror"
	"go.uber.org/zap"
)

// mirrorFlags are make-mirror's flags, etcdctl's.
type mirrorFlags struct {
	prefix       string
	destPrefix   string
	noDestPrefix bool
	rev          int64
	maxTxnOps    uint

	destCACert, destCert, destKey string
	destInsecureTransport         bool
	destUser, destPassword        string

	progressInterval time.Duration
}

// mirrorBatchBytes bounds the keys and values of one transaction that
// copies existing keys, well below etcd's default --max-request-bytes
// (1.5 MiB). A larger pair goes alone.
const mirrorBatchBytes = 1 << 20

func newMakeMirrorCmd() *cobra.Command {
	var mf mirrorFlags
	cmd := &cobra.Command{
		Use:   "make-mirror [options] <destination>",
		Short: "Copy the keys to another cluster (etcd or tend) and keep copying their changes, until interrupted",
		Long: `Make-mirror copies the keys of the cluster at --endpoints (all, or those
under --prefix) to the cluster at <destination>, as etcdctl make-mirror does,
then follows their changes (puts and deletes, one destination transaction
per source revision) until Ctrl-C or SIGTERM, when it exits 0. This is the
way to move from an etcd cluster to tend, or back:

  tend make-mirror --endpoints etcd-1:2379 tend-1:2379

Every 30 seconds (--progress-interval) it prints the number of keys copied
and changes applied so far, a bare number on a line of its own, as etcdctl.

Keys keep their names, or --prefix is replaced by --dest-prefix, or removed
with --no-dest-prefix. With --rev it copies no existing keys but replays the
changes from that revision on (--rev 1 copies the existing keys, as without
--rev). Leases are not copied: mirrored keys have none. The destination's
revisions are its own.

The destination's connection has its own flags: --dest-cacert, --dest-cert,
--dest-key (or --dest-insecure-transport=false for TLS with the system's CA
roots) and --dest-user NAME[:PASSWORD] (the password is asked for when
missing, or read from the first line of stdin when stdin is not a terminal).
<destination> may list several endpoints of that cluster, comma-separated.`,
	}
	cf := addClientFlags(cmd)
	fs := cmd.Flags()
	fs.StringVar(&mf.prefix, "prefix", "", "mirror only the keys under this prefix")
	fs.Int64Var(&mf.rev, "rev", 0, "replay the changes from this revision on instead of copying the existing keys")
	fs.UintVar(&mf.maxTxnOps, "max-txn-ops", 128, "most operations in one destination transaction (at most the destination's --max-txn-ops)")
	fs.StringVar(&mf.destPrefix, "dest-prefix", "", "put the keys under this prefix instead of --prefix at the destination")
	fs.BoolVar(&mf.noDestPrefix, "no-dest-prefix", false, "remove --prefix from the keys at the destination")
	fs.StringVar(&mf.destCert, "dest-cert", "", "client TLS certificate for the destination (PEM)")
	fs.StringVar(&mf.destKey, "dest-key", "", "client TLS key for the destination (PEM)")
	fs.StringVar(&mf.destCACert, "dest-cacert", "", "verify the destination's servers with this CA bundle (PEM)")
	fs.BoolVar(&mf.destInsecureTransport, "dest-insecure-transport", true, "no TLS to the destination unless a --dest-* TLS file or an https:// destination asks for it")
	fs.StringVar(&mf.destUser, "dest-user", "", "NAME[:PASSWORD] to authenticate as at the destination (the password is asked for when missing)")
	fs.StringVar(&mf.destPassword, "dest-password", "", "password for --dest-user")
	fs.DurationVar(&mf.progressInterval, "progress-interval", 30*time.Second, "how often to print the number of keys and changes copied (0: never)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) != 1 {
			return badArgs("make-mirror takes one destination argument")
		}
		if err := cf.checkWriteOut("make-mirror", "simple"); err != nil {
			return err
		}
		if mf.noDestPrefix && mf.destPrefix != "" {
			return badArgs("`--dest-prefix` and `--no-dest-prefix` cannot be set at the same time, choose one")
		}
		if mf.maxTxnOps == 0 {
			return errors.New("--max-txn-ops 0: give the most operations in one transaction, at least 1 (default 128)")
		}
		if mf.rev < 0 {
			return fmt.Errorf("--rev %d: give the revision to start from, or leave it out to copy the existing keys first", mf.rev)
		}
		if mf.progressInterval < 0 {
			return fmt.Errorf("--progress-interval %s: give a duration, or 0 for no progress lines", mf.progressInterval)
		}
		if !mf.noDestPrefix && mf.destPrefix == "" {
			// With --rev too (etcdctl then removes --prefix).
			mf.destPrefix = mf.prefix
		}
		dest, err := mf.destination(cmd, cf, args[0])
		if err != nil {
			return err
		}
		src, err := cf.client()
		if err != nil {
			return err
		}
		defer src.Close()
		dst, err := dest.connect()
		if err != nil {
			return err
		}
		defer dst.Close()
		// Ctrl-C or SIGTERM ends the mirror, which is its normal end.
		ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		m := &mirrorRun{flags: mf, src: src, srcFlags: cf, dst: dst, dest: dest}
		err = m.run(ctx, cmd.OutOrStdout())
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	return cmd
}

// mirrorDest is the destination's connection: its settings as clientFlags
// (for the errors that name endpoints and timeouts) and its credentials.
type mirrorDest struct {
	cf       *clientFlags
	insecure bool
	user     string
	password string
}

// destination gathers the destination's connection settings, asking for
// its password when --dest-user has none.
func (mf *mirrorFlags) destination(cmd *cobra.Command, cf *clientFlags, arg string) (*mirrorDest, error) {
	var eps []string
	for _, ep := range strings.Split(arg, ",") {
		if ep = strings.TrimSpace(ep); ep != "" {
			eps = append(eps, ep)
		}
	}
	if len(eps) == 0 {
		return nil, badArgs("make-mirror takes one destination argument")
	}
	if (mf.destCert == "") != (mf.destKey == "") {
		return nil, errors.New("--dest-cert and --dest-key go together (give both or neither)")
	}
	d := &mirrorDest{
		cf: &clientFlags{
			endpoints:      eps,
			dialTimeout:    cf.dialTimeout,
			commandTimeout: cf.commandTimeout,
			cacert:         mf.destCACert,
			cert:           mf.destCert,
			key:            mf.destKey,
		},
		insecure: mf.destInsecureTransport,
	}
	switch name, pass, hasPass := strings.Cut(mf.destUser, ":"); {
	case mf.destUser == "":
		if mf.destPassword != "" {
			return nil, errors.New("--dest-password needs --dest-user")
		}
	case hasPass && mf.destPassword != "":
		return nil, errors.New("destination password given twice (use --dest-user name:password or --dest-user name --dest-password password)")
	case hasPass:
		d.user, d.password = name, pass
	case mf.destPassword != "":
		d.user, d.password = name, mf.destPassword
	default:
		pw, err := askDestPassword(cmd.InOrStdin(), cmd.ErrOrStderr())
		if err != nil {
			return nil, err
		}
		if pw == "" {
			return nil, fmt.Errorf("--dest-user %s: no password (give --dest-user %s:PASSWORD or --dest-password, or type it when asked)", name, name)
		}
		d.user, d.password = name, pw
	}
	return d, nil
}

// askDestPassword asks for the destination's password on the terminal
// without echo, as etcdctl does, or reads the first line of stdin when it is
// not a terminal.
func askDestPassword(in io.Reader, prompt io.Writer) (string, error) {
	if f, ok := in.(*os.File); ok && isTerminal(f) {
		return askNoEcho(f, prompt, "Destination Password: ")
	}
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read the destination's password from stdin: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// connect dials the destination and, with --dest-user, authenticates.
func (d *mirrorDest) connect() (*clientv3.Client, error) {
	cfg := clientv3.Config{
		Endpoints:   d.cf.endpoints,
		DialTimeout: d.cf.dialTimeout,
		Logger:      zap.NewNop(),
		Username:    d.user,
		Password:    d.password,
	}
	if d.cf.cacert != "" || d.cf.cert != "" || d.cf.key != "" {
		info := transport.TLSInfo{CertFile: d.cf.cert, KeyFile: d.cf.key, TrustedCAFile: d.cf.cacert}
		tc, err := info.ClientConfig()
		if err != nil {
			return nil, fmt.Errorf("load the destination's TLS files (--dest-cacert, --dest-cert, --dest-key): %w", err)
		}
		cfg.TLS = tc
	} else if !d.insecure {
		cfg.TLS = &tls.Config{}
	}
	cli, err := clientv3.New(cfg)
	if errors.Is(err, rpctypes.ErrAuthFailed) {
		return nil, fmt.Errorf("authenticate as %s at the destination %s: %w (check --dest-user and --dest-password)", d.user, d.where(), err)
	}
	if err != nil {
		return nil, fmt.Errorf("connect to the destination %s: %w (is a member running there?)", d.where(), err)
	}
	return cli, nil
}

func (d *mirrorDest) where() string { return strings.Join(d.cf.endpoints, ",") }

// writeError wraps an error of a destination write, naming what was
// attempted and, where the destination refused it, what to change.
func (d *mirrorDest) writeError(action string, err error, maxTxnOps uint) error {
	action += " at the destination " + d.where()
	switch {
	case errors.Is(err, rpctypes.ErrUserEmpty), errors.Is(err, rpctypes.ErrInvalidAuthToken):
		return fmt.Errorf("%s: %w (the destination has authentication enabled: give --dest-user NAME:PASSWORD)", action, err)
	case errors.Is(err, rpctypes.ErrPermissionDenied):
		return fmt.Errorf("%s: %w (give --dest-user a user with readwrite permission on the mirrored keys)", action, err)
	case errors.Is(err, rpctypes.ErrTooManyOps):
		return fmt.Errorf("%s: %w (lower --max-txn-ops %d to the destination's --max-txn-ops)", action, err, maxTxnOps)
	}
	return d.cf.requestError(action, err)
}

// mirrorRun is one make-mirror: the source, the destination and the count
// of keys and changes copied.
type mirrorRun struct {
	flags    mirrorFlags
	src      *clientv3.Client
	srcFlags *clientFlags
	dst      *clientv3.Client
	dest     *mirrorDest
	total    atomic.Int64
}

// run copies the existing keys (unless --rev), then applies the changes
// from the watch until ctx ends or something fails. It prints the count
// every --progress-interval meanwhile.
func (m *mirrorRun) run(ctx context.Context, out io.Writer) error {
	if m.flags.progressInterval > 0 {
		pctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { // ends with pctx
			defer wg.Done()
			t := time.NewTicker(m.flags.progressInterval)
			defer t.Stop()
			for {
				select {
				case <-pctx.Done():
					return
				case <-t.C:
					fmt.Fprintln(out, m.total.Load())
				}
			}
		}()
		defer wg.Wait()
		defer cancel()
	}

	// etcdctl's arithmetic: the watch starts at --rev, and --rev 0 or 1
	// copies the existing keys.
	rev := max(m.flags.rev-1, 0)
	if rev == 0 {
		var err error
		if rev, err = m.sourceRevision(ctx); err != nil {
			return err
		}
		if err := m.copyExisting(ctx, rev); err != nil {
			return err
		}
	}
	return m.follow(ctx, rev)
}

// sourceRevision is the source's current revision, read with the range
// the mirror copies, so an unreachable source or one that refuses the read
// fails within --command-timeout.
func (m *mirrorRun) sourceRevision(ctx context.Context) (int64, error) {
	key, opts := m.flags.prefix, []clientv3.OpOption{clientv3.WithCountOnly()}
	if key == "" {
		key = "\x00"
		opts = append(opts, clientv3.WithFromKey())
	} else {
		opts = append(opts, clientv3.WithPrefix())
	}
	rctx, cancel := m.srcFlags.commandContext(ctx)
	defer cancel()
	resp, err := m.src.Get(rctx, key, opts...)
	if err != nil {
		return 0, m.srcFlags.requestError(fmt.Sprintf("read the keys under %q at the source", m.flags.prefix), err)
	}
	return resp.Header.Revision, nil
}

// rename is a source key's name at the destination.
func (m *mirrorRun) rename(key []byte) string {
	k := string(key)
	if rest, ok := strings.CutPrefix(k, m.flags.prefix); ok {
		return m.flags.destPrefix + rest
	}
	return k // the syncer reads only keys under the prefix
}

// commit applies ops in one destination transaction.
func (m *mirrorRun) commit(ctx context.Context, ops []clientv3.Op, action string) error {
	if len(ops) == 0 {
		return nil
	}
	tctx, cancel := m.dest.cf.commandContext(ctx)
	defer cancel()
	if _, err := m.dst.Txn(tctx).Then(ops...).Commit(); err != nil {
		return m.dest.writeError(action, err, m.flags.maxTxnOps)
	}
	return nil
}

// copyExisting puts the keys as they were at rev, in transactions of at
// most --max-txn-ops puts and about mirrorBatchBytes.
func (m *mirrorRun) copyExisting(ctx context.Context, rev int64) error {
	// A failed write stops the reads too.
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	s := mirror.NewSyncer(m.src, m.flags.prefix, rev)
	rc, errc := s.SyncBase(sctx)
	var (
		ops      []clientv3.Op
		size     int
		first    string
		failed   error
		mirrored int64
	)
	flush := func() error {
		err := m.commit(ctx, ops, fmt.Sprintf("copy %d keys from %q", len(ops), first))
		if err == nil {
			m.total.Add(mirrored)
		}
		ops, size, mirrored = ops[:0], 0, 0
		return err
	}
	for r := range rc {
		for _, kv := range r.Kvs {
			if failed != nil {
				continue // drain rc so the syncer ends
			}
			name := m.rename(kv.Key)
			n := len(name) + len(kv.Value)
			if len(ops) > 0 && (len(ops) == int(m.flags.maxTxnOps) || size+n > mirrorBatchBytes) {
				if failed = flush(); failed != nil {
					stop()
					continue
				}
			}
			if len(ops) == 0 {
				first = name
			}
			ops = append(ops, clientv3.OpPut(name, string(kv.Value)))
			size += n
			mirrored++
		}
	}
	err := <-errc
	if failed != nil {
		return failed
	}
	if err != nil {
		return m.srcFlags.requestError(fmt.Sprintf("read the keys under %q at the source at revision %d", m.flags.prefix, rev), err)
	}
	return flush()
}

// follow applies the source's changes after rev: the events of one source
// revision in one destination transaction (split at --max-txn-ops, as
// etcdctl does).
func (m *mirrorRun) follow(ctx context.Context, rev int64) error {
	s := mirror.NewSyncer(m.src, m.flags.prefix, rev)
	for wr := range s.SyncUpdates(ctx) {
		if wr.CompactRevision != 0 {
			return fmt.Errorf("mirror the changes from revision %d: %w (the source has compacted them; start again without --rev to copy the current keys)", rev+1, rpctypes.ErrCompacted)
		}
		if err := wr.Err(); err != nil {
			return m.srcFlags.requestError(fmt.Sprintf("watch the keys under %q at the source", m.flags.prefix), err)
		}
		var (
			ops     []clientv3.Op
			lastRev int64
		)
		for _, ev := range wr.Events {
			evRev := ev.Kv.ModRevision
			if len(ops) > 0 && (evRev != lastRev || len(ops) == int(m.flags.maxTxnOps)) {
				if err := m.commit(ctx, ops, fmt.Sprintf("apply revision %d", lastRev)); err != nil {
					return err
				}
				ops = ops[:0]
			}
			lastRev = evRev
			name := m.rename(ev.Kv.Key)
			switch ev.Type {
			case mvccpb.PUT:
				ops = append(ops, clientv3.OpPut(name, string(ev.Kv.Value)))
			case mvccpb.DELETE:
				ops = append(ops, clientv3.OpDelete(name))
			default:
				return fmt.Errorf("apply revision %d: unknown event type %v", evRev, ev.Type)
			}
			m.total.Add(1)
		}
		if err := m.commit(ctx, ops, fmt.Sprintf("apply revision %d", lastRev)); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("watch the keys under %q at the source: the watch ended (is the source still running?)", m.flags.prefix)
}
