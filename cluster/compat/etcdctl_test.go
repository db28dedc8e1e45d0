package compat

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tendkv/tend/internal/freeport"
	"github.com/tendkv/tend/internal/testenv"
)

var (
	tendBinOnce sync.Once
	tendBin     string
	tendBinErr  error
)

// buildTend builds the tend binary once per test run.
func buildTend(t *testing.T) string {
	t.Helper()
	tendBinOnce.Do(func() {
		dir, err := os.MkdirTemp("", "tend-compat-")
		if err != nil {
			tendBinErr = err
			return
		}
		tendBin = filepath.Join(dir, "tend")
		out, err := exec.Command("go", "build", "-o", tendBin, "github.com/tendkv/tend/cmd/tend").CombinedOutput()
		if err != nil {
			tendBinErr = fmt.Errorf("build tend: %v\n%s", err, out)
		}
	})
	if tendBinErr != nil {
		t.Fatal(tendBinErr)
	}
	return tendBin
}

// server is a member process: `tend server` or a real etcd, with etcd's
// flags.
type server struct {
	name     string
	endpoint string
	peer     string
}

func startServer(t *testing.T, name string, argv ...string) server {
	t.Helper()
	client, peer := freeport.Addr(t), freeport.Addr(t)
	args := append(argv[1:],
		"--name", name,
		"--data-dir", filepath.Join(t.TempDir(), name+".etcd"),
		"--listen-client-urls", "http://"+client,
		"--advertise-client-urls", "http://"+client,
		"--listen-peer-urls", "http://"+peer,
		"--initial-advertise-peer-urls", "http://"+peer,
		"--initial-cluster", name+"=http://"+peer,
		"--log-level", "error",
	)
	cmd := exec.Command(argv[0], args...)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }() // ends when the process exits
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	// Ready when a client request goes through.
	deadline := time.Now().Add(20 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", client, time.Second)
		if err == nil {
			conn.Close()
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("%s exited: %v\n%s", name, err, logs.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not listening on %s within 20s\n%s", name, client, logs.String())
		}
	}
	return server{name: name, endpoint: client, peer: peer}
}

// ctlStep is one etcdctl invocation. {L1}, {L2}... in args stand for the
// leases granted so far, {DIR} for a scratch directory. lines > 0 marks a
// command that does not end by itself (watch): its first lines are read and
// then it is stopped.
type ctlStep struct {
	args  string
	stdin string
	lines int
	// known names a difference from etcd that is a reported, not yet fixed
	// bug: it is logged, and the test fails once the outputs match so that
	// the mark gets removed.
	known string
}

type ctlResult struct {
	stdout string
	stderr string // only kept on failure: success logs differ harmlessly
	failed bool
}

// ctlRunner runs steps against one server and normalises the output.
type ctlRunner struct {
	t        *testing.T
	etcdctl  string
	srv      server
	dir      string
	leases   []string
	memberID string
}

var leaseGranted = regexp.MustCompile(`lease ([0-9a-f]{16}) granted`)

func (r *ctlRunner) expand(s string) string {
	for i, l := range r.leases {
		s = strings.ReplaceAll(s, fmt.Sprintf("{L%d}", i+1), l)
	}
	return strings.ReplaceAll(s, "{DIR}", r.dir)
}

