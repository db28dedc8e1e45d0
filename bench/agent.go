package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/tendkv/tend/agent"
	"github.com/tendkv/tend/agent/config"
)

// Agent times what the agent exists for: a put acknowledged → the file
// rendered from it replaced on disk (fsynced, renamed, folder fsynced). It
// runs an agent in this process with one template (wait 0) in a temporary
// folder against c.Endpoints, puts Total values one after another and waits
// for each to reach the file, watching the folder with fsnotify.
func Agent(ctx context.Context, c Config) (Report, error) {
	c.Clients, c.Conns = 1, 1
	if err := c.validate(); err != nil {
		return Report{}, err
	}
	dir, err := os.MkdirTemp("", "tend-bench-agent-")
	if err != nil {
		return Report{}, fmt.Errorf("create bench folder: %w", err)
	}
	defer os.RemoveAll(dir)
	key := fmt.Sprintf("/tend-bench/agent/%d", time.Now().UnixNano())
	eps := make([]string, len(c.Endpoints))
	for i, e := range c.Endpoints {
		eps[i] = strconv.Quote(e)
	}
	hcl := fmt.Sprintf(`store {
  endpoints = [%s]
}
template "bench" {
  contents    = %s
  destination = "out"
}
`, strings.Join(eps, ", "), strconv.Quote(fmt.Sprintf(`{{ keyOrDefault %q "-" }}`, key)))
	if err := os.WriteFile(filepath.Join(dir, "agent.hcl"), []byte(hcl), 0o644); err != nil {
		return Report{}, fmt.Errorf("write bench agent config: %w", err)
	}
	cfg, err := config.Load(filepath.Join(dir, "agent.hcl"))
	if err != nil {
		return Report{}, err
	}
	a, err := agent.New(cfg, agent.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return Report{}, fmt.Errorf("start agent: %w", err)
	}
	actx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(actx) }()
	defer func() {
		stop()
		<-done
		a.Close()
	}()

	w, err := fsnotify.NewWatcher()
	if err != nil {
		return Report{}, fmt.Errorf("watch bench folder: %w", err)
	}
	defer w.Close()
	if err := w.Add(dir); err != nil {
		return Report{}, fmt.Errorf("watch bench folder: %w", err)
	}
	out := filepath.Join(dir, "out")
	// waitFor waits until the file holds want, bounded by 10s.
	waitFor := func(want string) error {
		deadline := time.NewTimer(10 * time.Second)
		defer deadline.Stop()
		for {
			if b, err := os.ReadFile(out); err == nil && string(b) == want {
				return nil
			}
			select {
			case <-w.Events:
			case err := <-w.Errors:
				return fmt.Errorf("watch bench folder: %w", err)
			case <-deadline.C:
				return fmt.Errorf("file not replaced with value %.20q within 10s", want)
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	if err := waitFor("-"); err != nil {
		return Report{}, fmt.Errorf("first render: %w", err)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints, DialTimeout: c.DialTimeout, Logger: zap.NewNop()})
	if err != nil {
		return Report{}, fmt.Errorf("connect to %v: %w", c.Endpoints, err)
	}
	defer cli.Close()

	lat := make([]time.Duration, 0, min(c.Total, 1<<20))
	pad := strings.Repeat("x", max(c.ValSize-12, 0))
	start := time.Now()
	for i := 0; i < c.Total && ctx.Err() == nil; i++ {
		val := fmt.Sprintf("%012d", i) + pad
		if _, err := cli.Put(ctx, key, val); err != nil {
			return report("agent", c, time.Since(start), lat, 1, err), fmt.Errorf("put %d: %w", i, err)
		}
		t0 := time.Now()
		if err := waitFor(val); err != nil {
			return report("agent", c, time.Since(start), lat, 1, err), err
		}
		lat = append(lat, time.Since(t0))
	}
	took := time.Since(start)
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, err := cli.Delete(rctx, key); err != nil {
		return report("agent", c, took, lat, 0, nil), fmt.Errorf("delete bench key %s: %w", key, err)
	}
	if err := ctx.Err(); err != nil && len(lat) < c.Total {
		return report("agent", c, took, lat, 0, nil), fmt.Errorf("agent benchmark stopped after %d of %d puts: %w", len(lat), c.Total, err)
	}
	return report("agent", c, took, lat, 0, nil), nil
}
