package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/tendkv/tend/internal/freeport"
	"github.com/tendkv/tend/internal/lockedbuf"
	"github.com/tendkv/tend/internal/testenv"
)

// serverProc is a `tend server` process.
type serverProc struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	done   chan error
}

// startServer runs `tend server` on dir with the given client and peer
// ports and waits until it answers Status.
func startServer(t *testing.T, dir string, clientPort, peerPort int) *serverProc {
	t.Helper()
	cu := fmt.Sprintf("http://127.0.0.1:%d", clientPort)
	pu := fmt.Sprintf("http://127.0.0.1:%d", peerPort)
	cmd := exec.Command(tendBin, "server", "--name", "s1", "--data-dir", dir,
		"--listen-client-urls", cu, "--advertise-client-urls", cu,
		"--listen-peer-urls", pu, "--initial-advertise-peer-urls", pu,
		"--initial-cluster", "s1="+pu, "--snapshot-count", "20",
		"--heartbeat-interval", "10", "--election-timeout", "100", "--log-level", "warn")
	p := &serverProc{cmd: cmd, stderr: &bytes.Buffer{}, done: make(chan error, 1)}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start tend server: %v", err)
	}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			cmd.Process.Kill()
			<-p.done
		}
	})
	cli := serverClient(t, clientPort)
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := cli.Status(c, cu)
		cancel()
		if err == nil {
			return p
		}
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("tend server exited: %v\n%s", err, p.stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("tend server not serving within 15s: %v\n%s", err, p.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func serverClient(t *testing.T, clientPort int) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{fmt.Sprintf("http://127.0.0.1:%d", clientPort)},
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// wait waits for the process to exit within d.
func (p *serverProc) wait(t *testing.T, d time.Duration) error {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err
		return err
	case <-time.After(d):
		t.Fatalf("tend server did not exit within %v\n%s", d, p.stderr)
		return nil
	}
}

// TestServerKill9 writes to a `tend server`, kills it with SIGKILL, starts
// it again on the same data dir, and finds every acknowledged write.
func TestServerKill9(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "s1.etcd")
	clientPort, peerPort := freeport.Port(t), freeport.Port(t)
	p := startServer(t, dir, clientPort, peerPort)
	cli := serverClient(t, clientPort)
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	lease, err := cli.Grant(c, 600)
	if err != nil {
		t.Fatal(err)
	}
	const n = 100
	var last int64
	for i := range n {
		resp, err := cli.Put(c, fmt.Sprintf("/k9/%03d", i), fmt.Sprint(i), clientv3.WithLease(lease.ID))
		if err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
		last = resp.Header.Revision
	}
	// Let a snapshot cover most of the log (the member snapshots a while
	// after the writes, once the store holds them durably), then write
	// more, so the restart needs snapshot, store and WAL together.
	deadline := time.Now().Add(10 * time.Second)
	for {
		snaps, _ := filepath.Glob(filepath.Join(dir, "member", "snap", "*.snap"))
		if len(snaps) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no snapshot within 10s\n%s", p.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for i := n; i < 2*n; i++ {
		resp, err := cli.Put(c, fmt.Sprintf("/k9/%03d", i), fmt.Sprint(i), clientv3.WithLease(lease.ID))
		if err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
		last = resp.Header.Revision
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.wait(t, 10*time.Second)

	p2 := startServer(t, dir, clientPort, peerPort)
	get, err := cli.Get(c, "/k9/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	if len(get.Kvs) != 2*n || get.Header.Revision != last {
		t.Fatalf("after kill -9: %d keys at revision %d, want %d at %d", len(get.Kvs), get.Header.Revision, 2*n, last)
	}
	ttl, err := cli.TimeToLive(c, lease.ID, clientv3.WithAttachedKeys())
	if err != nil || ttl.TTL <= 0 || len(ttl.Keys) != 2*n {
		t.Fatalf("lease after kill -9 = %+v, %v; want alive with %d keys", ttl, err, 2*n)
	}
	put, err := cli.Put(c, "/k9/next", "x")
	if err != nil || put.Header.Revision != last+1 {
		t.Fatalf("put after kill -9 = %v, %v; want revision %d", put, err, last+1)
	}

	// SIGTERM stops it cleanly.
	if err := p2.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p2.wait(t, 10*time.Second); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, p2.stderr)
	}
}

func TestServerFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--initial-cluster-state", "bogus"}, "--initial-cluster-state"},
		{[]string{"--log-level", "loud"}, "--log-level"},
		{[]string{"--listen-client-urls", "127.0.0.1:2379"}, "--listen-client-urls"},
		{[]string{"--election-timeout", "10"}, "--election-timeout"},
		{[]string{"--initial-cluster", "other=http://127.0.0.1:2380"}, "--initial-cluster"},
		{[]string{"--auto-compaction-retention", "1x"}, `--auto-compaction-retention "1x": give a duration`},
		{[]string{"--auto-compaction-mode", "hourly", "--auto-compaction-retention", "1"}, `--auto-compaction-mode "hourly"`},
	} {
		args := append([]string{"server", "--data-dir", filepath.Join(t.TempDir(), "d")}, tc.args...)
		cmd := exec.Command(tendBin, args...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		done := make(chan error, 1)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("tend %v: err %v, stderr %q; want a failure naming %s", args, err, stderr.String(), tc.want)
			}
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Errorf("tend %v did not fail within 10s", args)
		}
	}
}

// TestServerWithEtcdctl drives `tend server` with the real etcdctl.
func TestServerWithEtcdctl(t *testing.T) {
	_, etcdctl := testenv.EtcdBinaries(t)
	clientPort, peerPort := freeport.Port(t), freeport.Port(t)
	startServer(t, filepath.Join(t.TempDir(), "s1.etcd"), clientPort, peerPort)
	ep := fmt.Sprintf("127.0.0.1:%d", clientPort)
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(etcdctl, append([]string{"--endpoints", ep, "--command-timeout", "10s"}, args...)...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		done := make(chan error, 1)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("etcdctl %v: %v\n%s", args, err, errb.String())
			}
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Fatalf("etcdctl %v did not finish within 20s", args)
		}
		return out.String()
	}
	if out := run("put", "/app/config", "level: debug"); strings.TrimSpace(out) != "OK" {
		t.Errorf("put printed %q, want OK", out)
	}
	if out := run("get", "/app/config", "--print-value-only"); strings.TrimSpace(out) != "level: debug" {
		t.Errorf("get printed %q", out)
	}
	if out := run("endpoint", "health"); !strings.Contains(out, "is healthy") {
		t.Errorf("endpoint health printed %q", out)
	}
	if out := run("member", "list"); !strings.Contains(out, "s1") || !strings.Contains(out, "started") {
		t.Errorf("member list printed %q", out)
	}
	var status []struct {
		Status struct {
			Leader uint64 `json:"leader"`
			Header struct {
				MemberID uint64 `json:"member_id"`
			} `json:"header"`
		}
	}
	if err := json.Unmarshal([]byte(run("endpoint", "status", "-w", "json")), &status); err != nil {
		t.Fatal(err)
	}
	if len(status) != 1 || status[0].Status.Leader == 0 || status[0].Status.Leader != status[0].Status.Header.MemberID {
		t.Errorf("endpoint status = %+v, want this member leading", status)
	}
	dbPath := filepath.Join(t.TempDir(), "backup.db")
	run("snapshot", "save", dbPath)
	if fi, err := os.Stat(dbPath); err != nil || fi.Size() == 0 {
		t.Errorf("snapshot file: %v", err)
	}
}

