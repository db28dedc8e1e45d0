package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tendkv/tend/agent"
	"github.com/tendkv/tend/agent/config"
)

// defaultDevConfig is the example `tend dev` runs, relative to the
// repository root, where newcomers start it with `go run ./cmd/tend dev`.
const defaultDevConfig = "examples/springboot/agent.hcl"

// devExample is an example's agent running against the dev member, from a
// copy of the example's folder inside the dev data folder.
type devExample struct {
	dir   string // the copy
	cfg   *config.Config
	agent *agent.Agent
	done  chan error
}

// startDevExample copies the folder of configPath into dataDir, builds the
// example's stand-in app (an app/ folder holding a Go main package) into its
// bin/, seeds the keyspace with its seed.sh when the keyspace is empty, and
// runs its agent against endpoints until ctx ends.
func startDevExample(ctx context.Context, out io.Writer, cli *clientv3.Client, configPath, dataDir string, endpoints []string, log *slog.Logger) (*devExample, error) {
	src := filepath.Dir(configPath)
	if _, err := os.Stat(configPath); err != nil {
		if errors.Is(err, os.ErrNotExist) && configPath == defaultDevConfig {
			return nil, fmt.Errorf("%s not found: run tend dev from the repository root, pass --config, or --config '' for the store alone", configPath)
		}
		return nil, fmt.Errorf("--config %s: %w", configPath, err)
	}
	dir := filepath.Join(dataDir, "example")
	if err := os.CopyFS(dir, os.DirFS(src)); err != nil {
		return nil, fmt.Errorf("copy example %s: %w", src, err)
	}
	if _, err := os.Stat(filepath.Join(src, "app", "main.go")); err == nil {
		fmt.Fprintf(out, "building the example's app (go build ./%s/app) ...\n", filepath.ToSlash(src))
		build := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(dir, "bin", "app"), "./"+filepath.ToSlash(filepath.Join(src, "app")))
		if msg, err := build.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("build the example's app: %w\n%s", err, msg)
		}
	}
	if err := seedDevExample(ctx, out, cli, dir, filepath.Join(src, "seed.sh"), endpoints); err != nil {
		return nil, err
	}
	cfg, err := config.Load(filepath.Join(dir, filepath.Base(configPath)))
	if err != nil {
		return nil, err
	}
	cfg.Store.Endpoints = endpoints
	a, err := agent.New(cfg, agent.Options{Logger: log})
	if err != nil {
		return nil, fmt.Errorf("start agent: %w", err)
	}
	ex := &devExample{dir: dir, cfg: cfg, agent: a, done: make(chan error, 1)}
	go func() { ex.done <- a.Run(ctx) }()
	return ex, nil
}

// seedDevExample runs the example's seed.sh (the copy in dir; shown as
// name), with this binary as its tend, when the keyspace is empty.
func seedDevExample(ctx context.Context, out io.Writer, cli *clientv3.Client, dir, name string, endpoints []string) error {
	seed := filepath.Join(dir, "seed.sh")
	if _, err := os.Stat(seed); err != nil {
		return nil
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := cli.Get(rctx, "", clientv3.WithFromKey(), clientv3.WithCountOnly())
	if err != nil {
		return fmt.Errorf("count keys before seeding: %w", err)
	}
	if resp.Count > 0 { // the user's data (a kept --data-dir): leave it be
		return nil
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find this binary for seed.sh: %w", err)
	}
	cmd := exec.CommandContext(ctx, "sh", seed)
	cmd.Env = append(os.Environ(), "TEND="+self, "TEND_ENDPOINTS="+endpoints[0])
	if msg, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("seed the keyspace with %s: %w\n%s", seed, err, msg)
	}
	rctx, cancel = context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err = cli.Get(rctx, "", clientv3.WithFromKey(), clientv3.WithCountOnly())
	if err != nil {
		return fmt.Errorf("count keys after seeding: %w", err)
	}
	fmt.Fprintf(out, "seeded %d keys with %s\n", resp.Count, name)
	return nil
}

// stop ends the agent (ctx is already cancelled) and its processes.
func (ex *devExample) stop() error {
	err := <-ex.done
	if cerr := ex.agent.Close(); err == nil {
		err = cerr
	}
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// waitRendered waits until every template has been written once, or one
// failed, and returns their statuses.
func (ex *devExample) waitRendered(ctx context.Context, d time.Duration) ([]agent.Status, error) {
	deadline := time.Now().Add(d)
	for {
		st := ex.agent.Status()
		pending := len(ex.cfg.Templates) - len(st)
		for _, s := range st {
			switch {
			case s.Error != "":
				return st, fmt.Errorf("template %q: %s", s.Template, s.Error)
			case s.Revision == 0:
				pending++
			}
		}
		if pending == 0 {
			return st, nil
		}
		if time.Now().After(deadline) {
			return st, fmt.Errorf("%d templates not rendered within %s", pending, d)
		}
		select {
		case <-ctx.Done():
			return st, ctx.Err()
		case err := <-ex.done:
			ex.done <- err
			return st, fmt.Errorf("agent stopped: %w", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
