package main

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/tendkv/tend/internal/testenv"
)

// These tests run tend make-mirror (and etcdctl's) as processes between
// two servers and wait, at most 10s each time, until the destination holds
// what the source holds.

var noTendEnv = []string{"TEND_ENDPOINTS=", "ETCDCTL_ENDPOINTS="}

// serverKind is a kind of server, a real etcd or tend's member: its shared
// one and how to start a fresh one.
type serverKind struct {
	shared func() string
	start  func(dir string) (endpoint string, stop func(), err error)
}

// forEachKind runs f as parallel subtests "etcd" and "tend".
func forEachKind(t *testing.T, f func(t *testing.T, k serverKind)) {
	t.Helper()
	for name, k := range map[string]serverKind{
		"etcd": {func() string { return etcdEndpoint }, startEtcd},
		"tend": {func() string { return tendEndpoint }, startTendMember},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f(t, k)
		})
	}
}

// startMirror starts tend make-mirror from src with args.
func startMirror(t *testing.T, src string, args ...string) *proc {
	t.Helper()
	return startProc(t, noTendEnv, tendBin, append([]string{"--endpoints", src, "make-mirror"}, args...)...)
}

// keysUnder reads the keys under prefix ("": every key) and their values.
func keysUnder(t *testing.T, cli *clientv3.Client, prefix string) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	key, opt := prefix, clientv3.WithPrefix()
	if prefix == "" {
		key, opt = "\x00", clientv3.WithFromKey()
	}
	resp, err := cli.Get(ctx, key, opt)
	if err != nil {
		t.Fatalf("get %q: %v", prefix, err)
	}
	kvs := map[string]string{}
	for _, kv := range resp.Kvs {
		kvs[string(kv.Key)] = string(kv.Value)
	}
	return kvs
}

// renamed is kvs with the prefix from replaced by to.
func renamed(kvs map[string]string, from, to string) map[string]string {
	out := map[string]string{}
	for k, v := range kvs {
		out[to+strings.TrimPrefix(k, from)] = v
	}
	return out
}

// brief prints kvs with long values shortened.
func brief(kvs map[string]string) string {
	short := map[string]string{}
	for k, v := range kvs {
		if len(v) > 40 {
			v = fmt.Sprintf("%.20q... (%d bytes)", v, len(v))
		}
		short[k] = v
	}
	return fmt.Sprintf("%q", short)
}

