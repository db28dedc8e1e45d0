package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tendkv/tend/internal/lockedbuf"
	"github.com/tendkv/tend/internal/testenv"
)

// These tests run tend lock and tend elect (and etcdctl's) as processes
// that hold a lock or lead an election until they get SIGINT, and read
// their stdout line by line.

// proc is a running client process.
type proc struct {
	t      *testing.T
	args   []string
	cmd    *exec.Cmd
	lines  chan string
	stderr lockedbuf.Buffer
	done   chan struct{} // closed when the process has exited and its stdout is read
}

// startProc starts bin with args and env added to the test's environment.
// Cleanup kills it if the test has not waited for it.
func startProc(t *testing.T, env []string, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, args: args, cmd: exec.Command(bin, args...), lines: make(chan string, 100), done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stderr = &p.stderr
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	go func() { // ends when the process closes stdout and exits
		defer close(p.done)
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			p.lines <- s.Text()
		}
		close(p.lines)
		p.cmd.Wait()
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

// startTend starts tend with args against t's server.
func startTend(t *testing.T, args ...string) *proc {
	t.Helper()
	return startProc(t, []string{"TEND_ENDPOINTS=", "ETCDCTL_ENDPOINTS="}, tendBin, append([]string{"--endpoints", serverEndpoint(t)}, args...)...)
}

// line is the next line p prints, within 10s.
func (p *proc) line() string {
	p.t.Helper()
	select {
	case l, open := <-p.lines:
		if !open {
			p.t.Fatalf("%q ended its output (stderr %q)", p.args, p.stderr.String())
		}
		return l
	case <-time.After(10 * time.Second):
		p.t.Fatalf("%q printed no line within 10s (stderr %q)", p.args, p.stderr.String())
		return ""
	}
}

// quiet fails the test if p has printed a line nobody has read.
func (p *proc) quiet(why string) {
	p.t.Helper()
	select {
	case l := <-p.lines:
		p.t.Fatalf("%q printed %q %s", p.args, l, why)
	default:
	}
}

func (p *proc) interrupt() {
	p.t.Helper()
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		p.t.Fatalf("interrupt %q: %v", p.args, err)
	}
}

// wait waits up to 10s for p to exit and returns its exit status and stderr.
// Lines not yet read are an error.
func (p *proc) wait() (int, string) {
	p.t.Helper()
	return p.waitFor(10 * time.Second)
}

// waitFor is wait with a bound of d.
func (p *proc) waitFor(d time.Duration) (int, string) {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(d):
		p.t.Fatalf("%q did not exit within %v (stderr %q)", p.args, d, p.stderr.String())
	}
	for l := range p.lines {
		p.t.Errorf("%q printed %q at the end", p.args, l)
	}
	return p.cmd.ProcessState.ExitCode(), p.stderr.String()
}

// stopped interrupts p and requires that it exits 0 with nothing on stderr.
func (p *proc) stopped() {
	p.t.Helper()
	p.interrupt()
	if code, stderr := p.wait(); code != 0 || stderr != "" {
		p.t.Errorf("%q after SIGINT: exit %d, stderr %q; want 0 and nothing", p.args, code, stderr)
	}
}

// run runs bin to its end, within 30s, and returns stdout, stderr and the
// exit status.
func run(t *testing.T, stdin string, env []string, bin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(stdin), &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatalf("%s %q: %v", bin, args, err)
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("%s %q did not finish within 30s", bin, args)
	}
	return out.String(), errb.String(), cmd.ProcessState.ExitCode()
}

// runTend runs tend against t's server.
func runTend(t *testing.T, stdin string, env []string, args ...string) (string, string, int) {
	t.Helper()
	return run(t, stdin, append([]string{"TEND_ENDPOINTS=", "ETCDCTL_ENDPOINTS="}, env...), tendBin, append([]string{"--endpoints", serverEndpoint(t)}, args...)...)
}

// sessionKey matches the key a lock or a campaign puts under name: the
// session's lease ID in hex.
func sessionKey(name string) *regexp.Regexp {
	return regexp.MustCompile(`^` + regexp.QuoteMeta(name) + `/([0-9a-f]+)$`)
}

