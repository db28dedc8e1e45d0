package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/tendkv/tend/store"
)

// The tests run the built binary against a real etcd, as a user would.
var (
	tendBin string
	// The shared servers: a real etcd for the Test functions, tend's member
	// for the same functions run under TestAgainstTendMember. Each test
	// uses its own key prefix, so they run in parallel.
	etcdEndpoint string
	tendEndpoint string
)

func TestMain(m *testing.M) { os.Exit(runMain(m)) }

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "tend-cli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	tendBin = filepath.Join(dir, "tend")
	if out, err := exec.Command("go", "build", "-o", tendBin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build tend: %v\n%s", err, out)
		return 1
	}
	ep, stop, err := startEtcd(filepath.Join(dir, "etcd"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer stop()
	tep, tstop, err := startTendMember(filepath.Join(dir, "tend-member"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer tstop()
	etcdEndpoint, tendEndpoint = ep, tep
	return m.Run()
}

type result struct {
	stdout, stderr []byte
	err            error
}

// tend runs the binary with stdin against endpoint.
func tendAt(t *testing.T, endpoint string, stdin []byte, args ...string) result {
	t.Helper()
	cmd := exec.Command(tendBin, append([]string{"--endpoints", endpoint}, args...)...)
	cmd.Env = append(os.Environ(), "TEND_ENDPOINTS=", "ETCDCTL_ENDPOINTS=")
	var out, errb bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(stdin), &out, &errb
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start tend: %v", err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return result{out.Bytes(), errb.Bytes(), err}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("tend %v did not finish within 30s", args)
		return result{}
	}
}

func tend(t *testing.T, stdin []byte, args ...string) result {
	t.Helper()
	return tendAt(t, serverEndpoint(t), stdin, args...)
}

// ok runs tend and fails the test unless it succeeds; it returns stdout.
func ok(t *testing.T, stdin []byte, args ...string) string {
	t.Helper()
	r := tend(t, stdin, args...)
	if r.err != nil {
		t.Fatalf("tend %q: %v\nstderr: %s", args, r.err, r.stderr)
	}
	return string(r.stdout)
}

func want(t *testing.T, what, got, wantS string) {
	t.Helper()
	if got != wantS {
		t.Errorf("%s:\n got %q\nwant %q", what, got, wantS)
	}
}

// The seed's flow: a CI job stores a whole file, a start script fetches it,
// and the two are identical byte for byte.
func TestSeedFlowFileRoundTrip(t *testing.T) {
	t.Parallel()
	files := map[string][]byte{
		"plain.yml":      []byte("server:\n  port: 8080\nspring:\n  profiles: production\n"),
		"no-newline.yml": []byte("server:\n  port: 8080"),
		"crlf-utf8.yml":  []byte("name: Zoë — café ☕\r\nport: 9090\r\n\r\n"),
		"binary.bin":     {0, 1, 2, 0xff, '\n', 0, '\r'},
		"empty.yml":      {},
	}
	dir := t.TempDir()
	for name, content := range files {
		key := "/seed/myapp/production/" + name
		want(t, "put output", ok(t, content, "put", key), "OK\n")
		got := ok(t, nil, "get", key)
		if !bytes.Equal([]byte(got), content) {
			t.Errorf("%s: get returned %q, put stored %q", name, got, content)
		}
		// Through the shell, as the README shows it.
		out := filepath.Join(dir, name)
		sh := exec.Command("sh", "-c", `"$TEND" put "$KEY" < "$IN" && "$TEND" get "$KEY" > "$OUT"`)
		in := filepath.Join(dir, name+".in")
		if err := os.WriteFile(in, content, 0o600); err != nil {
			t.Fatal(err)
		}
		sh.Env = append(os.Environ(), "TEND="+tendBin, "KEY="+key+"/sh", "IN="+in, "OUT="+out, "TEND_ENDPOINTS="+serverEndpoint(t))
		if b, err := sh.CombinedOutput(); err != nil {
			t.Fatalf("%s: shell round trip: %v: %s", name, err, b)
		}
		if b, _ := os.ReadFile(out); !bytes.Equal(b, content) {
			t.Errorf("%s: file round trip gave %q, want %q", name, b, content)
		}
	}
}

func TestSetIsPut(t *testing.T) {
	t.Parallel()
	want(t, "set output", ok(t, nil, "set", "/set/my_key", "my value"), "OK\n")
	want(t, "get", ok(t, nil, "get", "/set/my_key"), "my value")
}

func TestGetMissingKeyIsAnError(t *testing.T) {
	t.Parallel()
	r := tend(t, nil, "get", "/missing/config")
	if r.err == nil {
		t.Fatal("get of a missing key succeeded; scripts would write an empty file")
	}
	if len(r.stdout) != 0 {
		t.Errorf("stdout = %q, want nothing", r.stdout)
	}
	if !strings.Contains(string(r.stderr), `key "/missing/config" not found`) {
		t.Errorf("stderr = %q, want it to name the key", r.stderr)
	}
	// With -w json the response itself says the key is missing.
	var resp pb.RangeResponse
	if err := json.Unmarshal([]byte(ok(t, nil, "get", "-w", "json", "/missing/config")), &resp); err != nil {
		t.Fatal(err)
	}
	if resp.Count != 0 || len(resp.Kvs) != 0 || resp.Header.Revision == 0 {
		t.Errorf("json response = %+v, want count 0 and a header", &resp)
	}
}

func TestGetRanges(t *testing.T) {
	t.Parallel()
	for _, k := range []string{"a", "b", "c"} {
		ok(t, nil, "put", "/r/"+k, "v"+k)
	}
	ok(t, nil, "put", "/rz", "outside")
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--prefix", "/r/"}, "/r/a\nva\n/r/b\nvb\n/r/c\nvc\n"},
		{[]string{"--prefix", "--keys-only", "/r/"}, "/r/a\n/r/b\n/r/c\n"},
		{[]string{"--prefix", "--print-value-only", "/r/"}, "va\nvb\nvc\n"},
		{[]string{"--prefix", "--limit", "2", "/r/"}, "/r/a\nva\n/r/b\nvb\n"},
		{[]string{"--prefix", "--order", "DESCEND", "/r/"}, "/r/c\nvc\n/r/b\nvb\n/r/a\nva\n"},
		{[]string{"--prefix", "--sort-by", "VALUE", "--order", "descend", "/r/"}, "/r/c\nvc\n/r/b\nvb\n/r/a\nva\n"},
		{[]string{"--prefix", "--count-only", "/r/"}, "3\n"},
		{[]string{"/r/a", "/r/c"}, "/r/a\nva\n/r/b\nvb\n"},
		// Other tests share the server: none may write a key between /r/c
		// and /rz.
		{[]string{"--from-key", "--limit", "2", "/r/c"}, "/r/c\nvc\n/rz\noutside\n"},
		{[]string{"--consistency", "s", "/r/b"}, "vb"},
	}
	for _, c := range cases {
		want(t, fmt.Sprint(c.args), ok(t, nil, append([]string{"get"}, c.args...)...), c.want)
	}

	var resp pb.RangeResponse
	if err := json.Unmarshal([]byte(ok(t, nil, "get", "-w", "json", "--prefix", "/r/")), &resp); err != nil {
		t.Fatal(err)
	}
	if resp.Count != 3 || string(resp.Kvs[0].Key) != "/r/a" || string(resp.Kvs[2].Value) != "vc" {
		t.Errorf("json = %+v", &resp)
	}

	// --rev reads the past.
	before := resp.Kvs[0].ModRevision
	ok(t, nil, "put", "/r/a", "changed")
	want(t, "get --rev", ok(t, nil, "get", "--rev", fmt.Sprint(before), "/r/a"), "va")
	want(t, "get now", ok(t, nil, "get", "/r/a"), "changed")
}

func TestPutFlags(t *testing.T) {
	t.Parallel()
	ok(t, nil, "put", "/pf/k", "one")
	want(t, "put --prev-kv", ok(t, nil, "put", "--prev-kv", "/pf/k", "two"), "OK\n/pf/k\none\n")
	id := grantLease(t, 60)
	ok(t, nil, "put", "--lease", id, "--ignore-value", "/pf/k")
	want(t, "value kept by --ignore-value", ok(t, nil, "get", "/pf/k"), "two")
	ok(t, nil, "put", "--ignore-lease", "/pf/k", "three")
	var resp pb.RangeResponse
	if err := json.Unmarshal([]byte(ok(t, nil, "get", "-w", "json", "/pf/k")), &resp); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprintf("%016x", resp.Kvs[0].Lease) != id || string(resp.Kvs[0].Value) != "three" {
		t.Errorf("after --ignore-lease: lease %x value %q, want lease %s value three", resp.Kvs[0].Lease, resp.Kvs[0].Value, id)
	}
}

func TestDel(t *testing.T) {
	t.Parallel()
	for _, k := range []string{"a", "b", "c"} {
		ok(t, nil, "put", "/d/"+k, k)
	}
	want(t, "del one", ok(t, nil, "del", "/d/a"), "1\n")
	want(t, "del missing", ok(t, nil, "del", "/d/a"), "0\n")
	ok(t, nil, "put", "/d/z", "z")
	want(t, "del --range KEY END", ok(t, nil, "del", "--range", "/d/y", "/d/zz"), "1\n")
	want(t, "del --prefix --prev-kv", ok(t, nil, "del", "--prefix", "--prev-kv", "/d/"), "2\n/d/b\nb\n/d/c\nc\n")
}

func TestTxn(t *testing.T) {
	t.Parallel()
	ok(t, nil, "put", "/t/key1", "v1")
	in := `mod("/t/key1") > "0"
value("/t/key1") = "v1"

put /t/key1 "overwrote key1"
get /t/key1

put /t/key1 "created-key1"
`
	want(t, "txn success", ok(t, []byte(in), "txn"), "SUCCESS\n\nOK\n\n/t/key1\noverwrote key1\n")
	want(t, "txn failure", ok(t, []byte(in), "txn"), "FAILURE\n\nOK\n")
	want(t, "after failure branch", ok(t, nil, "get", "/t/key1"), "created-key1")

	r := tend(t, []byte("mood(\"/t/key1\") > \"0\"\n\n\n"), "txn")
	if r.err == nil || !strings.Contains(string(r.stderr), "stdin:1") || !strings.Contains(string(r.stderr), "unknown target") {
		t.Errorf("bad compare: err %v stderr %q, want stdin:1 and unknown target", r.err, r.stderr)
	}
	// -i prompts for each part.
	got := ok(t, []byte("\nget /t/key1\n\n"), "txn", "-i")
	want(t, "txn -i", got, "compares:\nsuccess requests (get, put, del):\nfailure requests (get, put, del):\nSUCCESS\n\n/t/key1\ncreated-key1\n")
}

var leaseRE = regexp.MustCompile(`^lease ([0-9a-f]{16}) granted with TTL\((\d+)s\)\n$`)

func grantLease(t *testing.T, ttl int) string {
	t.Helper()
	out := ok(t, nil, "lease", "grant", fmt.Sprint(ttl))
	m := leaseRE.FindStringSubmatch(out)
	if m == nil || m[2] != fmt.Sprint(ttl) {
		t.Fatalf("lease grant printed %q", out)
	}
	return m[1]
}

func TestLease(t *testing.T) {
	t.Parallel()
	id := grantLease(t, 100)
	ok(t, nil, "put", "--lease", id, "/l/k", "v")
	ttl := ok(t, nil, "lease", "timetolive", "--keys", id)
	if !regexp.MustCompile(`^lease ` + id + ` granted with TTL\(100s\), remaining\(\d+s\), attached keys\(\[/l/k\]\)\n$`).MatchString(ttl) {
		t.Errorf("timetolive printed %q", ttl)
	}
	if got := ok(t, nil, "lease", "ttl", id); !strings.HasPrefix(got, "lease "+id+" granted with TTL(100s), remaining(") {
		t.Errorf("ttl alias printed %q", got)
	}
	if list := ok(t, nil, "lease", "list"); !strings.Contains(list, id+"\n") || !strings.HasPrefix(list, "found ") {
		t.Errorf("lease list printed %q, want it to hold %s", list, id)
	}
	want(t, "keep-alive --once", ok(t, nil, "lease", "keep-alive", "--once", id), "lease "+id+" keepalived with TTL(100)\n")
	lines, stop := startLines(t, "lease", "keep-alive", id)
	expectLines(t, lines, "lease "+id+" keepalived with TTL(100)")
	stop()
	want(t, "revoke", ok(t, nil, "lease", "revoke", id), "lease "+id+" revoked\n")
	if r := tend(t, nil, "get", "/l/k"); r.err == nil {
		t.Error("key still there after its lease was revoked")
	}
	want(t, "timetolive after revoke", ok(t, nil, "lease", "timetolive", id), "lease "+id+" already expired\n")
	r := tend(t, nil, "lease", "revoke", id)
	if r.err == nil || !strings.Contains(string(r.stderr), "requested lease not found") {
		t.Errorf("revoke of a revoked lease: err %v stderr %q", r.err, r.stderr)
	}
}

// lines starts tend with args and returns a channel of its stdout lines and a
// stop function.
func startLines(t *testing.T, args ...string) (<-chan string, func()) {
	t.Helper()
	cmd := exec.Command(tendBin, append([]string{"--endpoints", serverEndpoint(t)}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 100)
	readDone := make(chan struct{})
	go func() { // ends when the process closes stdout
		defer close(readDone)
		defer close(lines)
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			lines <- s.Text()
		}
	}()
	return lines, func() {
		cmd.Process.Signal(os.Interrupt)
		timer := time.AfterFunc(10*time.Second, func() { cmd.Process.Kill() })
		defer timer.Stop()
		<-readDone
		if err := cmd.Wait(); err != nil {
			t.Errorf("tend %v after interrupt: %v (stderr %q)", args, err, stderr.String())
		}
	}
}

func expectLines(t *testing.T, lines <-chan string, wantLines ...string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for i, w := range wantLines {
		select {
		case got, open := <-lines:
			if !open {
				t.Fatalf("output ended before line %d (%q)", i, w)
			}
			if got != w {
				t.Fatalf("line %d = %q, want %q", i, got, w)
			}
		case <-deadline:
			t.Fatalf("no line %d (%q) within 10s", i, w)
		}
	}
}

func TestWatch(t *testing.T) {
	t.Parallel()
	ok(t, nil, "put", "/w/old", "past")
	var old pb.RangeResponse
	if err := json.Unmarshal([]byte(ok(t, nil, "get", "-w", "json", "/w/old")), &old); err != nil || len(old.Kvs) != 1 {
		t.Fatalf("get /w/old: %v %v", err, &old)
	}
	start := old.Kvs[0].ModRevision
	// From the next revision on, so no event can slip in before the watch.
	lines, stop := startLines(t, "watch", "--prefix", "--prev-kv", "--rev", fmt.Sprint(start+1), "/w/")
	ok(t, nil, "put", "/w/a", "1")
	ok(t, nil, "put", "/w/a", "2")
	ok(t, nil, "del", "/w/a")
	expectLines(t, lines,
		"PUT", "/w/a", "1",
		"PUT", "/w/a", "1", "/w/a", "2",
		"DELETE", "/w/a", "2", "/w/a", "")
	stop()

	// From a past revision, history is replayed.
	lines, stop = startLines(t, "watch", "--rev", fmt.Sprint(start), "/w/old")
	expectLines(t, lines, "PUT", "/w/old", "past")
	stop()
}

func TestMemberAndEndpoint(t *testing.T) {
	t.Parallel()
	list := ok(t, nil, "member", "list")
	if !regexp.MustCompile(`^[0-9a-f]+, started, ` + memberName(t) + `, http://127\.0\.0\.1:\d+, http://127\.0\.0\.1:\d+, false\n$`).MatchString(list) {
		t.Errorf("member list = %q", list)
	}
	table := ok(t, nil, "member", "list", "-w", "table")
	if !strings.Contains(table, "| ID ") || !strings.Contains(table, "| "+memberName(t)+" ") {
		t.Errorf("member list -w table = %q", table)
	}
	var ml pb.MemberListResponse
	if err := json.Unmarshal([]byte(ok(t, nil, "member", "list", "-w", "json")), &ml); err != nil || len(ml.Members) != 1 || ml.Members[0].Name != memberName(t) {
		t.Errorf("member list -w json: %v %+v", err, &ml)
	}

	health := ok(t, nil, "endpoint", "health")
	want(t, "endpoint health", regexp.MustCompile(`took = .*`).ReplaceAllString(health, "took = T"), serverEndpoint(t)+" is healthy: successfully committed proposal: took = T\n")
	if h := ok(t, nil, "endpoint", "health", "--cluster", "-w", "json"); !strings.Contains(h, `"health":true`) {
		t.Errorf("endpoint health --cluster -w json = %q", h)
	}
	status := ok(t, nil, "endpoint", "status")
	if !strings.HasPrefix(status, serverEndpoint(t)+", ") || !strings.Contains(status, ", true, false, ") {
		t.Errorf("endpoint status = %q (want the endpoint and is-leader true)", status)
	}
	if s := ok(t, nil, "endpoint", "status", "-w", "json"); !strings.Contains(s, `"Endpoint":"`+serverEndpoint(t)+`"`) {
		t.Errorf("endpoint status -w json = %q", s)
	}
}

func TestEndpointHealthUnreachable(t *testing.T) {
	t.Parallel()
	r := tendAt(t, "127.0.0.1:1", nil, "endpoint", "health", "--command-timeout", "500ms")
	if r.err == nil || !strings.Contains(string(r.stderr), "127.0.0.1:1 is unhealthy") {
		t.Errorf("health of nothing: err %v stderr %q", r.err, r.stderr)
	}
}

func TestCompactAndSnapshot(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ep, stop, err := startFresh(t, filepath.Join(dir, "server"))
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	run := func(args ...string) result { return tendAt(t, ep, nil, args...) }
	run("put", "/c/k", "1")
	run("put", "/c/k", "2")
	r := run("get", "-w", "json", "/c/k")
	var resp pb.RangeResponse
	if err := json.Unmarshal(r.stdout, &resp); err != nil {
		t.Fatalf("%v: %s %s", err, r.stdout, r.stderr)
	}
	rev := resp.Header.Revision
	if r := run("compact", "--physical", fmt.Sprint(rev)); r.err != nil || string(r.stdout) != fmt.Sprintf("compacted revision %d\n", rev) {
		t.Fatalf("compact: %v %q %q", r.err, r.stdout, r.stderr)
	}
	r = run("get", "--rev", fmt.Sprint(rev-1), "/c/k")
	if r.err == nil || !strings.Contains(string(r.stderr), "required revision has been compacted") {
		t.Errorf("get of a compacted revision: err %v stderr %q", r.err, r.stderr)
	}

	r = run("watch", "--rev", "1", "/c/k")
	if r.err == nil || !strings.Contains(string(r.stderr), "required revision has been compacted") {
		t.Errorf("watch from a compacted revision: err %v stderr %q", r.err, r.stderr)
	}

	file := filepath.Join(dir, "backup.db")
	r = run("snapshot", "save", file)
	if r.err != nil || !strings.HasPrefix(string(r.stdout), "Snapshot saved at "+file) {
		t.Fatalf("snapshot save: %v %q %q", r.err, r.stdout, r.stderr)
	}
	if _, err := os.Stat(file + ".part"); !os.IsNotExist(err) {
		t.Errorf("%s.part left behind: %v", file, err)
	}
	if err := store.VerifySnapshot(file); err != nil {
		t.Errorf("saved snapshot does not verify: %v", err)
	}
	// A corrupted copy is refused.
	b, _ := os.ReadFile(file)
	b[len(b)/2] ^= 0xff
	bad := filepath.Join(dir, "bad.db")
	os.WriteFile(bad, b, 0o600)
	if err := store.VerifySnapshot(bad); err == nil || !strings.Contains(err.Error(), "SHA-256 mismatch") {
		t.Errorf("corrupted snapshot: %v, want a SHA-256 mismatch", err)
	}
}

func TestUsageErrorsNameTheFix(t *testing.T) {
	t.Parallel()
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"put", "--lease", "zz", "/k", "v"}, `--lease "zz": not a hex lease ID`},
		{[]string{"get", "-w", "yaml", "/k"}, `--write-out "yaml" is not supported by get (use simple or json)`},
		{[]string{"get", "--consistency", "x", "/k"}, `--consistency "x": use l (linearizable) or s (serializable)`},
		{[]string{"get", "--prefix", "--from-key", "/k"}, `--prefix and --from-key exclude each other`},
		{[]string{"lease", "revoke", "xyz"}, `lease ID "xyz" is not hex`},
		{[]string{"compact", "ten"}, `REV "ten" is not a revision number`},
	}
	for _, c := range cases {
		r := tend(t, nil, c.args...)
		if r.err == nil || !strings.Contains(string(r.stderr), c.want) {
			t.Errorf("tend %q: err %v stderr %q, want %q", c.args, r.err, r.stderr, c.want)
		}
	}
}

