package main

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tendkv/tend/internal/testenv"
)

// check perf runs for a minute and check datascale puts 10000 keys; these
// tests run them with --duration 1s and a few hundred --keys against fresh
// servers, and test the verdict's criteria on made-up latencies.

// TestCheckPerfVerdict prints etcdctl's verdict lines for stats that pass
// and that fail each criterion.
func TestCheckPerfVerdict(t *testing.T) {
	t.Parallel()
	lats := func(n int, l float64) []float64 {
		s := make([]float64, n)
		for i := range s {
			s[i] = l
		}
		return s
	}
	for _, c := range []struct {
		name   string
		stats  loadStats
		want   string
		failed int
	}{
		{"pass", loadStats{lats: lats(150, 0.01), elapsed: time.Second},
			"PASS: Throughput is 151 writes/s\nPASS: Slowest request took 0.010000s\nPASS: Stddev is 0.000000s\nPASS\n", 0},
		{"errors and no throughput", loadStats{errs: map[string]int{"etcdserver: b": 3, "etcdserver: a": 3, "etcdserver: c": 9}, elapsed: time.Second},
			"FAIL: too many errors\nFAIL: ERROR(etcdserver: c) -> 9\nFAIL: ERROR(etcdserver: a) -> 3\nFAIL: ERROR(etcdserver: b) -> 3\n" +
				"FAIL: Throughput too low: 1 writes/s\nPASS: Slowest request took 0.000000s\nPASS: Stddev is 0.000000s\nFAIL\n", 2},
		{"90% of the rate is too low", loadStats{lats: lats(135, 0.01), elapsed: time.Second},
			"FAIL: Throughput too low: 136 writes/s\nPASS: Slowest request took 0.010000s\nPASS: Stddev is 0.000000s\nFAIL\n", 1},
		{"slow", loadStats{lats: append(lats(299, 0.01), 0.6), elapsed: 2 * time.Second},
			"PASS: Throughput is 151 writes/s\nSlowest request took too long: 0.600000s\nPASS: Stddev is 0.034007s\nFAIL\n", 1},
		{"uneven", loadStats{lats: append(lats(150, 0), lats(150, 0.4)...), elapsed: 2 * time.Second},
			"PASS: Throughput is 151 writes/s\nPASS: Slowest request took 0.400000s\nStddev too high: 0.200000s\nFAIL\n", 1},
	} {
		var out bytes.Buffer
		failed := perfVerdict(&out, &c.stats, 150)
		if out.String() != c.want || len(failed) != c.failed {
			t.Errorf("%s: printed\n%s(failed %q)\nwant\n%s(%d failed)", c.name, out.String(), failed, c.want, c.failed)
		}
	}
}

func TestParseResidentMemory(t *testing.T) {
	t.Parallel()
	metrics := "# HELP process_resident_memory_bytes Resident memory size in bytes.\n" +
		"# TYPE process_resident_memory_bytes gauge\n" +
		"process_resident_memory_bytes_other 5\n" +
		"process_resident_memory_bytes 4.2123008e+07\n"
	if v, err := parseResidentMemory(metrics); err != nil || v != 42123008 {
		t.Errorf("parse = %v, %v; want 42123008", v, err)
	}
	if _, err := parseResidentMemory("go_goroutines 8\n"); err == nil || !strings.Contains(err.Error(), "no process_resident_memory_bytes") {
		t.Errorf("without the metric: %v", err)
	}
}

// TestPaceKeepsTheRate: pace never sends faster than its rate, even after
// a send that blocked.
func TestPaceKeepsTheRate(t *testing.T) {
	t.Parallel()
	const rate = 500
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	var n atomic.Int64
	start := time.Now()
	pace(ctx, rate, func() bool {
		if n.Add(1) == 10 {
			time.Sleep(100 * time.Millisecond) // no burst to make up for it
		}
		return true
	})
	elapsed := time.Since(start)
	if max := int64(elapsed.Seconds()*rate) + 2; n.Load() > max {
		t.Errorf("%d sends in %s at %d/s; want at most %d", n.Load(), elapsed, rate, max)
	}
	if n.Load() < 10 {
		t.Errorf("%d sends in %s at %d/s", n.Load(), elapsed, rate)
	}
}

