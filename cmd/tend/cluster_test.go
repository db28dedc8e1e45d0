package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/tendkv/tend/internal/freeport"
	"github.com/tendkv/tend/internal/lockedbuf"
	"github.com/tendkv/tend/internal/testenv"
)

// clusterUpProc is a running `tend cluster up`.
type clusterUpProc struct {
	eps    []string
	pids   []int
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	done   chan error
}

// startClusterUp runs `tend cluster up` for three members on dir and waits
// for it to print the endpoints.
func startClusterUp(t *testing.T, dir string, serverFlags ...string) *clusterUpProc {
	t.Helper()
	args := []string{"cluster", "up", "--members", "3", "--client-port", "0", "--data-dir", dir,
		"--heartbeat-interval", "20", "--election-timeout", "200"}
	if len(serverFlags) > 0 {
		args = append(append(args, "--"), serverFlags...)
	}
	cmd := exec.Command(tendBin, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &clusterUpProc{cmd: cmd, stderr: &bytes.Buffer{}, done: make(chan error, 1)}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		err := <-p.done
		p.done <- err
	})
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	pidRE := regexp.MustCompile(`pid (\d+)`)
	timeout := time.After(60 * time.Second)
	for p.eps == nil {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("tend cluster up ended before printing endpoints: %v\n%s", <-p.done, p.stderr.String())
			}
			if m := pidRE.FindStringSubmatch(l); m != nil {
				pid, _ := strconv.Atoi(m[1])
				p.pids = append(p.pids, pid)
			}
			if rest, ok := strings.CutPrefix(l, "endpoints: "); ok {
				p.eps = strings.Split(rest, ",")
			}
		case <-timeout:
			t.Fatalf("no endpoints within 60s\n%s", p.stderr.String())
		}
	}
	if len(p.eps) != 3 || len(p.pids) != 3 {
		t.Fatalf("endpoints %v, pids %v; want three of each", p.eps, p.pids)
	}
	return p
}