func TestEndpointsFromEnvironment(t *testing.T) {
	t.Parallel()
	ok(t, nil, "put", "/env/k", "from-env")
	cmd := exec.Command(tendBin, "get", "/env/k")
	cmd.Env = append(os.Environ(), "TEND_ENDPOINTS=", "ETCDCTL_ENDPOINTS="+serverEndpoint(t))
	out, err := cmd.Output()
	if err != nil || string(out) != "from-env" {
		t.Errorf("ETCDCTL_ENDPOINTS: %v %q", err, out)
	}
}

func TestBenchCommand(t *testing.T) {
	t.Parallel()
	var rep struct {
		Op       string  `json:"op"`
		Requests int     `json:"requests"`
		Errors   int     `json:"errors"`
		RPS      float64 `json:"requests_per_second"`
		P99      int64   `json:"p99_ns"`
	}
	out := ok(t, nil, "bench", "put", "--total", "50", "--clients", "4", "--conns", "2", "--key-space-size", "10", "-w", "json")
	if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.Op != "put" || rep.Requests != 50 || rep.Errors != 0 || rep.RPS <= 0 || rep.P99 <= 0 {
		t.Errorf("bench put -w json = %q (%v)", out, err)
	}
	table := ok(t, nil, "bench", "range", "--total", "20", "--consistency", "s")
	if !strings.Contains(table, "req/s") || !strings.Contains(table, "range") {
		t.Errorf("bench range table = %q", table)
	}
	r := tend(t, nil, "bench", "range", "--total", "1", "--consistency", "q")
	if r.err == nil || !strings.Contains(string(r.stderr), `--consistency "q"`) {
		t.Errorf("bad consistency: %v %q", r.err, r.stderr)
	}
}

