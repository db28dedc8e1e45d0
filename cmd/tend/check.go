package main

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// etcdctl's exit statuses of the checks (cobrautl's ExitInvalidInput and
// ExitBadFeature).
const (
	exitInvalidInput = 3 // the prefix has keys
	exitBadFeature   = 4 // an unknown --load
)

// perfLoad is a workload of check perf: puts at a steady rate from many
// clients.
type perfLoad struct {
	rate     int // puts per second
	clients  int
	duration time.Duration
}

// etcdctl's workloads.
var perfLoads = map[string]perfLoad{
	"s":  {rate: 150, clients: 50, duration: time.Minute},
	"m":  {rate: 1000, clients: 200, duration: time.Minute},
	"l":  {rate: 8000, clients: 500, duration: time.Minute},
	"xl": {rate: 15000, clients: 1000, duration: time.Minute},
}

// datascaleLoad is a workload of check datascale: keys pairs of kvSize
// bytes, put as fast as clients can.
type datascaleLoad struct {
	keys    int
	kvSize  int
	clients int
}

var datascaleLoads = map[string]datascaleLoad{
	"s":  {keys: 10000, kvSize: 1024, clients: 50},
	"m":  {keys: 100000, kvSize: 1024, clients: 200},
	"l":  {keys: 1000000, kvSize: 1024, clients: 500},
	"xl": {keys: 3000000, kvSize: 1024, clients: 1000},
}

// The pass criteria of check perf, etcdctl's.
const (
	perfMinRateShare = 0.9 // of the load's rate
	perfMaxSlowest   = 0.5 // seconds
	perfMaxStddev    = 0.1 // seconds
)

// loadName is the workload --load names: s, m, l, xl or small, medium,
// large, xLarge.
func loadName(load string) (string, error) {
	switch load {
	case "s", "small":
		return "s", nil
	case "m", "medium":
		return "m", nil
	case "l", "large":
		return "l", nil
	case "xl", "xLarge":
		return "xl", nil
	}
	return "", &exitError{code: exitBadFeature, err: fmt.Errorf("unknown load option %v (use s, m, l or xl, or small, medium, large or xLarge)", load)}
}

// checkFlags are the flags check perf and check datascale share.
type checkFlags struct {
	load        string
	prefix      string
	autoCompact bool
	autoDefrag  bool
}

func (ck *checkFlags) add(cmd *cobra.Command, what, prefix string) {
	fs := cmd.Flags()
	fs.StringVar(&ck.load, "load", "s", "the "+what+"'s workload: s (small), m (medium), l (large) or xl (xLarge)")
	fs.StringVar(&ck.prefix, "prefix", prefix, "the prefix of the "+what+"'s keys (it must hold none)")
	fs.BoolVar(&ck.autoCompact, "auto-compact", false, "compact to the last revision when done")
	fs.BoolVar(&ck.autoDefrag, "auto-defrag", false, "defragment each endpoint when done")
}

func newCheckCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "check <subcommand>",
		Short: "Check a cluster's write performance (check perf) or its memory per key (check datascale), as etcdctl check",
	}
	cf := addClientFlags(cmd)
	cmd.AddCommand(checkPerfCmd(cf), checkDatascaleCmd(cf))
	return cmd
}