// interrupt sends Ctrl-C and checks that every member stopped with it.
func (p *clusterUpProc) interrupt(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-p.done:
		p.done <- err
		if err != nil {
			t.Fatalf("tend cluster up after Ctrl-C: %v\n%s", err, p.stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("tend cluster up still running 30s after Ctrl-C")
	}
	for _, pid := range p.pids {
		if err := syscall.Kill(pid, 0); err == nil {
			t.Errorf("member pid %d still running after tend cluster up stopped", pid)
		}
	}
}

// TestClusterUp runs `tend cluster up`: three processes, the seed's first
// example across two of them, then Ctrl-C stops every member; run again on
// the same data dir, it restarts the same cluster on the same ports.
func TestClusterUp(t *testing.T) {
	dir := t.TempDir()
	// Flags after -- reach every member's tend server.
	up := startClusterUp(t, dir, "--enable-pprof")
	eps := up.eps
	for _, ep := range eps {
		resp, err := http.Get("http://" + ep + "/debug/pprof/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("http://%s/debug/pprof/ = %s: --enable-pprof after -- did not reach the member", ep, resp.Status)
		}
	}
	okAt(t, eps[0], "set", "/my_key", "my value")
	want(t, "get through member 2", okAt(t, eps[1], "get", "/my_key"), "my value")
	list := okAt(t, eps[2], "member", "list")
	if strings.Count(list, ", started, ") != 3 {
		t.Fatalf("member list:\n%s", list)
	}
	// The real etcdctl sees the same members, IDs and all.
	_, etcdctl := testenv.EtcdBinaries(t)
	for _, args := range [][]string{{"member", "list"}, {"member", "list", "-w", "json"}} {
		out, err := exec.Command(etcdctl, append([]string{"--endpoints", eps[2]}, args...)...).Output()
		if err != nil {
			t.Fatalf("etcdctl %q: %v", args, err)
		}
		want(t, fmt.Sprintf("etcdctl %q against tend", args), okAt(t, eps[2], args...), string(out))
	}
	// endpoint status --cluster finds every member from one endpoint.
	out, err := exec.Command(etcdctl, "--endpoints", eps[0], "endpoint", "status", "--cluster", "-w", "json").Output()
	if err != nil {
		t.Fatalf("etcdctl endpoint status --cluster: %v", err)
	}
	var statuses []struct {
		Status struct {
			Header struct {
				MemberID uint64 `json:"member_id"`
			} `json:"header"`
			Leader uint64 `json:"leader"`
		} `json:"Status"`
	}
	if err := json.Unmarshal(out, &statuses); err != nil || len(statuses) != 3 {
		t.Fatalf("etcdctl endpoint status --cluster: %v\n%s", err, out)
	}
	leaders := 0
	for _, st := range statuses {
		if st.Status.Leader == st.Status.Header.MemberID {
			leaders++
		}
	}
	if leaders != 1 {
		t.Fatalf("etcdctl endpoint status --cluster shows %d leaders:\n%s", leaders, out)
	}
	// snapshot save from a member of the cluster.
	snap := filepath.Join(t.TempDir(), "backup.db")
	if out, err := exec.Command(etcdctl, "--endpoints", eps[1], "snapshot", "save", snap).CombinedOutput(); err != nil || !strings.Contains(string(out), "Snapshot saved at") {
		t.Fatalf("etcdctl snapshot save: %v\n%s", err, out)
	}
	// The seed's file flow across members: a CI job stores application.yml
	// through one member, a start script fetches it through another, byte
	// for byte.
	yml := []byte("server:\n  port: 8080\r\nspring:\n  datasource:\n    url: jdbc:postgresql://db/app # ü\n\n")
	if r := tendAt(t, eps[0], yml, "put", "/myapp/production/config"); r.err != nil {
		t.Fatalf("tend put < application.yml: %v\n%s", r.err, r.stderr)
	}
	if got := okAt(t, eps[2], "get", "/myapp/production/config"); got != string(yml) {
		t.Fatalf("tend get through member 3 = %q, want %q", got, yml)
	}
	// etcdctl's move-leader finds the leader among the endpoints and hands
	// leadership to the follower named; endpoint status then shows that
	// follower leading, on every member.
	var leader, target uint64
	for _, st := range statuses {
		leader = st.Status.Leader
		if st.Status.Header.MemberID != st.Status.Leader {
			target = st.Status.Header.MemberID
		}
	}
	out, err = exec.Command(etcdctl, "--endpoints", strings.Join(eps, ","), "move-leader", fmt.Sprintf("%x", target)).CombinedOutput()
	if err != nil {
		t.Fatalf("etcdctl move-leader %x: %v\n%s", target, err, out)
	}
	if want := fmt.Sprintf("Leadership transferred from %x to %x\n", leader, target); string(out) != want {
		t.Fatalf("etcdctl move-leader said %q, want %q", out, want)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, err := exec.Command(etcdctl, "--endpoints", eps[0], "endpoint", "status", "--cluster", "-w", "json").Output()
		if err == nil && json.Unmarshal(out, &statuses) == nil && len(statuses) == 3 {
			moved := true
			for _, st := range statuses {
				moved = moved && st.Status.Leader == target
			}
			if moved {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("endpoint status 20s after move-leader to %x: %v\n%s", target, err, out)
		}
		time.Sleep(50 * time.Millisecond)
	}

	up.interrupt(t)

	again := startClusterUp(t, dir)
	if strings.Join(again.eps, ",") != strings.Join(eps, ",") {
		t.Fatalf("restarted on %v, first on %v", again.eps, eps)
	}
	want(t, "get after the restart", okAt(t, again.eps[2], "get", "/my_key"), "my value")
	again.interrupt(t)
}

// okAt runs tend against endpoint only and fails the test unless it
// succeeds; it returns stdout.
func okAt(t *testing.T, endpoint string, args ...string) string {
	t.Helper()
	r := tendAt(t, endpoint, nil, args...)
	if r.err != nil {
		t.Fatalf("tend --endpoints %s %q: %v\nstderr: %s", endpoint, args, r.err, r.stderr)
	}
	return string(r.stdout)
}

// memberProc is one `tend server` process of a three-member cluster.
type memberProc struct {
	name, clientURL, peerURL, dataDir string
	cmd                               *exec.Cmd
	stderr                            *lockedbuf.Buffer
	done                              chan error
}

// start runs the member's process with the given initial cluster and state.
func (p *memberProc) start(t *testing.T, initialCluster, state string, extra ...string) {
	t.Helper()
	args := append([]string{"server", "--name", p.name, "--data-dir", p.dataDir,
		"--listen-client-urls", p.clientURL, "--advertise-client-urls", p.clientURL,
		"--listen-peer-urls", p.peerURL, "--initial-advertise-peer-urls", p.peerURL,
		"--initial-cluster", initialCluster, "--initial-cluster-state", state,
		"--heartbeat-interval", strconv.Itoa(int(procHeartbeat / time.Millisecond)),
		"--election-timeout", strconv.Itoa(int(procElection / time.Millisecond)),
		"--snapshot-count", "200", "--snapshot-catchup-entries", "20", "--log-level", "info"}, extra...)
	p.cmd = exec.Command(tendBin, args...)
	p.stderr = &lockedbuf.Buffer{}
	p.cmd.Stderr = p.stderr
	p.done = make(chan error, 1)
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", p.name, err)
	}
	cmd, done := p.cmd, p.done
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		err := <-done
		done <- err
	})
}