// tend snapshot restore turns a snapshot of a tend member, or of a real
// etcd member, into the data dir of a member that starts a new cluster:
// the keys and their revisions are there, writes go on from the
// snapshot's revision, and the bad cases are refused leaving nothing.
func TestSnapshotRestore(t *testing.T) {
	for _, src := range []struct{ name, endpoint string }{{"tend", tendEndpoint}, {"etcd", etcdEndpoint}} {
		t.Run(src.name, func(t *testing.T) {
			t.Parallel()
			prefix := fmt.Sprintf("/snapshot-restore-%s-%d/", src.name, time.Now().UnixNano())
			for i := range 3 {
				okAt(t, src.endpoint, "put", fmt.Sprintf("%sk%d", prefix, i), fmt.Sprint("v", i))
			}
			want := okAt(t, src.endpoint, "get", "--prefix", prefix, "-w", "json")
			snap := filepath.Join(t.TempDir(), "snap.db")
			okAt(t, src.endpoint, "snapshot", "save", snap)

			dir := filepath.Join(t.TempDir(), "restored")
			out, err := exec.Command(tendBin, "snapshot", "restore", snap, "--data-dir", dir).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "Restored "+snap+" into "+dir+" (revision ") || !strings.Contains(string(out), " keys, ") {
				t.Fatalf("snapshot restore: %v\n%s", err, out)
			}
			var rev int64
			fmt.Sscanf(string(out)[strings.Index(string(out), "(revision ")+len("(revision "):], "%d", &rev)

			// etcdutl's cluster flags are refused, naming where they go.
			if out, err := exec.Command(tendBin, "snapshot", "restore", snap, "--data-dir", t.TempDir(), "--name", "m1").CombinedOutput(); err == nil ||
				!strings.Contains(string(out), "--name: tend snapshot restore takes no cluster flags") || !strings.Contains(string(out), "give --name to tend server") {
				t.Errorf("restore --name: %v %s", err, out)
			}
			// A second restore into the same dir is refused.
			if out, err := exec.Command(tendBin, "snapshot", "restore", snap, "--data-dir", dir).CombinedOutput(); err == nil || !strings.Contains(string(out), "already holds a member") {
				t.Errorf("restore over a member: %v %s", err, out)
			}

			cp, pp := freeport.Port(t), freeport.Port(t)
			startServer(t, dir, cp, pp)
			ep := fmt.Sprintf("http://127.0.0.1:%d", cp)
			var got, orig struct {
				Header struct{ Revision int64 } `json:"header"`
				Kvs    []struct {
					Key, Value     string
					CreateRevision int64 `json:"create_revision"`
					ModRevision    int64 `json:"mod_revision"`
				} `json:"kvs"`
			}
			if err := json.Unmarshal([]byte(want), &orig); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal([]byte(okAt(t, ep, "get", "--prefix", prefix, "-w", "json")), &got); err != nil {
				t.Fatal(err)
			}
			if len(got.Kvs) != 3 || fmt.Sprint(got.Kvs) != fmt.Sprint(orig.Kvs) {
				t.Errorf("restored keys %+v, want %+v", got.Kvs, orig.Kvs)
			}
			if got.Header.Revision != rev || rev < orig.Header.Revision {
				t.Errorf("restored member at revision %d (restore said %d), the source was at %d when read", got.Header.Revision, rev, orig.Header.Revision)
			}
			var put struct {
				Header struct{ Revision int64 } `json:"header"`
			}
			if err := json.Unmarshal([]byte(okAt(t, ep, "put", prefix+"after", "x", "-w", "json")), &put); err != nil || put.Header.Revision != rev+1 {
				t.Errorf("first write after the restore at revision %d (%v), want %d", put.Header.Revision, err, rev+1)
			}
		})
	}

	// A corrupted snapshot is refused and leaves no member behind.
	snap := filepath.Join(t.TempDir(), "snap.db")
	okAt(t, tendEndpoint, "snapshot", "save", snap)
	b, err := os.ReadFile(snap)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	os.WriteFile(snap, b, 0o600)
	dir := filepath.Join(t.TempDir(), "bad")
	if out, err := exec.Command(tendBin, "snapshot", "restore", snap, "--data-dir", dir).CombinedOutput(); err == nil || !strings.Contains(string(out), "SHA-256 mismatch") {
		t.Errorf("restore of a corrupted snapshot: %v %s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "member")); !os.IsNotExist(err) {
		t.Errorf("a failed restore left %s/member: %v", dir, err)
	}
}