func checkPerfCmd(cf *clientFlags) *cobra.Command {
	var (
		ck       checkFlags
		duration time.Duration
	)
	cmd := &cobra.Command{
		Use:   "perf [options]",
		Short: "Check that the cluster takes a workload of puts at a steady rate",
		Long: `Check perf puts keys of 256 bytes with values of 1 KiB under --prefix
from many clients at a steady rate for a minute, as etcdctl check perf does:

  load  rate         clients
  s     150 puts/s   50
  m     1000 puts/s  200
  l     8000 puts/s  500
  xl    15000 puts/s 1000

Then it deletes the keys and prints etcdctl's verdict: PASS when no put
failed, the throughput reached 90% of the rate, the slowest put took at most
0.5s and the standard deviation of the puts' latencies is at most 0.1s. Any
FAIL ends with the line FAIL and exit status 1.

--duration shortens (or lengthens) the minute. Ctrl-C ends the load early;
the keys are still deleted and the verdict printed for what was sent.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			name, err := loadName(ck.load)
			if err != nil {
				return err
			}
			if err := cf.checkWriteOut("check perf", "simple"); err != nil {
				return err
			}
			load := perfLoads[name]
			if duration < 0 {
				return fmt.Errorf("--duration %s: give how long the load runs, e.g. 10s (0: the load's minute)", duration)
			}
			if duration > 0 {
				load.duration = duration
			}
			return runCheckPerf(cmd, cf, ck, load)
		},
	}
	ck.add(cmd, "performance check", "/etcdctl-check-perf/")
	cmd.Flags().DurationVar(&duration, "duration", 0, "how long the load runs (0: the load's minute)")
	return cmd
}

func checkDatascaleCmd(cf *clientFlags) *cobra.Command {
	var (
		ck   checkFlags
		keys int
	)
	cmd := &cobra.Command{
		Use:   "datascale [options]",
		Short: "Check how much memory a member uses to hold a workload of keys",
		Long: `Check datascale reads process_resident_memory_bytes from the first
endpoint's /metrics, puts pairs of a 512-byte key and a 512-byte value under
--prefix from many clients as fast as they go, reads the memory again,
deletes the keys and prints the difference, as etcdctl check datascale does:

  load  keys       clients
  s     10000      50
  m     100000     200
  l     1000000    500
  xl    3000000    1000

It fails (exit status 1) when a put fails or the memory cannot be read.
--keys puts fewer (or more) keys than the load's.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			name, err := loadName(ck.load)
			if err != nil {
				return err
			}
			if err := cf.checkWriteOut("check datascale", "simple"); err != nil {
				return err
			}
			load := datascaleLoads[name]
			if keys < 0 {
				return fmt.Errorf("--keys %d: give how many keys to put (0: the load's)", keys)
			}
			if keys > 0 {
				load.keys = keys
			}
			return runCheckDatascale(cmd, cf, ck, load)
		},
	}
	ck.add(cmd, "datascale check", "/etcdctl-check-datascale/")
	cmd.Flags().IntVar(&keys, "keys", 0, "how many keys to put (0: the load's)")
	return cmd
}

// checkClients connects n clients, each with its own connection, as
// etcdctl's checks do.
func checkClients(cf *clientFlags, n int) ([]*clientv3.Client, error) {
	clients := make([]*clientv3.Client, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() { // ends when the client has connected or failed
			defer wg.Done()
			clients[i], errs[i] = cf.client()
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			closeClients(clients)
			return nil, err
		}
	}
	return clients, nil
}

func closeClients(clients []*clientv3.Client) {
	for _, c := range clients {
		if c != nil {
			c.Close()
		}
	}
}

// checkPrefixEmpty fails unless prefix holds no keys, as etcdctl does
// (with the exit status of invalid input). quote is etcdctl's wording of
// the command to run, which differs between the checks.
func checkPrefixEmpty(ctx context.Context, cf *clientFlags, c *clientv3.Client, prefix string, quote bool) error {
	gctx, cancel := cf.commandContext(ctx)
	defer cancel()
	resp, err := c.Get(gctx, prefix, clientv3.WithPrefix(), clientv3.WithLimit(1), clientv3.WithKeysOnly())
	if err != nil {
		return cf.requestError(fmt.Sprintf("read the keys under %q", prefix), err)
	}
	if len(resp.Kvs) == 0 {
		return nil
	}
	del := "tend del --prefix " + prefix
	if quote {
		del = "'" + del + "'"
	}
	return &exitError{code: exitInvalidInput, err: fmt.Errorf("prefix %q has keys. Delete with %s first", prefix, del)}
}

// loadStats are the outcomes of a check's requests.
type loadStats struct {
	lats    []float64 // seconds, of the requests that succeeded
	errs    map[string]int
	elapsed time.Duration
}

func (s *loadStats) merge(o *loadStats) {
	s.lats = append(s.lats, o.lats...)
	for e, n := range o.errs {
		if s.errs == nil {
			s.errs = map[string]int{}
		}
		s.errs[e] += n
	}
}

func (s *loadStats) record(start time.Time, err error) {
	if err != nil {
		if s.errs == nil {
			s.errs = map[string]int{}
		}
		s.errs[err.Error()]++
		return
	}
	s.lats = append(s.lats, time.Since(start).Seconds())
}