// awaitKeys waits up to 10s until exactly n keys start with prefix.
func awaitKeys(t *testing.T, cli *clientv3.Client, prefix string, n int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		resp, err := cli.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
		cancel()
		if err != nil {
			t.Fatalf("count %s: %v", prefix, err)
		}
		if resp.Count == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d keys under %s after 10s, want %d", resp.Count, prefix, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// watchDelete returns a function that waits up to 10s for key, which exists
// now, to be deleted, and returns the revision of the delete.
func watchDelete(t *testing.T, cli *clientv3.Client, key string) func() int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	resp, err := cli.Get(ctx, key)
	cancel()
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("get %s: %v %v", key, resp, err)
	}
	wctx, wcancel := context.WithCancel(context.Background())
	t.Cleanup(wcancel)
	wch := cli.Watch(wctx, key, clientv3.WithRev(resp.Kvs[0].CreateRevision))
	return func() int64 {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case wr, open := <-wch:
				if !open || wr.Err() != nil {
					t.Fatalf("watch %s ended: %v", key, wr.Err())
				}
				for _, ev := range wr.Events {
					if ev.Type == mvccpb.DELETE {
						return ev.Kv.ModRevision
					}
				}
			case <-deadline:
				t.Fatalf("%s not deleted within 10s", key)
			}
		}
	}
}

// TestLockWaitsForTheHolder has a second tend lock wait until the first is
// interrupted and releases, and a third give up when interrupted while
// waiting.
func TestLockWaitsForTheHolder(t *testing.T) {
	t.Parallel()
	const name = "/lock-wait"
	cli := newClient(t, serverEndpoint(t))
	a := startTend(t, "lock", name)
	aKey := a.line()
	if !sessionKey(name).MatchString(aKey) {
		t.Fatalf("lock printed key %q, want %s/<lease ID>", aKey, name)
	}
	want(t, "the lock key's value line", a.line(), "")
	awaitKeys(t, cli, name+"/", 1)

	b := startTend(t, "lock", "-w", "json", name)
	awaitKeys(t, cli, name+"/", 2)

	c := startTend(t, "lock", name)
	awaitKeys(t, cli, name+"/", 3)
	c.interrupt()
	if code, stderr := c.wait(); code != 1 || stderr != fmt.Sprintf("Error: lock %q: context canceled\n", name) {
		t.Errorf("a waiting lock interrupted: exit %d, stderr %q; want 1 and context canceled", code, stderr)
	}
	awaitKeys(t, cli, name+"/", 2) // c's key is gone

	b.quiet("while the first lock was held")
	released := watchDelete(t, cli, aKey)
	a.stopped()
	relRev := released()

	// b's JSON is the Get of its key after acquiring: that read is no older
	// than a's release.
	var resp pb.RangeResponse
	if line := b.line(); json.Unmarshal([]byte(line), &resp) != nil || len(resp.Kvs) != 1 {
		t.Fatalf("lock -w json printed %q", line)
	}
	if resp.Header.Revision < relRev {
		t.Errorf("the second lock acquired at revision %d, before the first released at %d", resp.Header.Revision, relRev)
	}
	if k := string(resp.Kvs[0].Key); !sessionKey(name).MatchString(k) || k == aKey {
		t.Errorf("second lock's key %q (first's %q)", k, aKey)
	}
	b.stopped()
	awaitKeys(t, cli, name+"/", 0)
}