// The documented way to restore a cluster: the same snapshot restored
// once per member, each into its own data dir, then the members started
// as a new cluster (here by tend cluster up, whose members' data dirs are
// <data-dir>/m1...). Every member serves the snapshot's keys and the
// writes after it.
func TestSnapshotRestoreCluster(t *testing.T) {
	prefix := fmt.Sprintf("/snapshot-restore-cluster-%d/", time.Now().UnixNano())
	okAt(t, tendEndpoint, "put", prefix+"k", "v")
	snap := filepath.Join(t.TempDir(), "snap.db")
	okAt(t, tendEndpoint, "snapshot", "save", snap)
	dir := t.TempDir()
	for _, m := range []string{"m1", "m2", "m3"} {
		if out, err := exec.Command(tendBin, "snapshot", "restore", snap, "--data-dir", filepath.Join(dir, m)).CombinedOutput(); err != nil {
			t.Fatalf("restore for %s: %v\n%s", m, err, out)
		}
	}
	up := startClusterUp(t, dir)
	okAt(t, up.eps[2], "put", prefix+"after", "x")
	for _, ep := range up.eps {
		want(t, "restored key through "+ep, okAt(t, ep, "get", prefix+"k"), "v")
		want(t, "write after the restore through "+ep, okAt(t, ep, "get", prefix+"after"), "x")
	}
}

// tend snapshot status prints what etcdutl snapshot status prints, for a
// snapshot of tend and one of etcd (the table only differs in style).
func TestSnapshotStatusMatchesEtcdutl(t *testing.T) {
	t.Parallel()
	etcdutl := testenv.Etcdutl(t)
	for _, src := range []struct{ name, endpoint string }{{"tend", tendEndpoint}, {"etcd", etcdEndpoint}} {
		snap := filepath.Join(t.TempDir(), src.name+".db")
		okAt(t, src.endpoint, "snapshot", "save", snap)
		for _, args := range [][]string{{"snapshot", "status", snap}, {"snapshot", "status", "-w", "json", snap}} {
			want, err := exec.Command(etcdutl, args...).Output()
			if err != nil {
				t.Fatalf("etcdutl %q: %v", args, err)
			}
			got, err := exec.Command(tendBin, args...).Output()
			if err != nil || string(got) != string(want) {
				t.Errorf("tend %q (%s snapshot): %v\n got %q\netcdutl %q", args, src.name, err, got, want)
			}
			if !strings.Contains(string(got), "3.7.0") {
				t.Errorf("tend %q (%s snapshot) = %q: no storage version", args, src.name, got)
			}
		}
	}
	if out, err := exec.Command(tendBin, "snapshot", "status", filepath.Join(t.TempDir(), "none.db")).CombinedOutput(); err == nil || !strings.Contains(string(out), "no such file") {
		t.Errorf("status of a missing file: %v %s", err, out)
	}
}

