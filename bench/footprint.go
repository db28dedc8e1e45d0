package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// FootprintConfig describes one footprint run of the agent.
type FootprintConfig struct {
	Endpoints   []string
	DialTimeout time.Duration
	// Agent is the command that runs the agent, to which the bench adds
	// --config and --log-level (for tend: the tend binary and "agent").
	Agent []string
	// Templates are rendered from Keys keys spread evenly over them: each
	// template lists its own folder of Keys/Templates keys.
	Templates int
	Keys      int
	ValSize   int
	// Idle is how long the idle CPU is measured, Settle after everything
	// rendered (zero Settle: 2s).
	Idle   time.Duration
	Settle time.Duration
	// Changes are puts to the templates' keys after the idle window, one
	// template after another, each waited for in its file, so the peak RSS
	// includes renders on changes.
	Changes int
}

func (c *FootprintConfig) validate() error {
	switch {
	case len(c.Endpoints) == 0:
		return errors.New("no endpoints (set --endpoints)")
	case len(c.Agent) == 0:
		return errors.New("no agent command to run")
	case c.Templates < 1:
		return fmt.Errorf("--templates %d: need at least 1", c.Templates)
	case c.Keys < c.Templates:
		return fmt.Errorf("--keys %d: need at least one per template (--templates %d)", c.Keys, c.Templates)
	case c.ValSize < 0:
		return fmt.Errorf("--val-size %d: cannot be negative", c.ValSize)
	case c.Idle <= 0:
		return fmt.Errorf("--idle %s: need a positive window, e.g. 10s", c.Idle)
	case c.Changes < 0:
		return fmt.Errorf("--changes %d: cannot be negative", c.Changes)
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = 2 * time.Second
	}
	if c.Settle == 0 {
		c.Settle = 2 * time.Second
	}
	return nil
}

// FootprintReport is what one agent process cost.
type FootprintReport struct {
	Templates int `json:"templates"`
	Keys      int `json:"keys"`
	ValSize   int `json:"val_size"`
	// FirstRender is agent start → every file written.
	FirstRender time.Duration `json:"first_render_ns"`
	// SettledRSS is the resident set before the idle window, RSS after the
	// changes and Settle (VmRSS).
	SettledRSS int64 `json:"settled_rss_bytes"`
	RSS        int64 `json:"rss_bytes"`
	// PeakRSS is the largest resident set of the whole run (VmHWM).
	PeakRSS int64 `json:"peak_rss_bytes"`
	// AnonRSS and FileRSS split RSS: the heap, stacks and runtime
	// (RssAnon), and the pages of the binary mapped in (RssFile), which
	// processes running the same binary share.
	AnonRSS int64 `json:"anon_rss_bytes"`
	FileRSS int64 `json:"file_rss_bytes"`
	// IdleCPU is the CPU time the agent used during the idle window,
	// divided by the window: 0.001 is 0.1% of one core.
	IdleCPU    float64       `json:"idle_cpu"`
	IdleWindow time.Duration `json:"idle_window_ns"`
	// StartCPU is the CPU time the agent used up to the first render.
	StartCPU time.Duration `json:"start_cpu_ns"`
	// Changes were applied after the idle window; ChangeP50 is put
	// acknowledged → file replaced for them. FirstChange is the first of
	// them: the one that finds the agent idle since its start, with the
	// memory and pages it returned to the system to map back.
	Changes     int           `json:"changes"`
	ChangeP50   time.Duration `json:"change_p50_ns"`
	FirstChange time.Duration `json:"first_change_ns"`
}

// Print writes the report as a small table.
func (r FootprintReport) Print(w io.Writer) {
	mb := func(b int64) string { return fmt.Sprintf("%.1f MB", float64(b)/(1<<20)) }
	fmt.Fprintf(w, "%-10s %6s %12s %10s %9s %9s %9s %9s %9s %9s %8s %12s %10s\n",
		"templates", "keys", "first-render", "start-cpu", "settled", "rss", "anon", "file", "peak-rss", "idle-cpu", "changes", "first-change", "change-p50")
	fmt.Fprintf(w, "%-10d %6d %12s %10s %9s %9s %9s %9s %9s %8.3f%% %8d %12s %10s\n",
		r.Templates, r.Keys, round(r.FirstRender), round(r.StartCPU), mb(r.SettledRSS), mb(r.RSS), mb(r.AnonRSS), mb(r.FileRSS), mb(r.PeakRSS),
		100*r.IdleCPU, r.Changes, round(r.FirstChange), round(r.ChangeP50))
}