// startMemberProcs starts n members of a new cluster named <prefix>1..n on
// free loopback ports; it returns them and their --initial-cluster entries.
func startMemberProcs(t *testing.T, prefix string, n int) ([]*memberProc, []string) {
	t.Helper()
	base := t.TempDir()
	ps := make([]*memberProc, n)
	var initial []string
	for i := range ps {
		name := fmt.Sprintf("%s%d", prefix, i+1)
		ps[i] = &memberProc{
			name:      name,
			clientURL: fmt.Sprintf("http://127.0.0.1:%d", freeport.Port(t)),
			peerURL:   fmt.Sprintf("http://127.0.0.1:%d", freeport.Port(t)),
			dataDir:   filepath.Join(base, name),
		}
		initial = append(initial, name+"="+ps[i].peerURL)
	}
	for _, p := range ps {
		p.start(t, strings.Join(initial, ","), "new")
	}
	return ps, initial
}

func (p *memberProc) kill9(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err := <-p.done
	p.done <- err
}

const (
	procHeartbeat = 100 * time.Millisecond
	procElection  = 1000 * time.Millisecond
)

// statusLeader asks endpoint for its leader (0 when none or no answer).
func statusLeader(cli *clientv3.Client, endpoint string) (leader, self uint64) {
	leader, self, _ = statusTerm(cli, endpoint)
	return leader, self
}

// statusTerm is statusLeader with the member's Raft term.
func statusTerm(cli *clientv3.Client, endpoint string) (leader, self, term uint64) {
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	st, err := cli.Status(ctx, endpoint)
	if err != nil {
		return 0, 0, 0
	}
	return st.Leader, st.Header.MemberId, st.RaftTerm
}