// awaitMirrored waits until the keys under dstPrefix at dst are those under
// srcPrefix at src, renamed.
func awaitMirrored(t *testing.T, src *clientv3.Client, srcPrefix string, dst *clientv3.Client, dstPrefix string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		want := renamed(keysUnder(t, src, srcPrefix), srcPrefix, dstPrefix)
		got := keysUnder(t, dst, dstPrefix)
		if maps.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 10s the destination holds under %q\n %s\nwant (the source's under %q)\n %s", dstPrefix, brief(got), srcPrefix, brief(want))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// awaitCount reads p's progress lines, each a count no smaller than the
// last, until one is n.
func awaitCount(t *testing.T, p *proc, n int) {
	t.Helper()
	last := -1
	deadline := time.Now().Add(10 * time.Second)
	for {
		if time.Now().After(deadline) {
			t.Fatalf("progress count %d after 10s, want %d", last, n)
		}
		l := p.line()
		c, err := strconv.Atoi(l)
		if err != nil || c < last {
			t.Fatalf("progress line %q after %d; want a count, never smaller", l, last)
		}
		if c == n {
			return
		}
		if c > n {
			t.Fatalf("progress count %d, want %d", c, n)
		}
		last = c
	}
}

// stopCounting interrupts p, which prints progress lines, and requires that
// it exits 0 with nothing on stderr.
func stopCounting(t *testing.T, p *proc) {
	t.Helper()
	p.interrupt()
	for {
		select {
		case l, open := <-p.lines:
			if !open {
				if code, stderr := p.wait(); code != 0 || stderr != "" {
					t.Errorf("%q after SIGINT: exit %d, stderr %q; want 0 and nothing", p.args, code, stderr)
				}
				return
			}
			if _, err := strconv.Atoi(l); err != nil {
				t.Errorf("%q printed %q, not a count", p.args, l)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%q did not exit within 10s of SIGINT", p.args)
		}
	}
}

func mirrorPut(t *testing.T, cli *clientv3.Client, key, value string, opts ...clientv3.OpOption) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := cli.Put(ctx, key, value, opts...)
	if err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
	return resp.Header.Revision
}

func mirrorDel(t *testing.T, cli *clientv3.Client, key string, opts ...clientv3.OpOption) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := cli.Delete(ctx, key, opts...)
	if err != nil {
		t.Fatalf("delete %s: %v", key, err)
	}
	return resp.Header.Revision
}

// TestMakeMirrorBetweenEtcdAndTend mirrors a real etcd to a tend member and
// a tend member to etcd, the two ways of a migration: the existing keys,
// then live puts, deletes and transactions, the progress count, prefixes
// rewritten, --rev replaying history and a compacted --rev refused.
func TestMakeMirrorBetweenEtcdAndTend(t *testing.T) {
	t.Parallel()
	for _, d := range []struct {
		name     string
		src, dst func(string) (string, func(), error)
	}{
		{"EtcdToTend", startEtcd, startTendMember},
		{"TendToEtcd", startTendMember, startEtcd},
	} {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			srcEP, stop, err := d.src(filepath.Join(t.TempDir(), "src"))
			if err != nil {
				t.Fatal(err)
			}
			defer stop()
			dstEP, stop2, err := d.dst(filepath.Join(t.TempDir(), "dst"))
			if err != nil {
				t.Fatal(err)
			}
			defer stop2()
			testMirror(t, srcEP, dstEP)
		})
	}
}