// TestLockRunsCommand runs a command under tend lock: it sees the lock's key
// and revision, holds the lock while it runs, gets stdin, and its exit
// status is tend's.
func TestLockRunsCommand(t *testing.T) {
	t.Parallel()
	const name = "/lock-run"
	ep := serverEndpoint(t)
	// No "--" needed before the command's own flags (-c).
	script := `echo "$ETCD_LOCK_KEY $ETCD_LOCK_REV" && "$0" --endpoints "$1" get -w json "$ETCD_LOCK_KEY" && cat && exit 3`
	out, stderr, code := runTend(t, "from stdin\n", nil, "lock", name, "sh", "-c", script, tendBin, ep)
	if code != 3 || stderr != "Error: exit status 3\n" {
		t.Errorf("lock running exit 3: exit %d, stderr %q; want 3 and etcdctl's Error: exit status 3", code, stderr)
	}
	lines := strings.Split(out, "\n")
	if len(lines) != 4 || lines[2] != "from stdin" || lines[3] != "" {
		t.Fatalf("command printed %q; want the key and revision, the key's JSON, and stdin", out)
	}
	key, rev, _ := strings.Cut(lines[0], " ")
	m := sessionKey(name).FindStringSubmatch(key)
	if m == nil {
		t.Fatalf("ETCD_LOCK_KEY = %q, want %s/<lease ID>", key, name)
	}
	var resp pb.RangeResponse
	if err := json.Unmarshal([]byte(lines[1]), &resp); err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("the lock key while the command ran: %q (%v); want it to exist", lines[1], err)
	}
	if fmt.Sprint(resp.Kvs[0].CreateRevision) != rev {
		t.Errorf("ETCD_LOCK_REV = %s, want %d, where the uncontended lock's key was created", rev, resp.Kvs[0].CreateRevision)
	}
	if n, err := strconv.ParseInt(m[1], 16, 64); err != nil || resp.Kvs[0].Lease != n {
		t.Errorf("the lock key's lease is %x, its name says %s", resp.Kvs[0].Lease, m[1])
	}
	// Released, and the session's lease revoked.
	awaitKeys(t, newClient(t, ep), name+"/", 0)
	if out, _, _ := runTend(t, "", nil, "lease", "timetolive", m[1]); out != "lease "+m[1]+" already expired\n" {
		t.Errorf("the session lease after lock ended: %q, want it revoked", out)
	}

	if out, stderr, code := runTend(t, "", nil, "lock", name, "--", "true"); code != 0 || out != "" || stderr != "" {
		t.Errorf("lock -- true: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	// A lock inside another lock's command sees its own key.
	out, _, code = runTend(t, "", []string{"ETCD_LOCK_KEY=outer"}, "lock", name, "sh", "-c", `echo "$ETCD_LOCK_KEY"`)
	if code != 0 || !sessionKey(name).MatchString(strings.TrimSuffix(out, "\n")) {
		t.Errorf("with ETCD_LOCK_KEY=outer inherited the command saw %q (exit %d)", out, code)
	}
	_, stderr, code = runTend(t, "", nil, "lock", name, "/nonexistent/command")
	if code != 1 || !strings.Contains(stderr, "/nonexistent/command: no such file or directory") {
		t.Errorf("lock of a missing command: exit %d, stderr %q", code, stderr)
	}
	awaitKeys(t, newClient(t, ep), name+"/", 0)
}

// TestLockSessionExpired revokes the lease of a held lock: tend lock fails
// as etcdctl does.
func TestLockSessionExpired(t *testing.T) {
	t.Parallel()
	const name = "/lock-expire"
	// Flags between NAME and a command are tend's, as in etcdctl.
	a := startTend(t, "lock", name, "--ttl", "2")
	m := sessionKey(name).FindStringSubmatch(a.line())
	if m == nil {
		t.Fatal("no lock key")
	}
	a.line()
	if out, _, _ := runTend(t, "", nil, "lease", "timetolive", m[1]); !strings.HasPrefix(out, "lease "+m[1]+" granted with TTL(2s)") {
		t.Errorf("lock --ttl 2's session lease: %q", out)
	}
	if out, stderr, code := runTend(t, "", nil, "lease", "revoke", m[1]); code != 0 {
		t.Fatalf("lease revoke %s: %q %q", m[1], out, stderr)
	}
	if code, stderr := a.wait(); code != 1 || stderr != "Error: session expired\n" {
		t.Errorf("lock whose lease was revoked: exit %d, stderr %q; want 1 and session expired", code, stderr)
	}
}

// TestElectSessionExpired revokes the lease of a leader: tend elect fails
// with etcdctl's words.
func TestElectSessionExpired(t *testing.T) {
	t.Parallel()
	const name = "/elect-expire"
	c := startTend(t, "elect", name, "v")
	m := sessionKey(name).FindStringSubmatch(c.line())
	if m == nil {
		t.Fatal("no leader key")
	}
	want(t, "leader value", c.line(), "v")
	if out, stderr, code := runTend(t, "", nil, "lease", "revoke", m[1]); code != 0 {
		t.Fatalf("lease revoke %s: %q %q", m[1], out, stderr)
	}
	// The session learns of it at its next keep-alive, a third of the
	// default 60s TTL later (elect has no --ttl, as etcdctl's has none).
	if code, stderr := c.waitFor(40 * time.Second); code != 1 || stderr != "Error: elect: session expired\n" {
		t.Errorf("elect whose lease was revoked: exit %d, stderr %q; want 1 and elect: session expired", code, stderr)
	}
}

// TestElectCampaignAndObserve has a leader, an observer and a second
// candidate that waits: the observer sees v1, then v2 once the first
// resigns.
func TestElectCampaignAndObserve(t *testing.T) {
	t.Parallel()
	const name = "/elect-e"
	cli := newClient(t, serverEndpoint(t))
	c1 := startTend(t, "elect", name, "v1")
	k1 := c1.line()
	if !sessionKey(name).MatchString(k1) {
		t.Fatalf("elect printed key %q, want %s/<lease ID>", k1, name)
	}
	want(t, "leader value", c1.line(), "v1")

	o := startTend(t, "elect", "-l", name)
	want(t, "observed leader", o.line(), k1)
	want(t, "observed value", o.line(), "v1")

	c2 := startTend(t, "elect", "-w", "json", name, "v2")
	awaitKeys(t, cli, name+"/", 2)
	c2.quiet("while the first candidate led")
	resigned := watchDelete(t, cli, k1)
	c1.stopped()
	resRev := resigned()

	var resp pb.RangeResponse
	if line := c2.line(); json.Unmarshal([]byte(line), &resp) != nil || len(resp.Kvs) != 1 {
		t.Fatalf("elect -w json printed %q", line)
	}
	if resp.Header.Revision < resRev {
		t.Errorf("the second candidate was elected at revision %d, before the first resigned at %d", resp.Header.Revision, resRev)
	}
	k2 := string(resp.Kvs[0].Key)
	if !sessionKey(name).MatchString(k2) || k2 == k1 || string(resp.Kvs[0].Value) != "v2" {
		t.Errorf("second leader %s = %q (first %s)", k2, resp.Kvs[0].Value, k1)
	}
	want(t, "observed second leader", o.line(), k2)
	want(t, "observed second value", o.line(), "v2")

	c2.stopped()
	awaitKeys(t, cli, name+"/", 0)
	o.quiet("with no leader")
	o.stopped()
}

// concurrencyBadArgs are the argument errors of lock and elect with etcdctl's text;
// each exits 128.
var concurrencyBadArgs = []struct {
	args []string
	err  string
}{
	{[]string{"lock"}, "lock takes a lock name argument and an optional command to execute"},
	{[]string{"elect"}, "elect takes one election name argument and an optional proposal argument"},
	{[]string{"elect", "a", "b", "c"}, "elect takes one election name argument and an optional proposal argument"},
	{[]string{"elect", "e"}, "no proposal argument but -l not set"},
	{[]string{"elect", "-l", "e", "v"}, "proposal given but -l is set"},
}

func TestLockElectBadArgs(t *testing.T) {
	t.Parallel()
	for _, c := range concurrencyBadArgs {
		out, stderr, code := runTend(t, "", nil, c.args...)
		if code != 128 || stderr != "Error: "+c.err+"\n" || out != "" {
			t.Errorf("tend %q: exit %d, stdout %q, stderr %q; want 128 and Error: %s", c.args, code, out, stderr, c.err)
		}
	}
	if _, stderr, code := runTend(t, "", nil, "lock", "--ttl", "0", "/lock-bad"); code != 1 || !strings.Contains(stderr, "--ttl 0: give the session TTL in seconds, at least 1") {
		t.Errorf("lock --ttl 0: exit %d, stderr %q", code, stderr)
	}
	if _, stderr, code := runTend(t, "", nil, "elect", "-w", "table", "/elect-bad", "v"); code != 1 || !strings.Contains(stderr, `--write-out "table" is not supported by elect`) {
		t.Errorf("elect -w table: exit %d, stderr %q", code, stderr)
	}
}

// TestLockElectMatchEtcdctl runs tend's lock and elect and the real
// etcdctl's side by side on the same server: the same output (the lease ID
// in a key aside), errors and exit statuses, and the differences README.md
// documents.
func TestLockElectMatchEtcdctl(t *testing.T) {
	t.Parallel()
	_, etcdctl := testenv.EtcdBinaries(t)
	ep := serverEndpoint(t)
	tendEnv := []string{"TEND_ENDPOINTS=", "ETCDCTL_ENDPOINTS="}
	clients := []struct {
		name, bin string
		env       []string
	}{{"etcdctl", etcdctl, nil}, {"tend", tendBin, tendEnv}}

	keyID := regexp.MustCompile(`(/cmp-[a-z]+)/[0-9a-f]+`)
	jsonKey := regexp.MustCompile(`"key":"([^"]*)"`)
	jsonNum := regexp.MustCompile(`"(revision|create_revision|mod_revision|lease)":\d+`)
	// shape is output with the lease IDs and revisions, which differ from
	// run to run, replaced.
	shape := func(s string) string {
		s = jsonKey.ReplaceAllStringFunc(s, func(m string) string {
			b, err := base64.StdEncoding.DecodeString(jsonKey.FindStringSubmatch(m)[1])
			if err != nil {
				return m
			}
			return `"key":"` + string(b) + `"`
		})
		s = jsonNum.ReplaceAllString(s, `"$1":N`)
		return keyID.ReplaceAllString(s, "$1/ID")
	}

	// Held until SIGINT: what each prints, and how it ends.
	for _, args := range [][]string{
		{"lock", "/cmp-lock"},
		{"lock", "-w", "json", "/cmp-lock"},
		{"elect", "/cmp-elect", "v1"},
		{"elect", "-w", "json", "/cmp-elect", "v1"},
	} {
		lines := 2
		if args[1] == "-w" {
			lines = 1
		}
		var got [2]string
		for i, c := range clients {
			p := startProc(t, c.env, c.bin, append([]string{"--endpoints", ep}, args...)...)
			var out string
			for range lines {
				out += p.line() + "\n"
			}
			p.interrupt()
			code, stderr := p.wait()
			got[i] = fmt.Sprintf("%sexit %d, stderr %q", shape(out), code, stderr)
		}
		if got[0] != got[1] {
			t.Errorf("%q:\n etcdctl %q\n    tend %q", args, got[0], got[1])
		}
	}

	// Observers of one leader.
	leader := startTend(t, "elect", "/cmp-observe", "lead")
	leader.line()
	leader.line()
	var observed [2]string
	for i, c := range clients {
		for _, w := range []string{"simple", "json"} {
			p := startProc(t, c.env, c.bin, "--endpoints", ep, "elect", "-l", "-w", w, "/cmp-observe")
			observed[i] += p.line() + "\n"
			if w == "simple" {
				observed[i] += p.line() + "\n"
			}
			p.interrupt()
			code, stderr := p.wait()
			observed[i] = fmt.Sprintf("%sexit %d, stderr %q\n", shape(observed[i]), code, stderr)
		}
	}
	leader.stopped()
	if observed[0] != observed[1] {
		t.Errorf("elect -l:\n etcdctl %q\n    tend %q", observed[0], observed[1])
	}

	// Run to the end: a command under the lock, and the argument errors.
	runs := [][]string{{"lock", "/cmp-lock", "--", "sh", "-c", `echo "$ETCD_LOCK_KEY"; exit 3`}}
	for _, c := range concurrencyBadArgs {
		runs = append(runs, c.args)
	}
	for _, args := range runs {
		var got [2]string
		for i, c := range clients {
			out, stderr, code := run(t, "", c.env, c.bin, append([]string{"--endpoints", ep}, args...)...)
			got[i] = fmt.Sprintf("%sexit %d, stderr %q", shape(out), code, stderr)
		}
		if got[0] != got[1] {
			t.Errorf("%q:\n etcdctl %q\n    tend %q", args, got[0], got[1])
		}
	}

	// Documented differences. etcdctl takes a command's flags for its own
	// unless "--" comes first.
	_, stderr, code := run(t, "", nil, etcdctl, "--endpoints", ep, "lock", "/cmp-lock", "sh", "-c", "true")
	if code == 0 || !strings.Contains(stderr, "unknown shorthand flag: 'c'") {
		t.Errorf("etcdctl lock NAME sh -c: exit %d, stderr %q; README's description of the difference is out of date", code, stderr)
	}
	// etcdctl's command sees an inherited ETCD_LOCK_KEY, and no stdin.
	out, _, _ := run(t, "in\n", []string{"ETCD_LOCK_KEY=outer"}, etcdctl, "--endpoints", ep, "lock", "/cmp-lock", "--", "sh", "-c", `echo "$ETCD_LOCK_KEY"; cat`)
	if out != "outer\n" {
		t.Errorf("etcdctl lock with ETCD_LOCK_KEY=outer and stdin printed %q; README's description of the difference is out of date", out)
	}
	// etcdctl leaves its session's lease to expire.
	out, _, _ = run(t, "", nil, etcdctl, "--endpoints", ep, "lock", "/cmp-lock", "--", "sh", "-c", `echo "${ETCD_LOCK_KEY#/cmp-lock/}"`)
	id := strings.TrimSpace(out)
	if ttl, _, _ := runTend(t, "", nil, "lease", "timetolive", id); !strings.HasPrefix(ttl, "lease "+id+" granted with TTL(10s)") {
		t.Errorf("etcdctl's lock lease after it ended: %q; README's description of the difference is out of date", ttl)
	}
}