// onTend reports whether t runs under TestAgainstTendMember.
func onTend(t *testing.T) bool { return strings.HasPrefix(t.Name(), "TestAgainstTendMember/") }

// serverEndpoint is the shared server t talks to.
func serverEndpoint(t *testing.T) string {
	if onTend(t) {
		return tendEndpoint
	}
	return etcdEndpoint
}

// memberName is the name of serverEndpoint's member.
func memberName(t *testing.T) string {
	if onTend(t) {
		return "tend"
	}
	return "oracle"
}

// startFresh starts a fresh server of t's kind in dir.
func startFresh(t *testing.T, dir string) (string, func(), error) {
	if onTend(t) {
		return startTendMember(dir)
	}
	return startEtcd(dir)
}

// TestAgainstTendMember runs the client tests again, against tend's own
// member instead of etcd.
func TestAgainstTendMember(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		f    func(*testing.T)
	}{
		{"SeedFlowFileRoundTrip", TestSeedFlowFileRoundTrip},
		{"SetIsPut", TestSetIsPut},
		{"GetMissingKeyIsAnError", TestGetMissingKeyIsAnError},
		{"GetRanges", TestGetRanges},
		{"PutFlags", TestPutFlags},
		{"Del", TestDel},
		{"Txn", TestTxn},
		{"Lease", TestLease},
		{"Watch", TestWatch},
		{"MemberAndEndpoint", TestMemberAndEndpoint},
		{"CompactAndSnapshot", TestCompactAndSnapshot},
		{"Bench", TestBenchCommand},
		{"MaintenanceCommands", TestMaintenanceCommands},
		{"LockWaitsForTheHolder", TestLockWaitsForTheHolder},
		{"LockRunsCommand", TestLockRunsCommand},
		{"LockSessionExpired", TestLockSessionExpired},
		{"ElectCampaignAndObserve", TestElectCampaignAndObserve},
		{"LockElectBadArgs", TestLockElectBadArgs},
		{"LockElectMatchEtcdctl", TestLockElectMatchEtcdctl},
	} {
		t.Run(tc.name, tc.f)
	}
}