// lines matches out line by line against patterns (regular expressions).
func matchLines(t *testing.T, what, out string, patterns ...string) [][]string {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != len(patterns) || !strings.HasSuffix(out, "\n") {
		t.Fatalf("%s printed %d lines, want %d:\n%s", what, len(lines), len(patterns), out)
	}
	var subs [][]string
	for i, p := range patterns {
		m := regexp.MustCompile(`^` + p + `$`).FindStringSubmatch(lines[i])
		if m == nil {
			t.Fatalf("%s line %d = %q, want %s; output:\n%s", what, i+1, lines[i], p, out)
		}
		subs = append(subs, m)
	}
	return subs
}

// TestCheck runs check perf and check datascale, short, against a fresh
// etcd and a fresh tend member: what they print, that they leave no keys,
// --auto-compact and --auto-defrag, a prefix that holds keys and a cluster
// that refuses the puts.
func TestCheck(t *testing.T) {
	t.Parallel()
	forEachKind(t, testCheck)
}

func testCheck(t *testing.T, k serverKind) {
	ep, stop, err := k.start(filepath.Join(t.TempDir(), "server"))
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	cli := newClient(t, ep)
	tendRun := func(args ...string) (string, string, int) {
		t.Helper()
		return run(t, "", noTendEnv, tendBin, append([]string{"--endpoints", ep}, args...)...)
	}
	const perfPrefix, dsPrefix = "/etcdctl-check-perf/", "/etcdctl-check-datascale/"

	out, stderr, code := tendRun("check", "perf", "--duration", "1s", "--auto-compact", "--auto-defrag")
	m := matchLines(t, "check perf", out,
		`Compacting with revision (\d+)`, `Compacted with revision (\d+)`,
		regexp.QuoteMeta(fmt.Sprintf("Defragmenting %q", ep)), regexp.QuoteMeta(fmt.Sprintf("Defragmented %q", ep)),
		`(PASS: Throughput is|FAIL: Throughput too low:) (\d+) writes/s`,
		`(PASS: Slowest request took|Slowest request took too long:) \d+\.\d{6}s`,
		`(PASS: Stddev is|Stddev too high:) \d+\.\d{6}s`,
		`(PASS|FAIL)`)
	if m[0][1] != m[1][1] {
		t.Errorf("compacted %s after compacting %s", m[1][1], m[0][1])
	}
	if n, _ := strconv.Atoi(m[4][2]); n < 50 {
		t.Errorf("check perf: throughput %d writes/s, where 150 are sent each second", n)
	}
	if pass := m[7][1] == "PASS"; pass != (code == 0) || pass != (stderr == "") || !pass && !strings.HasPrefix(stderr, "Error: check perf failed: ") {
		t.Errorf("check perf printed %s, exit %d, stderr %q", m[7][1], code, stderr)
	}
	if code != 0 {
		t.Logf("check perf on a loaded test machine failed:\n%s", out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, "/etcdctl-check-", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || resp.Count != 0 || fmt.Sprint(resp.Header.Revision) != m[0][1] {
		t.Errorf("after check perf: %v keys left, revision %d (compacted %s), %v", resp.Count, resp.Header.Revision, m[0][1], err)
	}

	out, stderr, code = tendRun("check", "datascale", "--keys", "300", "--auto-compact", "--auto-defrag")
	matchLines(t, "check datascale", out,
		regexp.QuoteMeta("Start data scale check for work load [300 key-value pairs, 1024 bytes per key-value, 50 concurrent clients]."),
		`Compacting with revision (\d+)`, `Compacted with revision (\d+)`,
		regexp.QuoteMeta(fmt.Sprintf("Defragmenting %q", ep)), regexp.QuoteMeta(fmt.Sprintf("Defragmented %q", ep)),
		`PASS: Approximate system memory used : -?\d+\.\d\d MB\.`)
	if code != 0 || stderr != "" {
		t.Errorf("check datascale: exit %d, stderr %q", code, stderr)
	}
	if resp, err := cli.Get(ctx, "/etcdctl-check-", clientv3.WithPrefix(), clientv3.WithCountOnly()); err != nil || resp.Count != 0 {
		t.Errorf("after check datascale: %v keys left, %v", resp.Count, err)
	}

	// A prefix that holds keys is refused with etcdctl's exit status 3.
	mirrorPut(t, cli, perfPrefix+"k", "v")
	mirrorPut(t, cli, dsPrefix+"k", "v")
	for _, c := range []struct{ args, want string }{
		{"perf", `prefix "/etcdctl-check-perf/" has keys. Delete with 'tend del --prefix /etcdctl-check-perf/' first`},
		{"datascale", `prefix "/etcdctl-check-datascale/" has keys. Delete with tend del --prefix /etcdctl-check-datascale/ first`},
	} {
		if out, stderr, code := tendRun("check", c.args); code != 3 || out != "" || stderr != "Error: "+c.want+"\n" {
			t.Errorf("check %s with keys under its prefix: exit %d, stdout %q, stderr %q; want 3 and %s", c.args, code, out, stderr, c.want)
		}
	}
	mirrorDel(t, cli, "/etcdctl-check-", clientv3.WithPrefix())

	// A cluster out of space refuses every put: FAIL, exit 1.
	raiseNoSpace(t, ep)
	out, stderr, code = tendRun("check", "perf", "--duration", "1s")
	matchLines(t, "check perf without space", out,
		`FAIL: too many errors`,
		regexp.QuoteMeta(`FAIL: ERROR(etcdserver: mvcc: database space exceeded) -> `)+`\d+`,
		regexp.QuoteMeta(`FAIL: Throughput too low: 1 writes/s`),
		regexp.QuoteMeta(`PASS: Slowest request took 0.000000s`),
		regexp.QuoteMeta(`PASS: Stddev is 0.000000s`),
		`FAIL`)
	if want := "Error: check perf failed: puts failed; throughput 1 writes/s, not above 135 (90% of 150)\n"; code != 1 || stderr != want {
		t.Errorf("check perf without space: exit %d, stderr %q; want 1 and %q", code, stderr, want)
	}
	out, stderr, code = tendRun("check", "datascale", "--keys", "20")
	matchLines(t, "check datascale without space", out,
		regexp.QuoteMeta("Start data scale check for work load [20 key-value pairs, 1024 bytes per key-value, 50 concurrent clients]."),
		`FAIL: too many errors`,
		regexp.QuoteMeta(`FAIL: ERROR(etcdserver: mvcc: database space exceeded) -> 20`))
	if want := "Error: check datascale failed: 20 of 20 puts failed\n"; code != 1 || stderr != want {
		t.Errorf("check datascale without space: exit %d, stderr %q; want 1 and %q", code, stderr, want)
	}
}

// TestCheckMatchEtcdctl runs tend's checks and the real etcdctl's side by
// side: the same argument errors and exit statuses, and the same lines
// from check datascale (the numbers aside).
func TestCheckMatchEtcdctl(t *testing.T) {
	t.Parallel()
	forEachKind(t, testCheckMatchEtcdctl)
}

func testCheckMatchEtcdctl(t *testing.T, k serverKind) {
	_, etcdctl := testenv.EtcdBinaries(t)
	ep := k.shared()
	mirrorPut(t, newClient(t, ep), "/check-cmp/k", "v")
	for _, args := range [][]string{
		{"check", "perf", "--load", "x"},
		{"check", "datascale", "--load", "xL"},
		{"check", "perf", "--prefix", "/check-cmp/"},
		{"check", "datascale", "--prefix", "/check-cmp/"},
	} {
		args = append([]string{"--endpoints", ep}, args...)
		ctlOut, ctlErr, ctlCode := run(t, "", nil, etcdctl, args...)
		out, stderr, code := run(t, "", noTendEnv, tendBin, args...)
		ctlErr = strings.TrimSuffix(strings.ReplaceAll(ctlErr, "etcdctl del", "tend del"), "\n")
		if code != ctlCode || out != ctlOut || !strings.HasPrefix(stderr, ctlErr) {
			t.Errorf("%q:\n etcdctl exit %d, stdout %q, stderr %q\n    tend exit %d, stdout %q, stderr %q", args, ctlCode, ctlOut, ctlErr, code, out, stderr)
		}
	}

	// etcdctl's datascale check of the s load (about 3s) and tend's, short,
	// on a fresh server: the same lines but for the numbers.
	fresh, stop, err := k.start(filepath.Join(t.TempDir(), "server"))
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	number := regexp.MustCompile(`-?\d+(\.\d+)?`)
	var got [2]string
	for i, c := range []struct {
		bin  string
		env  []string
		args []string
	}{
		{etcdctl, nil, []string{"check", "datascale", "--auto-compact"}},
		{tendBin, noTendEnv, []string{"check", "datascale", "--auto-compact", "--keys", "300"}},
	} {
		out, _, code := run(t, "", c.env, c.bin, append([]string{"--endpoints", fresh}, c.args...)...)
		got[i] = fmt.Sprintf("%sexit %d", number.ReplaceAllString(out, "N"), code)
	}
	if got[0] != got[1] {
		t.Errorf("check datascale:\n etcdctl %q\n    tend %q", got[0], got[1])
	}
}