// rps is the requests that succeeded per second.
func (s *loadStats) rps() float64 {
	if s.elapsed <= 0 {
		return 0
	}
	return float64(len(s.lats)) / s.elapsed.Seconds()
}

func (s *loadStats) slowest() float64 {
	if len(s.lats) == 0 {
		return 0
	}
	return slices.Max(s.lats)
}

// stddev is the population standard deviation of the latencies (0 with
// none, where etcdctl prints NaN).
func (s *loadStats) stddev() float64 {
	if len(s.lats) == 0 {
		return 0
	}
	var sum float64
	for _, l := range s.lats {
		sum += l
	}
	mean := sum / float64(len(s.lats))
	var sq float64
	for _, l := range s.lats {
		sq += (l - mean) * (l - mean)
	}
	return math.Sqrt(sq / float64(len(s.lats)))
}

// printErrors prints etcdctl's lines for failed requests, most frequent
// first; false if there were any.
func (s *loadStats) printErrors(w io.Writer) bool {
	if len(s.errs) == 0 {
		return true
	}
	fmt.Fprintln(w, "FAIL: too many errors")
	msgs := make([]string, 0, len(s.errs))
	for m := range s.errs {
		msgs = append(msgs, m)
	}
	slices.SortFunc(msgs, func(a, b string) int {
		if s.errs[a] != s.errs[b] {
			return s.errs[b] - s.errs[a]
		}
		return strings.Compare(a, b)
	})
	for _, m := range msgs {
		fmt.Fprintf(w, "FAIL: ERROR(%v) -> %d\n", m, s.errs[m])
	}
	return false
}

// perfVerdict prints check perf's verdict on s for a load of rate puts/s,
// in etcdctl's words, and returns what failed (nothing: PASS).
func perfVerdict(w io.Writer, s *loadStats, rate int) []string {
	var failed []string
	if !s.printErrors(w) {
		failed = append(failed, "puts failed")
	}
	if rps := s.rps(); rps/float64(rate) <= perfMinRateShare {
		fmt.Fprintf(w, "FAIL: Throughput too low: %d writes/s\n", int(rps)+1)
		failed = append(failed, fmt.Sprintf("throughput %d writes/s, not above %d (90%% of %d)", int(rps)+1, int(perfMinRateShare*float64(rate)), rate))
	} else {
		fmt.Fprintf(w, "PASS: Throughput is %d writes/s\n", int(rps)+1)
	}
	if sl := s.slowest(); sl > perfMaxSlowest {
		fmt.Fprintf(w, "Slowest request took too long: %fs\n", sl)
		failed = append(failed, fmt.Sprintf("slowest put %.3fs, over %.1fs", sl, perfMaxSlowest))
	} else {
		fmt.Fprintf(w, "PASS: Slowest request took %fs\n", sl)
	}
	if sd := s.stddev(); sd > perfMaxStddev {
		fmt.Fprintf(w, "Stddev too high: %fs\n", sd)
		failed = append(failed, fmt.Sprintf("latency stddev %.3fs, over %.1fs", sd, perfMaxStddev))
	} else {
		fmt.Fprintf(w, "PASS: Stddev is %fs\n", sd)
	}
	if len(failed) > 0 {
		fmt.Fprintln(w, "FAIL")
	} else {
		fmt.Fprintln(w, "PASS")
	}
	return failed
}

// checkKey is a key of size bytes under prefix: a random number, then
// zeros, as etcdctl's.
func checkKey(prefix string, size int) string {
	k := make([]byte, size)
	binary.PutVarint(k, rand.Int64N(math.MaxInt64))
	return prefix + string(k)
}

// putWorkers runs one worker per client, each putting the keys it receives
// from keys, each put bounded by --command-timeout; wait returns their
// stats once keys is closed and drained. done counts finished puts.
func putWorkers(cf *clientFlags, clients []*clientv3.Client, keys <-chan string, value string, done *atomic.Int64) (wait func() *loadStats) {
	stats := make([]loadStats, len(clients))
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Add(1)
		go func() { // ends when keys is closed
			defer wg.Done()
			for k := range keys {
				ctx, cancel := cf.commandContext(context.Background())
				start := time.Now()
				_, err := c.Put(ctx, k, value)
				cancel()
				stats[i].record(start, err)
				done.Add(1)
			}
		}()
	}
	return func() *loadStats {
		wg.Wait()
		var all loadStats
		for i := range stats {
			all.merge(&stats[i])
		}
		return &all
	}
}