// TestProcessClusterSurvivesKill9 runs three `tend server` processes,
// kills the leader with SIGKILL during writes, and checks: a new leader
// within twice the election timeout, every acknowledged write on the
// survivors, the killed member restarted from its data dir catching up,
// and a member wiped and added again catching up by snapshot.
func TestProcessClusterSurvivesKill9(t *testing.T) {
	ps, initial := startMemberProcs(t, "p", 3)
	var eps []string
	for _, p := range ps {
		eps = append(eps, p.clientURL)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	// Wait for a leader all agree on.
	var leader uint64
	lead := -1
	deadline := time.Now().Add(30 * time.Second)
	for lead < 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no leader within 30s\n%s", ps[0].stderr)
		}
		for i, p := range ps {
			if l, self := statusLeader(cli, p.clientURL); l != 0 && l == self {
				leader, lead = l, i
			}
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Writes through every endpoint while the leader dies.
	var mu sync.Mutex
	acked := map[string]string{}
	wctx, wcancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer wcancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 3000 && wctx.Err() == nil; i++ {
			k, v := fmt.Sprintf("/kill/%05d", i), strconv.Itoa(i)
			pctx, cancel := context.WithTimeout(wctx, time.Second)
			_, err := cli.Put(pctx, k, v)
			cancel()
			if err == nil {
				mu.Lock()
				acked[k] = v
				mu.Unlock()
			}
		}
	}()
	waitAcked := func(n int) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			mu.Lock()
			got := len(acked)
			mu.Unlock()
			if got >= n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d of %d writes acknowledged within 30s", got, n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitAcked(300)

	_, _, oldTerm := statusTerm(cli, ps[lead].clientURL)
	killed := time.Now()
	ps[lead].kill9(t)
	var took time.Duration
	var newTerm uint64
	for {
		newLeader := uint64(0)
		agree := true
		for i, p := range ps {
			if i == lead {
				continue
			}
			l, _, term := statusTerm(cli, p.clientURL)
			if l == 0 || l == leader || (newLeader != 0 && l != newLeader) {
				agree = false
			}
			newLeader, newTerm = l, term
		}
		if agree {
			took = time.Since(killed)
			break
		}
		if time.Since(killed) > 30*time.Second {
			t.Fatal("no new leader within 30s of kill -9")
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("new leader %v after kill -9 of the leader, term %d → %d", took, oldTerm, newTerm)
	// One election takes at most the largest randomized election timeout
	// (2x) and a round trip. When both survivors stand at once, the vote
	// splits and Raft needs another timeout: each failed election shows as
	// one more term, and gets its own 2x.
	elections := time.Duration(1)
	if oldTerm != 0 && newTerm > oldTerm+1 {
		elections = time.Duration(newTerm - oldTerm)
		t.Logf("%d elections: the vote split", elections)
	}
	if took > elections*2*procElection {
		t.Errorf("new leader after %v in %d election(s), want within 2x the election timeout (%v) each", took, elections, 2*procElection)
	}
	mu.Lock()
	before := len(acked)
	mu.Unlock()
	waitAcked(before + 300)

	// The killed member comes back from its data dir and catches up.
	ps[lead].start(t, strings.Join(initial, ","), "new")
	waitAcked(before + 600)
	wcancel()
	wg.Wait()
	checkAll := func(p *memberProc) {
		t.Helper()
		pc, err := clientv3.New(clientv3.Config{Endpoints: []string{p.clientURL}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		// A linearizable read through the member: it has applied all
		// that was committed before.
		deadline := time.Now().Add(30 * time.Second)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			r, err := pc.Get(ctx, "/kill/", clientv3.WithPrefix())
			cancel()
			if err == nil {
				got := map[string]string{}
				for _, kv := range r.Kvs {
					got[string(kv.Key)] = string(kv.Value)
				}
				for k, v := range acked {
					if got[k] != v {
						t.Fatalf("%s: acknowledged %s=%s reads %q", p.name, k, v, got[k])
					}
				}
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: read: %v\n%s", p.name, err, p.stderr)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	for _, p := range ps {
		checkAll(p)
	}

	// Wipe a follower and add it again under a new peer URL: it catches
	// up from a snapshot (the log it needs was compacted).
	victim := (lead + 1) % 3
	p := ps[victim]
	p.kill9(t)
	ml, err := cli.MemberList(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var victimID uint64
	for _, m := range ml.Members {
		if m.Name == p.name {
			victimID = m.ID
		}
	}
	// Membership changes wait, as etcd's do, until this member has been
	// connected to a quorum for a while ("unhealthy cluster" until then).
	retry := func(what string, f func(ctx context.Context) error) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := f(ctx)
			cancel()
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %v", what, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	retry("remove the wiped member", func(ctx context.Context) error {
		_, err := cli.MemberRemove(ctx, victimID)
		return err
	})
	if err := os.RemoveAll(p.dataDir); err != nil {
		t.Fatal(err)
	}
	p.peerURL = fmt.Sprintf("http://127.0.0.1:%d", freeport.Port(t))
	p.name = p.name + "b"
	retry("add the wiped member again", func(ctx context.Context) error {
		_, err := cli.MemberAdd(ctx, []string{p.peerURL})
		return err
	})
	var join []string
	for i, q := range ps {
		if i != victim {
			join = append(join, q.name+"="+q.peerURL)
		}
	}
	join = append(join, p.name+"="+p.peerURL)
	p.start(t, strings.Join(join, ","), "existing")
	checkAll(p)
	if !strings.Contains(p.stderr.String(), "applied snapshot from leader") {
		t.Fatalf("re-added member did not catch up by snapshot:\n%s", p.stderr)
	}
}

// TestBenchFailover runs `tend bench failover` on three tend server
// processes: it kills the leader and reports the first write after it.
func TestBenchFailover(t *testing.T) {
	ps, _ := startMemberProcs(t, "f", 3)
	var eps, pids []string
	for _, p := range ps {
		eps = append(eps, strings.TrimPrefix(p.clientURL, "http://"))
		pids = append(pids, strconv.Itoa(p.cmd.Process.Pid))
	}
	// Wait for a leader (health is a linearizable read on each member).
	deadline := time.Now().Add(30 * time.Second)
	for tendAt(t, strings.Join(eps, ","), nil, "endpoint", "health").err != nil {
		if time.Now().After(deadline) {
			t.Fatal("cluster not healthy within 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	out := okAt(t, strings.Join(eps, ","), "bench", "failover", "--pids", strings.Join(pids, ","), "-w", "json")
	var rep struct {
		Leader    string   `json:"leader"`
		FirstAck  int64    `json:"first_ack_ns"`
		Survivors []string `json:"survivors"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.FirstAck <= 0 || len(rep.Survivors) != 2 {
		t.Fatalf("bench failover printed %s (%v)", out, err)
	}
	exited := func() int {
		n := 0
		for _, p := range ps {
			select {
			case err := <-p.done:
				p.done <- err
				n++
			default:
			}
		}
		return n
	}
	deadline = time.Now().Add(10 * time.Second)
	for exited() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if killed := exited(); killed != 1 {
		t.Fatalf("%d member processes exited, want the leader only", killed)
	}
}

// tend cluster up refuses stray arguments and bad counts, naming the fix.
func TestClusterUpArgErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"cluster", "up", "stray"}, `unexpected argument "stray": give flags for every member's tend server after --`},
		{[]string{"cluster", "up", "--members", "0"}, "--members 0: give at least 1"},
	} {
		out, err := exec.Command(tendBin, c.args...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), c.want) {
			t.Errorf("tend %v: %v %s; want %q", c.args, err, out, c.want)
		}
	}
}