// Footprint measures an agent process with c.Templates templates over
// c.Keys keys:
//
//  1. put the keys under a fresh prefix, Keys/Templates per template folder;
//  2. write the agent configuration (wait 0) into a temporary folder and
//     start the agent command on it, as its own process;
//  3. wait for every template's file; the time and CPU it took are the
//     first render;
//  4. let it settle for Settle (the agent returns the memory of the first
//     render to the OS once it has been idle for a second), then measure
//     its CPU time over the idle window (no change in the store): its idle
//     CPU;
//  5. put c.Changes values, each to the next template's folder, waiting for
//     each in its file;
//  6. after Settle again, read the agent's resident set (VmRSS) and its
//     peak (VmHWM) from /proc, stop it, and delete the keys.
func Footprint(ctx context.Context, c FootprintConfig) (FootprintReport, error) {
	if err := c.validate(); err != nil {
		return FootprintReport{}, err
	}
	rep := FootprintReport{Templates: c.Templates, Keys: c.Keys, ValSize: c.ValSize, IdleWindow: c.Idle}
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints, DialTimeout: c.DialTimeout, Logger: zap.NewNop()})
	if err != nil {
		return rep, fmt.Errorf("connect to %v: %w", c.Endpoints, err)
	}
	defer cli.Close()

	prefix := fmt.Sprintf("/tend-bench/footprint/%d/", time.Now().UnixNano())
	folder := func(t int) string { return fmt.Sprintf("%st%03d/", prefix, t) }
	perTemplate := c.Keys / c.Templates
	val := strings.Repeat("v", c.ValSize)
	if err := seed(ctx, cli, c, folder, val); err != nil {
		return rep, err
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		cli.Delete(dctx, prefix, clientv3.WithPrefix())
	}()

	dir, err := os.MkdirTemp("", "tend-bench-footprint-")
	if err != nil {
		return rep, fmt.Errorf("create bench folder: %w", err)
	}
	defer os.RemoveAll(dir)
	var hcl strings.Builder
	eps := make([]string, len(c.Endpoints))
	for i, e := range c.Endpoints {
		eps[i] = strconv.Quote(e)
	}
	fmt.Fprintf(&hcl, "store {\n  endpoints = [%s]\n}\n", strings.Join(eps, ", "))
	for t := range c.Templates {
		// A properties file of the template's folder: the common shape.
		body := fmt.Sprintf("# template %d\n{{ range ls %q }}{{ .Rel }}={{ .Value }}\n{{ end }}", t, folder(t))
		fmt.Fprintf(&hcl, "template \"t%03d\" {\n  contents    = %s\n  destination = \"out/t%03d.properties\"\n}\n", t, strconv.Quote(body), t)
	}
	if err := os.Mkdir(filepath.Join(dir, "out"), 0o755); err != nil {
		return rep, fmt.Errorf("create bench folder: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "agent.hcl"), []byte(hcl.String()), 0o644); err != nil {
		return rep, fmt.Errorf("write bench agent config: %w", err)
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return rep, fmt.Errorf("watch bench folder: %w", err)
	}
	defer w.Close()
	if err := w.Add(filepath.Join(dir, "out")); err != nil {
		return rep, fmt.Errorf("watch bench folder: %w", err)
	}

	var out bytes.Buffer
	args := append(append([]string{}, c.Agent[1:]...), "--config", filepath.Join(dir, "agent.hcl"), "--log-level", "warn")
	cmd := exec.Command(c.Agent[0], args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return rep, fmt.Errorf("start agent %s: %w", c.Agent[0], err)
	}
	exited := make(chan struct{}) // closed once waitErr is set
	var waitErr error
	go func() { // ends when the agent does; stop makes sure it does
		waitErr = cmd.Wait()
		close(exited)
	}()
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
			return waitErr
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
			return errors.New("agent did not stop within 10s of SIGTERM")
		}
	}
	defer stop()
	fail := func(err error) (FootprintReport, error) {
		stop()
		if o := strings.TrimSpace(out.String()); o != "" {
			err = fmt.Errorf("%w; agent output:\n%s", err, o)
		}
		return rep, err
	}
	pid := cmd.Process.Pid

	// 3. The first render.
	lastLine := fmt.Sprintf("k%05d=%s\n", perTemplate-1, val)
	for t := range c.Templates {
		path := filepath.Join(dir, "out", fmt.Sprintf("t%03d.properties", t))
		if err := waitFile(ctx, w, exited, path, lastLine, 60*time.Second); err != nil {
			return fail(fmt.Errorf("first render of template %d: %w", t, err))
		}
	}
	rep.FirstRender = time.Since(start)
	cpu, err := cpuTime(pid)
	if err != nil {
		return fail(err)
	}
	rep.StartCPU = cpu

	// 4. Settle, then idle.
	pause := func(d time.Duration) error {
		select {
		case <-time.After(d):
			return nil
		case <-exited:
			return fmt.Errorf("agent exited while idle: %v", waitErr)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := pause(c.Settle); err != nil {
		return fail(err)
	}
	if cpu, err = cpuTime(pid); err != nil {
		return fail(err)
	}
	if mem, err := memory(pid); err == nil {
		rep.SettledRSS = mem["VmRSS"]
	}
	if err := pause(c.Idle); err != nil {
		return fail(err)
	}
	idle, err := cpuTime(pid)
	if err != nil {
		return fail(err)
	}
	rep.IdleCPU = float64(idle-cpu) / float64(c.Idle)

	// 5. Changes.
	lat := make([]time.Duration, 0, c.Changes)
	for i := range c.Changes {
		t := i % c.Templates
		v := fmt.Sprintf("change-%d", i)
		key := fmt.Sprintf("%sk%05d", folder(t), perTemplate-1)
		if _, err := cli.Put(ctx, key, v); err != nil {
			return fail(fmt.Errorf("put change %d: %w", i, err))
		}
		t0 := time.Now()
		path := filepath.Join(dir, "out", fmt.Sprintf("t%03d.properties", t))
		if err := waitFile(ctx, w, exited, path, fmt.Sprintf("k%05d=%s\n", perTemplate-1, v), 10*time.Second); err != nil {
			return fail(fmt.Errorf("change %d: %w", i, err))
		}
		lat = append(lat, time.Since(t0))
	}
	rep.Changes = len(lat)
	if len(lat) > 0 {
		rep.FirstChange = lat[0]
		rep.ChangeP50 = report("", Config{}, 0, lat, 0, nil).P50
	}

	// 6. Memory, once settled again.
	if err := pause(c.Settle); err != nil {
		return fail(err)
	}
	mem, err := memory(pid)
	if err != nil {
		return fail(err)
	}
	rep.RSS, rep.PeakRSS, rep.AnonRSS, rep.FileRSS = mem["VmRSS"], mem["VmHWM"], mem["RssAnon"], mem["RssFile"]
	if err := stop(); err != nil {
		return fail(fmt.Errorf("stop agent: %w", err))
	}
	return rep, nil
}

// seed puts the keys, 100 to a txn.
func seed(ctx context.Context, cli *clientv3.Client, c FootprintConfig, folder func(int) string, val string) error {
	perTemplate := c.Keys / c.Templates
	var ops []clientv3.Op
	flush := func() error {
		if len(ops) == 0 {
			return nil
		}
		if _, err := cli.Txn(ctx).Then(ops...).Commit(); err != nil {
			return fmt.Errorf("put bench keys: %w", err)
		}
		ops = ops[:0]
		return nil
	}
	for t := range c.Templates {
		for k := range perTemplate {
			ops = append(ops, clientv3.OpPut(fmt.Sprintf("%sk%05d", folder(t), k), val))
			if len(ops) == 100 {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
	return flush()
}

// waitFile waits until path ends with suffix, the agent exits, or limit
// passes, reading the file again at each event of w (which watches its
// folder).
func waitFile(ctx context.Context, w *fsnotify.Watcher, exited <-chan struct{}, path, suffix string, limit time.Duration) error {
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	for {
		if b, err := os.ReadFile(path); err == nil && strings.HasSuffix(string(b), suffix) {
			return nil
		}
		select {
		case <-w.Events:
		case err := <-w.Errors:
			return fmt.Errorf("watch bench folder: %w", err)
		case <-deadline.C:
			return fmt.Errorf("%s not rendered within %s", filepath.Base(path), limit)
		case <-exited:
			return errors.New("agent exited")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// cpuTime is the CPU time process pid has used, summed over its threads,
// from /proc/<pid>/task/*/schedstat (nanoseconds, unlike the clock ticks
// of /proc/<pid>/stat).
func cpuTime(pid int) (time.Duration, error) {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	if err != nil || len(tasks) == 0 {
		return 0, fmt.Errorf("read CPU time of agent %d: no /proc/%d/task (Linux only)", pid, pid)
	}
	var sum int64
	for _, p := range tasks {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // a thread that ended meanwhile
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			continue
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("read CPU time of agent %d: %s: %w", pid, p, err)
		}
		sum += ns
	}
	return time.Duration(sum), nil
}

// memory reads the Vm* and Rss* lines of /proc/<pid>/status, in bytes.
func memory(pid int) (map[string]int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, fmt.Errorf("read memory of agent %d: %w", pid, err)
	}
	out := map[string]int64{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 || f[2] != "kB" {
			continue
		}
		if kb, err := strconv.ParseInt(f[1], 10, 64); err == nil {
			out[strings.TrimSuffix(f[0], ":")] = kb << 10
		}
	}
	for _, k := range []string{"VmRSS", "VmHWM", "RssAnon", "RssFile"} {
		if _, ok := out[k]; !ok {
			return nil, fmt.Errorf("read memory of agent %d: no %s in /proc/%d/status", pid, k, pid)
		}
	}
	return out, nil
}