func runCheckPerf(cmd *cobra.Command, cf *clientFlags, ck checkFlags, load perfLoad) error {
	clients, err := checkClients(cf, load.clients)
	if err != nil {
		return err
	}
	defer closeClients(clients)
	// Ctrl-C or SIGTERM ends the load early; the cleanup and the verdict
	// follow.
	sigCtx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := checkPrefixEmpty(sigCtx, cf, clients[0], ck.prefix, true); err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	ctx, cancel := context.WithTimeout(sigCtx, load.duration)
	defer cancel()

	start := time.Now()
	secs := int64(math.Ceil(load.duration.Seconds()))
	bar := startProgress(cmd.ErrOrStderr(), secs, func() int64 { return min(int64(time.Since(start)/time.Second), secs) })
	keys := make(chan string, load.clients)
	var done atomic.Int64
	wait := putWorkers(cf, clients, keys, string(make([]byte, 1024)), &done)
	pace(ctx, load.rate, func() bool {
		select {
		case keys <- checkKey(ck.prefix, 256):
			return true
		case <-ctx.Done():
			return false
		}
	})
	close(keys)
	stats := wait()
	stats.elapsed = time.Since(start)
	bar()

	if err := checkCleanup(out, cf, clients[0], ck, "FAIL: Cleanup failed during key deletion: ERROR(%v)\n"); err != nil {
		return err
	}
	if failed := perfVerdict(out, stats, load.rate); len(failed) > 0 {
		return fmt.Errorf("check perf failed: %s", strings.Join(failed, "; "))
	}
	return nil
}

// pace calls send at rate calls per second until ctx ends or send returns
// false. Like a token bucket of one token, it does not make up for time
// lost while send blocks.
func pace(ctx context.Context, rate int, send func() bool) {
	interval := time.Second / time.Duration(rate)
	next := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		if wait := time.Until(next); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
		} else if ctx.Err() != nil {
			return
		}
		if !send() {
			return
		}
		next = next.Add(interval)
		if behind := time.Now().Add(-interval); next.Before(behind) {
			next = behind
		}
	}
}

// checkCleanup deletes the check's keys and compacts and defragments as
// asked, printing etcdctl's lines. A failed delete is printed with
// deleteFailed (check perf goes on to its verdict) or, when that is empty,
// returned.
func checkCleanup(out io.Writer, cf *clientFlags, c *clientv3.Client, ck checkFlags, deleteFailed string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	resp, err := c.Delete(ctx, ck.prefix, clientv3.WithPrefix())
	cancel()
	switch {
	case err != nil && deleteFailed != "":
		fmt.Fprintf(out, deleteFailed, err)
	case err != nil:
		return cf.requestError(fmt.Sprintf("delete the keys under %q", ck.prefix), err)
	case ck.autoCompact:
		rev := resp.Header.Revision
		fmt.Fprintf(out, "Compacting with revision %d\n", rev)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, err := c.Compact(ctx, rev, clientv3.WithCompactPhysical())
		cancel()
		if err != nil {
			return cf.requestError(fmt.Sprintf("compact to revision %d", rev), err)
		}
		fmt.Fprintf(out, "Compacted with revision %d\n", rev)
	}
	if ck.autoDefrag {
		for _, ep := range c.Endpoints() {
			fmt.Fprintf(out, "Defragmenting %q\n", ep)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			_, err := c.Defragment(ctx, ep)
			cancel()
			if err != nil {
				return cf.requestError("defragment "+ep, err)
			}
			fmt.Fprintf(out, "Defragmented %q\n", ep)
		}
	}
	return nil
}