func (r *ctlRunner) run(s ctlStep) ctlResult {
	r.t.Helper()
	args := append([]string{"--endpoints", r.srv.endpoint}, strings.Fields(r.expand(s.args))...)
	cmd := exec.Command(r.etcdctl, args...)
	cmd.Stdin = strings.NewReader(s.stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stderr = &stderr
	var err error
	if s.lines > 0 {
		pipe, perr := cmd.StdoutPipe()
		if perr != nil {
			r.t.Fatal(perr)
		}
		if err := cmd.Start(); err != nil {
			r.t.Fatal(err)
		}
		got := make(chan struct{})
		go func() { // ends when the process closes stdout
			defer close(got)
			sc := bufio.NewScanner(pipe)
			for n := 0; n < s.lines && sc.Scan(); n++ {
				stdout.WriteString(sc.Text() + "\n")
			}
		}()
		select {
		case <-got:
		case <-time.After(10 * time.Second):
			stdout.WriteString("<timed out>\n")
		}
		cmd.Process.Kill()
		cmd.Wait()
		<-got
	} else {
		cmd.Stdout = &stdout
		err = runBounded(cmd, 30*time.Second)
	}
	out := stdout.String()
	for _, m := range leaseGranted.FindAllStringSubmatch(out, -1) {
		r.leases = append(r.leases, m[1])
	}
	res := ctlResult{stdout: r.normalize(out), failed: err != nil}
	if err != nil {
		// Keep what etcdctl says to the user, not its client's JSON logs.
		var msg []string
		for _, l := range strings.Split(stderr.String(), "\n") {
			if l != "" && !strings.HasPrefix(l, "{") {
				msg = append(msg, l)
			}
		}
		res.stderr = r.normalize(strings.Join(msg, "\n"))
	}
	return res
}

func runBounded(cmd *exec.Cmd, limit time.Duration) error {
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(limit):
		cmd.Process.Kill()
		<-done
		return fmt.Errorf("%v did not finish within %v", cmd.Args, limit)
	}
}

var (
	jsonIDs = regexp.MustCompile(`"(cluster_id|member_id|raft_term)":\d+`)
	tookRE  = regexp.MustCompile(`took = \S+`)
	// A live lease's remaining seconds depend on when each server was
	// asked; an expired lease's -1 does not.
	remainingRE = regexp.MustCompile(`remaining\([1-9]\d*s\)`)
	statusRE    = regexp.MustCompile(`(?m)^(EP), \S+, ([^,]*), ([^,]*), [^,]+, [^,]+, \d+%, [^,]+, (true|false), (true|false), \d+, \d+, \d+,`)
	// Table cells are padded to the widest value; IDs differ in width.
	tableRE = regexp.MustCompile(`[─ ]+`)
	// A status table row: sizes, term and indexes differ legitimately.
	statusRowRE = regexp.MustCompile(`(?m)^│ EP │ MEMBER │ ([^│]*)│ ([^│]*)│[^│]*│[^│]*│[^│]*│[^│]*│ (\S+) │ (\S+) │[^│]*│[^│]*│[^│]*│`)
)

func (r *ctlRunner) normalize(s string) string {
	for i, l := range r.leases {
		s = strings.ReplaceAll(s, l, fmt.Sprintf("LEASE%d", i+1))
	}
	s = strings.ReplaceAll(s, r.srv.endpoint, "EP")
	s = strings.ReplaceAll(s, r.srv.peer, "PEER")
	s = strings.ReplaceAll(s, r.dir, "DIR")
	s = strings.ReplaceAll(s, r.srv.name, "NAME")
	if r.memberID != "" {
		s = strings.ReplaceAll(s, r.memberID, "MEMBER")
	}
	s = jsonIDs.ReplaceAllString(s, `"$1":0`)
	s = tookRE.ReplaceAllString(s, "took = T")
	s = remainingRE.ReplaceAllString(s, "remaining(Ns)")
	s = statusRE.ReplaceAllString(s, "$1, MEMBER, $2, $3, SIZE, SIZE, PCT, QUOTA, $4, $5, TERM, INDEX, INDEX,")
	if strings.Contains(s, "│") {
		s = tableRE.ReplaceAllStringFunc(s, func(m string) string {
			if strings.Contains(m, "─") {
				return "─"
			}
			return " "
		})
		s = statusRowRE.ReplaceAllString(s, "│ EP │ MEMBER │ $1│ $2│ SIZE │ SIZE │ PCT │ QUOTA │ $3 │ $4 │ TERM │ INDEX │ INDEX │")
	}
	return s
}