func testMirror(t *testing.T, srcEP, dstEP string) {
	src, dst := newClient(t, srcEP), newClient(t, dstEP)
	ctx := func() context.Context {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		t.Cleanup(cancel)
		return ctx
	}

	// The whole keyspace: existing keys (one on a lease, which is not
	// copied), then changes.
	mirrorPut(t, src, "/app/a", "1")
	mirrorPut(t, src, "/app/b", "\x00binary\xff\n")
	mirrorPut(t, src, "/other/x", "o")
	lease, err := src.Grant(ctx(), 600)
	if err != nil {
		t.Fatal(err)
	}
	mirrorPut(t, src, "/app/leased", "l", clientv3.WithLease(lease.ID))
	p := startMirror(t, srcEP, "--progress-interval", "100ms", dstEP)
	awaitMirrored(t, src, "", dst, "")
	awaitCount(t, p, 4)
	mirrorPut(t, src, "/app/c", "3")
	mirrorPut(t, src, "/app/a", "1b")
	mirrorDel(t, src, "/other/x")
	txn, err := src.Txn(ctx()).Then(clientv3.OpPut("/app/t1", "x"), clientv3.OpPut("/app/t2", "y"), clientv3.OpDelete("/app/b")).Commit()
	if err != nil || !txn.Succeeded {
		t.Fatalf("txn: %v", err)
	}
	awaitMirrored(t, src, "", dst, "")
	awaitCount(t, p, 4+6)
	stopCounting(t, p)
	resp, err := dst.Get(ctx(), "/app/t", clientv3.WithPrefix())
	if err != nil || len(resp.Kvs) != 2 || resp.Kvs[0].ModRevision != resp.Kvs[1].ModRevision {
		t.Errorf("a source transaction at the destination: %v %v; want its two puts at one revision", resp, err)
	}
	resp, err = dst.Get(ctx(), "/app/leased")
	if err != nil || len(resp.Kvs) != 1 || resp.Kvs[0].Lease != 0 {
		t.Errorf("a key on a lease at the destination: %v %v; want it without a lease", resp, err)
	}

	// --prefix to --dest-prefix, existing keys and changes.
	p = startMirror(t, srcEP, "--prefix", "/app/", "--dest-prefix", "/copy/", dstEP)
	awaitMirrored(t, src, "/app/", dst, "/copy/")
	mirrorPut(t, src, "/app/new", "n")
	mirrorDel(t, src, "/app/c")
	mirrorPut(t, src, "/other/y", "not mirrored")
	awaitMirrored(t, src, "/app/", dst, "/copy/")
	p.stopped()
	if got := keysUnder(t, dst, "/other/y"); len(got) != 0 {
		t.Errorf("a key outside --prefix was mirrored: %q", got)
	}

	// --no-dest-prefix: the keys lose the prefix.
	mirrorPut(t, src, "/nd/nd-1", "1")
	p = startMirror(t, srcEP, "--prefix", "/nd/", "--no-dest-prefix", dstEP)
	awaitMirrored(t, src, "/nd/nd-", dst, "nd-")
	mirrorPut(t, src, "/nd/nd-2", "2")
	awaitMirrored(t, src, "/nd/nd-", dst, "nd-")
	p.stopped()
	if got := keysUnder(t, dst, "nd-"); len(got) != 2 {
		t.Errorf("--no-dest-prefix: %q", got)
	}

	// Transactions of at most --max-txn-ops operations and about 1 MiB,
	// for the existing keys and for a source transaction.
	for i := range 7 {
		mirrorPut(t, src, fmt.Sprintf("/batch/k%d", i), "v")
	}
	p = startMirror(t, srcEP, "--prefix", "/batch/", "--max-txn-ops", "2", dstEP)
	awaitMirrored(t, src, "/batch/", dst, "/batch/")
	var ops []clientv3.Op
	for i := range 5 {
		ops = append(ops, clientv3.OpPut(fmt.Sprintf("/batch/t%d", i), "t"))
	}
	if _, err := src.Txn(ctx()).Then(ops...).Commit(); err != nil {
		t.Fatal(err)
	}
	awaitMirrored(t, src, "/batch/", dst, "/batch/")
	p.stopped()
	// Three values of 600 KiB are more than one request may carry.
	big := strings.Repeat("b", 600<<10)
	for i := range 3 {
		mirrorPut(t, src, fmt.Sprintf("/big/%d", i), big)
	}
	p = startMirror(t, srcEP, "--prefix", "/big/", dstEP)
	awaitMirrored(t, src, "/big/", dst, "/big/")
	p.stopped()
	// More than the destination takes in one transaction (128).
	for i := range 130 {
		mirrorPut(t, src, fmt.Sprintf("/many/k%03d", i), "v")
	}
	out, stderr, code := run(t, "", noTendEnv, tendBin, "--endpoints", srcEP, "make-mirror", "--prefix", "/many/", "--max-txn-ops", "200", dstEP)
	if code != 1 || out != "" || !strings.Contains(stderr, "too many operations in txn request") || !strings.Contains(stderr, "lower --max-txn-ops 200") {
		t.Errorf("make-mirror --max-txn-ops 200: exit %d, stdout %q, stderr %q", code, out, stderr)
	}

	// --rev replays the changes from that revision on, and the keys keep
	// --prefix (etcdctl removes it when --rev is given).
	mirrorPut(t, src, "/rev/a", "1")
	from := mirrorPut(t, src, "/rev/b", "2")
	mirrorDel(t, src, "/rev/a")
	mirrorPut(t, src, "/rev/c", "3")
	mirrorPut(t, dst, "/rev/a", "deleted by the replay")
	p = startMirror(t, srcEP, "--prefix", "/rev/", "--rev", fmt.Sprint(from), dstEP)
	awaitMirrored(t, src, "/rev/", dst, "/rev/")
	p.stopped()
	if got := keysUnder(t, dst, "b"); len(got) != 0 {
		t.Errorf("--rev with --prefix put keys without the prefix: %q", got)
	}

	// A compacted --rev is refused, naming what to do.
	if _, err := src.Compact(ctx(), mirrorPut(t, src, "/rev/d", "4"), clientv3.WithCompactPhysical()); err != nil {
		t.Fatal(err)
	}
	out, stderr, code = run(t, "", noTendEnv, tendBin, "--endpoints", srcEP, "make-mirror", "--prefix", "/rev/", "--rev", fmt.Sprint(from), dstEP)
	if code != 1 || out != "" || !strings.Contains(stderr, "required revision has been compacted") || !strings.Contains(stderr, "start again without --rev") {
		t.Errorf("make-mirror --rev of a compacted revision: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
}

// TestMakeMirrorDestinationRefuses mirrors to a destination with
// authentication enabled: without a user, with a wrong password and as a
// user who may only read, make-mirror fails at once saying why; as root it
// mirrors.
func TestMakeMirrorDestinationRefuses(t *testing.T) {
	t.Parallel()
	forEachKind(t, testMirrorDestinationRefuses)
}

func testMirrorDestinationRefuses(t *testing.T, k serverKind) {
	dstEP, stop, err := k.start(filepath.Join(t.TempDir(), "dst"))
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	for _, args := range [][]string{
		{"user", "add", "root", "--new-user-password", "rootpw"},
		{"user", "add", "bob", "--new-user-password", "bobpw"},
		{"role", "add", "reader"},
		{"role", "grant-permission", "reader", "read", "/", "--prefix"},
		{"user", "grant-role", "bob", "reader"},
		{"auth", "enable"},
	} {
		if r := tendAt(t, dstEP, nil, args...); r.err != nil {
			t.Fatalf("tend %q: %v %s", args, r.err, r.stderr)
		}
	}
	const prefix = "/mm-auth/"
	srcEP := k.shared()
	src := newClient(t, srcEP)
	mirrorPut(t, src, prefix+"k", "v")

	for _, c := range []struct {
		stdin string
		args  []string
		want  []string
	}{
		{"", nil, []string{"user name is empty", "give --dest-user"}},
		{"", []string{"--dest-user", "root:wrong"}, []string{"authentication failed", "check --dest-user and --dest-password"}},
		{"wrong\n", []string{"--dest-user", "root"}, []string{"authentication failed", "check --dest-user and --dest-password"}},
		{"", []string{"--dest-user", "root"}, []string{"--dest-user root: no password"}},
		{"", []string{"--dest-user", "bob:bobpw"}, []string{"permission denied", "readwrite permission"}},
		{"", []string{"--dest-user", "root:rootpw", "--dest-password", "rootpw"}, []string{"password given twice"}},
	} {
		args := append([]string{"--endpoints", srcEP, "make-mirror", "--prefix", prefix}, c.args...)
		out, stderr, code := run(t, c.stdin, noTendEnv, tendBin, append(args, dstEP)...)
		for _, w := range c.want {
			if code != 1 || out != "" || !strings.Contains(stderr, w) {
				t.Errorf("make-mirror %q: exit %d, stdout %q, stderr %q; want 1 and %q", c.args, code, out, stderr, w)
			}
		}
	}

	rootCli, err := clientv3.New(clientv3.Config{Endpoints: []string{dstEP}, DialTimeout: 5 * time.Second, Username: "root", Password: "rootpw", Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer rootCli.Close()
	p := startMirror(t, srcEP, "--prefix", prefix, "--dest-user", "root", "--dest-password", "rootpw", dstEP)
	awaitMirrored(t, src, prefix, rootCli, prefix)
	mirrorPut(t, src, prefix+"k2", "v2")
	awaitMirrored(t, src, prefix, rootCli, prefix)
	p.stopped()
}

// mirrorBadArgs are make-mirror's argument errors, in etcdctl's words, each
// with exit status 128.
var mirrorBadArgs = []struct {
	args []string
	err  string
}{
	{[]string{"make-mirror"}, "make-mirror takes one destination argument"},
	{[]string{"make-mirror", "a:1", "b:2"}, "make-mirror takes one destination argument"},
	{[]string{"make-mirror", "--dest-prefix", "/x/", "--no-dest-prefix", "DEST"}, "`--dest-prefix` and `--no-dest-prefix` cannot be set at the same time, choose one"},
}

// TestMakeMirrorMatchEtcdctl runs tend's make-mirror and the real
// etcdctl's side by side: the same argument errors with the same exit
// status, and the same keys at the destination from the same source. It
// also pins the differences README.md describes.
func TestMakeMirrorMatchEtcdctl(t *testing.T) {
	t.Parallel()
	forEachKind(t, testMirrorMatchEtcdctl)
}

func testMirrorMatchEtcdctl(t *testing.T, k serverKind) {
	_, etcdctl := testenv.EtcdBinaries(t)
	srcEP := k.shared()
	dstEP, stop, err := k.start(filepath.Join(t.TempDir(), "dst"))
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	for _, c := range mirrorBadArgs {
		args := append([]string{"--endpoints", srcEP}, c.args...)
		if args[len(args)-1] == "DEST" {
			args[len(args)-1] = dstEP
		}
		for _, bin := range []struct {
			path string
			env  []string
		}{{etcdctl, nil}, {tendBin, noTendEnv}} {
			out, stderr, code := run(t, "", bin.env, bin.path, args...)
			if code != 128 || out != "" || stderr != "Error: "+c.err+"\n" {
				t.Errorf("%s %q: exit %d, stdout %q, stderr %q; want 128 and Error: %s", filepath.Base(bin.path), c.args, code, out, stderr, c.err)
			}
		}
	}

	const prefix = "/mm-cmp/"
	src, dst := newClient(t, srcEP), newClient(t, dstEP)
	mirrorPut(t, src, prefix+"a", "1")
	mirrorPut(t, src, prefix+"b", "2")
	ctl := startProc(t, nil, etcdctl, "--endpoints", srcEP, "make-mirror", "--prefix", prefix, "--dest-prefix", "/by-etcdctl/", dstEP)
	tnd := startMirror(t, srcEP, "--prefix", prefix, "--dest-prefix", "/by-tend/", dstEP)
	awaitMirrored(t, src, prefix, dst, "/by-etcdctl/")
	awaitMirrored(t, src, prefix, dst, "/by-tend/")
	mirrorPut(t, src, prefix+"c", "3")
	mirrorDel(t, src, prefix+"a")
	awaitMirrored(t, src, prefix, dst, "/by-etcdctl/")
	awaitMirrored(t, src, prefix, dst, "/by-tend/")
	tnd.stopped()
	// etcdctl does not catch SIGINT: it dies of it.
	ctl.interrupt()
	if code, _ := ctl.wait(); code != -1 {
		t.Errorf("etcdctl make-mirror after SIGINT: exit %d, want death by the signal; README's description of the difference is out of date", code)
	}

	// etcdctl --rev with --prefix and no --dest-prefix removes the prefix.
	from := mirrorPut(t, src, prefix+"d", "4")
	ctl = startProc(t, nil, etcdctl, "--endpoints", srcEP, "make-mirror", "--prefix", prefix, "--rev", fmt.Sprint(from), dstEP)
	deadline := time.Now().Add(10 * time.Second)
	for len(keysUnder(t, dst, "d")) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("etcdctl make-mirror --prefix %s --rev did not put d at the root of the destination; README's description of the difference is out of date (destination: %q)", prefix, keysUnder(t, dst, ""))
		}
		time.Sleep(20 * time.Millisecond)
	}
	ctl.interrupt()
	ctl.wait()
}