func runCheckDatascale(cmd *cobra.Command, cf *clientFlags, ck checkFlags, load datascaleLoad) error {
	clients, err := checkClients(cf, load.clients)
	if err != nil {
		return err
	}
	defer closeClients(clients)
	// Ctrl-C or SIGTERM stops the puts; the keys are still deleted.
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := checkPrefixEmpty(ctx, cf, clients[0], ck.prefix, false); err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	before, err := residentMemory(cf, cf.endpoints[0])
	if err != nil {
		fmt.Fprintln(out, "FAIL: Could not read process_resident_memory_bytes before the put operations.")
		return err
	}
	fmt.Fprintf(out, "Start data scale check for work load [%v key-value pairs, %v bytes per key-value, %v concurrent clients].\n", load.keys, load.kvSize, load.clients)

	var done atomic.Int64
	bar := startProgress(cmd.ErrOrStderr(), int64(load.keys), done.Load)
	keys := make(chan string, load.clients)
	wait := putWorkers(cf, clients, keys, string(make([]byte, load.kvSize/2)), &done)
send:
	for range load.keys {
		select {
		case keys <- checkKey(ck.prefix, load.kvSize/2):
		case <-ctx.Done():
			break send
		}
	}
	close(keys)
	stats := wait()
	bar()

	after, memErr := residentMemory(cf, cf.endpoints[0])
	if memErr != nil {
		fmt.Fprintln(out, "FAIL: Could not read process_resident_memory_bytes after the put operations.")
	}
	if err := checkCleanup(out, cf, clients[0], ck, ""); err != nil {
		return err
	}
	if memErr != nil {
		return memErr
	}
	if !stats.printErrors(out) {
		n := 0
		for _, c := range stats.errs {
			n += c
		}
		return fmt.Errorf("check datascale failed: %d of %d puts failed", n, n+len(stats.lats))
	}
	mb := (after - before) / (1024 * 1024)
	fmt.Fprintf(out, "PASS: Approximate system memory used : %v MB.\n", strconv.FormatFloat(mb, 'f', 2, 64))
	return nil
}

// residentMemory reads process_resident_memory_bytes from the endpoint's
// /metrics, over TLS when the endpoint is https:// or the client uses TLS.
func residentMemory(cf *clientFlags, ep string) (float64, error) {
	host, secure := endpointHost(ep)
	cfg, err := cf.config()
	if err != nil {
		return 0, err
	}
	tr := &http.Transport{}
	scheme := "http"
	if secure || cfg.TLS != nil {
		scheme = "https"
		tc := &tls.Config{}
		if cfg.TLS != nil {
			tc = cfg.TLS.Clone()
			tc.NextProtos = nil
		}
		tr.TLSClientConfig = tc
	}
	defer tr.CloseIdleConnections()
	url := scheme + "://" + host + "/metrics"
	hc := &http.Client{Transport: tr, Timeout: cf.commandTimeout}
	resp, err := hc.Get(url)
	if err != nil {
		return 0, fmt.Errorf("read process_resident_memory_bytes: %w (the first endpoint's /metrics must answer)", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, fmt.Errorf("read process_resident_memory_bytes: read %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("read process_resident_memory_bytes: %s answered %s", url, resp.Status)
	}
	v, err := parseResidentMemory(string(body))
	if err != nil {
		return 0, fmt.Errorf("read process_resident_memory_bytes from %s: %w", url, err)
	}
	return v, nil
}

// parseResidentMemory finds process_resident_memory_bytes in Prometheus's
// text format.
func parseResidentMemory(metrics string) (float64, error) {
	const name = "process_resident_memory_bytes"
	for _, line := range strings.Split(metrics, "\n") {
		rest, ok := strings.CutPrefix(line, name)
		if !ok || rest == "" || (rest[0] != ' ' && rest[0] != '\t') {
			continue
		}
		fields := strings.Fields(rest)
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return 0, fmt.Errorf("%s %q is not a number", name, fields[0])
		}
		if v <= 0 {
			return 0, fmt.Errorf("%s is %v", name, v)
		}
		return v, nil
	}
	return 0, fmt.Errorf("no %s (the server exports no process metrics)", name)
}

// startProgress draws "n / total" on w while a check runs, when w is a
// terminal (etcdctl's bar, without the bar); stop ends the line.
func startProgress(w io.Writer, total int64, current func() int64) (stop func()) {
	f, ok := w.(*os.File)
	if !ok || !isTerminal(f) {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	draw := func() {
		n := current()
		fmt.Fprintf(w, "\r%d / %d %6.2f%%", n, total, 100*float64(n)/float64(max(total, 1)))
	}
	go func() { // ends when stop closes done
		defer wg.Done()
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			draw()
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
		draw()
		fmt.Fprintln(w)
	}
}