// The other way: etcdutl snapshot restore takes a snapshot of tend, and
// the real etcd started on the restored data dir serves tend's keys and
// leases and writes on after their revision.
func TestSnapshotRestoresIntoEtcd(t *testing.T) {
	t.Parallel()
	etcdBin, _ := testenv.EtcdBinaries(t)
	etcdutl := testenv.Etcdutl(t)
	prefix := fmt.Sprintf("/to-etcd-%d/", time.Now().UnixNano())
	okAt(t, tendEndpoint, "put", prefix+"a", "1")
	okAt(t, tendEndpoint, "put", prefix+"b", "2")
	snap := filepath.Join(t.TempDir(), "snap.db")
	okAt(t, tendEndpoint, "snapshot", "save", snap)
	st, err := exec.Command(tendBin, "snapshot", "status", "-w", "json", snap).Output()
	if err != nil {
		t.Fatal(err)
	}
	var status struct{ Revision int64 }
	if err := json.Unmarshal(st, &status); err != nil {
		t.Fatal(err)
	}

	dir := filepath.Join(t.TempDir(), "etcd")
	cp, pp := freeport.Port(t), freeport.Port(t)
	cu, pu := fmt.Sprintf("http://127.0.0.1:%d", cp), fmt.Sprintf("http://127.0.0.1:%d", pp)
	if out, err := exec.Command(etcdutl, "snapshot", "restore", snap, "--data-dir", dir, "--name", "e1",
		"--initial-cluster", "e1="+pu, "--initial-advertise-peer-urls", pu).CombinedOutput(); err != nil {
		t.Fatalf("etcdutl snapshot restore of a tend snapshot: %v\n%s", err, out)
	}
	e := exec.Command(etcdBin, "--name", "e1", "--data-dir", dir, "--listen-client-urls", cu, "--advertise-client-urls", cu,
		"--listen-peer-urls", pu, "--initial-advertise-peer-urls", pu, "--initial-cluster", "e1="+pu, "--log-level", "error")
	var stderr bytes.Buffer
	e.Stderr = &stderr
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { e.Process.Kill(); e.Wait() }()
	deadline := time.Now().Add(20 * time.Second)
	for tendAt(t, cu, nil, "endpoint", "health").err != nil {
		if time.Now().After(deadline) {
			t.Fatalf("etcd on the restored data dir is not healthy within 20s:\n%s", stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	want(t, "a from tend, read from etcd", okAt(t, cu, "get", prefix+"a"), "1")
	want(t, "b from tend, read from etcd", okAt(t, cu, "get", prefix+"b"), "2")
	var put struct {
		Header struct{ Revision int64 } `json:"header"`
	}
	if err := json.Unmarshal([]byte(okAt(t, cu, "put", prefix+"c", "3", "-w", "json")), &put); err != nil || put.Header.Revision != status.Revision+1 {
		t.Errorf("first write to etcd after the restore at revision %d (%v), want %d", put.Header.Revision, err, status.Revision+1)
	}
}

// Disaster recovery with a running agent: the cluster is restored from a
// snapshot older than what the agent has rendered, with --bump-revision
// and --mark-compacted, on the same endpoint. The agent's watch, resumed
// past the snapshot's revision, is told "compacted": it reads again,
// renders the snapshot's value, and follows the writes after the restore.
func TestAgentFollowsARestoreWithBump(t *testing.T) {
	t.Parallel()
	cp, pp := freeport.Port(t), freeport.Port(t)
	ep := fmt.Sprintf("http://127.0.0.1:%d", cp)
	old := startServer(t, filepath.Join(t.TempDir(), "old"), cp, pp)
	okAt(t, ep, "put", "/dr/v", "in-snapshot")
	snap := filepath.Join(t.TempDir(), "snap.db")
	okAt(t, ep, "snapshot", "save", snap)
	for i := range 5 {
		okAt(t, ep, "put", "/dr/v", fmt.Sprint("later-", i))
	}

	dir := t.TempDir()
	conf := "store {\n  endpoints = [\"" + ep + "\"]\n}\n" +
		"template \"v\" {\n  contents    = \"{{ key \\\"/dr/v\\\" }}\"\n  destination = \"v.conf\"\n}\n"
	if err := os.WriteFile(filepath.Join(dir, "agent.hcl"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	agentCmd := exec.Command(tendBin, "agent", "--config", "agent.hcl", "--log-level", "debug")
	agentCmd.Dir = dir
	logs := &lockedbuf.Buffer{}
	agentCmd.Stderr = logs
	if err := agentCmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { agentCmd.Process.Kill(); agentCmd.Wait() }()
	file := func(want string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			if b, _ := os.ReadFile(filepath.Join(dir, "v.conf")); string(b) == want {
				return
			}
			if time.Now().After(deadline) {
				b, _ := os.ReadFile(filepath.Join(dir, "v.conf"))
				t.Fatalf("v.conf = %q, want %q within 30s; agent log:\n%s", b, want, logs.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	file("later-4")

	old.cmd.Process.Kill()
	old.done <- <-old.done // keep it for the cleanup
	restored := filepath.Join(t.TempDir(), "restored")
	if out, err := exec.Command(tendBin, "snapshot", "restore", snap, "--data-dir", restored, "--bump-revision", "1000", "--mark-compacted").CombinedOutput(); err != nil {
		t.Fatalf("restore: %v\n%s", err, out)
	}
	startServer(t, restored, cp, pp)
	file("in-snapshot")
	okAt(t, ep, "put", "/dr/v", "after-restore")
	file("after-restore")
	if !strings.Contains(logs.String(), "compacted") {
		t.Errorf("the agent did not log the compaction that made it read again:\n%s", logs.String())
	}

	// The flags go together, as etcdutl's.
	for _, args := range [][]string{{"--bump-revision", "10"}, {"--mark-compacted"}} {
		out, err := exec.Command(tendBin, append([]string{"snapshot", "restore", snap, "--data-dir", t.TempDir()}, args...)...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "--mark-compacted") || !strings.Contains(string(out), "--bump-revision") {
			t.Errorf("restore %v: %v %s, want both flags named", args, err, out)
		}
	}
}