var ctlSteps = []ctlStep{
	{args: "put /app/config v1"},
	{args: "put /app/config v2"},
	{args: "put /app/file", stdin: "line one\nline two\n"},
	{args: "put /app/prev v --prev-kv"},
	{args: "put /app/prev w --prev-kv"},
	{args: "get /app/config"},
	{args: "get /app/missing"},
	{args: "get --prefix /app/"},
	{args: "get --prefix --keys-only /app/"},
	{args: "get --prefix --print-value-only /app/"},
	{args: "get --prefix --limit 1 --order DESCEND --sort-by MODIFY /app/"},
	{args: "get --prefix --count-only -w json /app/"},
	{args: "get --rev 2 /app/config"},
	{args: "get -w json /app/config"},
	{args: "get --from-key /app/f"},
	{args: "get /app/ /app/g"},
	{args: "del /app/prev"},
	{args: "del --prefix --prev-kv /app/nope"},
	{args: "txn", stdin: "value(\"/app/config\") = \"v2\"\n\nput /app/txn yes\nget /app/config\n\nput /app/txn no\n\n"},
	{args: "txn", stdin: "mod(\"/app/config\") < \"1\"\n\nput /app/txn yes\n\ndel /app/txn\n\n"},
	{args: "txn -w json", stdin: "\nget /app/config\n\n"},
	{args: "watch --rev 1 --prefix /app/", lines: 26},
	{args: "watch --rev 3 --prev-kv /app/config", lines: 5},
	{args: "lease grant 100"},
	{args: "put /app/leased v --lease {L1}"},
	{args: "lease timetolive {L1} --keys"},
	{args: "lease list"},
	{args: "lease keep-alive --once {L1}"},
	{args: "lease revoke {L1}"},
	{args: "lease revoke {L1}"},
	{args: "lease timetolive {L1}"},
	{args: "get /app/leased"},
	{args: "put /app/x v --lease 1234"},
	{args: "member list"},
	{args: "member list -w table"},
	{args: "endpoint health"},
	{args: "endpoint status"},
	{args: "endpoint status -w table"},
	{args: "compaction 4"},
	{args: "get --rev 3 /app/config"},
	{args: "compaction 1000"},
	{args: "snapshot save {DIR}/snap.db"},
}

// TestEtcdctlAgainstTendServer runs the real etcdctl against `tend server`
// and against a real etcd server, and compares what etcdctl prints.
func TestEtcdctlAgainstTendServer(t *testing.T) {
	t.Parallel()
	etcd, etcdctl := testenv.EtcdBinaries(t)
	tend := buildTend(t)
	runners := []*ctlRunner{
		{t: t, etcdctl: etcdctl, srv: startServer(t, "oracle", etcd), dir: t.TempDir()},
		{t: t, etcdctl: etcdctl, srv: startServer(t, "tendmember", tend, "server"), dir: t.TempDir()},
	}
	for _, r := range runners {
		out := r.run(ctlStep{args: "member list"})
		r.memberID = strings.SplitN(out.stdout, ",", 2)[0]
	}
	for i, s := range ctlSteps {
		want := runners[0].run(s)
		got := runners[1].run(s)
		switch {
		case want == got && s.known != "":
			t.Errorf("step %d: etcdctl %s now matches etcd: remove its known difference (%s)", i, s.args, s.known)
		case want != got && s.known != "":
			t.Logf("step %d: known difference, %s\n  etcd: %q\n  tend: %q", i, s.known, want.stdout, got.stdout)
		case want != got:
			t.Errorf("step %d: etcdctl %s (stdin %q)\n  etcd: failed=%v stdout=%q stderr=%q\n  tend: failed=%v stdout=%q stderr=%q",
				i, s.args, s.stdin, want.failed, want.stdout, want.stderr, got.failed, got.stdout, got.stderr)
		}
	}
	for _, r := range runners {
		if fi, err := os.Stat(filepath.Join(r.dir, "snap.db")); err != nil || fi.Size() == 0 {
			t.Errorf("%s: snapshot file: %v", r.srv.name, err)
		}
	}
}
