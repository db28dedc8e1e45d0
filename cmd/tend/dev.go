package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/tendkv/tend/cluster"
)

// demoKey and demoValue are what dev writes and reads back to show the
// store works.
const (
	demoKey   = "/myapp/production/config/server/port"
	demoValue = "9090"
)

// newDevCmd is `tend dev`: a one-member cluster for a laptop, with a demo
// key, running until Ctrl-C.
func newDevCmd() *cobra.Command {
	var (
		dataDir   string
		clientURL string
		peerURL   string
		logLevel  string
		agentCfg  string
	)
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run a one-member cluster and an agent with the Spring Boot example, and print what to try next",
		Long: `Dev starts, in one process, a one-member tend cluster serving the etcd
v3 API on --listen-client-urls and an agent running --config (by default
` + defaultDevConfig + `: application.yml rendered from keys, and a
stand-in Spring Boot app restarted when it changes). It seeds the example's
keys into an empty keyspace, waits for the first render, prints where the
file is and the commands to try next, and runs until Ctrl-C. With
--config '' it runs the store alone and writes a demo key. Its data lives in
a temporary directory that is removed on exit, unless --data-dir names one to
keep.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("--log-level %q: want debug, info, warn or error", logLevel)
			}
			dir, keep := dataDir, dataDir != ""
			if !keep {
				d, err := os.MkdirTemp("", "tend-dev-")
				if err != nil {
					return fmt.Errorf("create data dir: %w (or give one with --data-dir)", err)
				}
				dir = d
				defer os.RemoveAll(dir)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runDev(ctx, cmd, agentCfg, cluster.Config{
				Name:                     "dev",
				DataDir:                  dir,
				ListenClientURLs:         []string{clientURL},
				ListenPeerURLs:           []string{peerURL},
				InitialAdvertisePeerURLs: []string{peerURL},
				Logger:                   slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level})),
			}, keep)
		},
	}
	f := cmd.Flags()
	f.StringVar(&dataDir, "data-dir", "", "keep the data in this directory (default: a temporary one, removed on exit)")
	f.StringVar(&clientURL, "listen-client-urls", cluster.DefaultListenClientURL, "URL to serve clients on")
	f.StringVar(&peerURL, "listen-peer-urls", cluster.DefaultListenPeerURL, "URL for peer traffic")
	f.StringVar(&logLevel, "log-level", "warn", "log level: debug, info, warn or error")
	f.StringVar(&agentCfg, "config", defaultDevConfig, "agent configuration to run against the dev member ('' for none)")
	return cmd
}

func runDev(ctx context.Context, cmd *cobra.Command, agentCfg string, cfg cluster.Config, keep bool) error {
	out := cmd.OutOrStdout()
	startCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	m, err := cluster.StartMember(startCtx, cfg)
	if err != nil {
		return fmt.Errorf("start dev member: %w (is --listen-client-urls %s already in use? pick another port)", err, cfg.ListenClientURLs[0])
	}
	defer m.Close()
	select {
	case <-m.ReadyNotify():
	case <-m.Done():
		return fmt.Errorf("dev member stopped: %w", m.Err())
	case <-startCtx.Done():
		return fmt.Errorf("dev member not ready within 30s: %w", startCtx.Err())
	}
	urls := m.ClientURLs()
	where := "removed on exit"
	if keep {
		where = "kept"
	}
	fmt.Fprintf(out, "tend dev: one-member cluster serving the etcd v3 API on %s (data in %s, %s)\n", urls[0], cfg.DataDir, where)

	cli, err := clientv3.New(clientv3.Config{Endpoints: urls, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return fmt.Errorf("connect to dev member: %w", err)
	}
	defer cli.Close()
	ep := ""
	if urls[0] != "http://127.0.0.1:2379" {
		ep = " --endpoints " + urls[0]
	}
	if agentCfg == "" {
		if err := devDemo(ctx, out, cli, ep, urls[0]); err != nil {
			return err
		}
	} else {
		actx, acancel := context.WithCancel(ctx)
		defer acancel()
		// The agent says what it applies (info), whatever the member's level.
		agentLog := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: min(devLevel(cfg.Logger), slog.LevelInfo)}))
		ex, err := startDevExample(actx, out, cli, agentCfg, cfg.DataDir, urls, agentLog)
		if err != nil {
			return err
		}
		defer func() {
			acancel()
			if err := ex.stop(); err != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "tend dev: stop agent: %v\n", err)
			}
		}()
		st, err := ex.waitRendered(ctx, 60*time.Second)
		if err != nil {
			return fmt.Errorf("run %s: %w", agentCfg, err)
		}
		for _, s := range st {
			fmt.Fprintf(out, "rendered %s (template %q, revision %d)\n", s.Destination, s.Template, s.Revision)
		}
		devHints(ctx, out, cli, agentCfg, ep)
	}
	fmt.Fprintf(out, "\nCtrl-C stops it.\n")

	select {
	case <-ctx.Done():
		fmt.Fprintln(out, "\ntend dev: stopping")
		return nil
	case <-m.Done():
		return fmt.Errorf("dev member stopped: %w", m.Err())
	}
}

// devDemo writes and reads back the demo key, and prints what to try next:
// dev without an agent.
func devDemo(ctx context.Context, out io.Writer, cli *clientv3.Client, ep, url string) error {
	rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
	defer rcancel()
	put, err := cli.Put(rctx, demoKey, demoValue)
	if err != nil {
		return fmt.Errorf("put demo key %s: %w", demoKey, err)
	}
	fmt.Fprintf(out, "put %s = %s (revision %d)\n", demoKey, demoValue, put.Header.Revision)
	got, err := cli.Get(rctx, demoKey)
	if err != nil {
		return fmt.Errorf("get demo key %s: %w", demoKey, err)
	}
	if len(got.Kvs) != 1 || string(got.Kvs[0].Value) != demoValue {
		return fmt.Errorf("get demo key %s: read back %v, want %q", demoKey, got.Kvs, demoValue)
	}
	fmt.Fprintf(out, "get %s -> %s\n", demoKey, got.Kvs[0].Value)
	fmt.Fprintf(out, `
Try, in another terminal:
  go run ./cmd/tend%[1]s put %[2]s 9091
  go run ./cmd/tend%[1]s get %[2]s
  go run ./cmd/tend%[1]s watch --prefix /myapp/
  go run ./cmd/tend%[1]s put /myapp/production/config < application.yml
etcdctl and every etcd client work too (etcdctl --endpoints %[3]s get --prefix /myapp/).
`, ep, demoKey, url)
	return nil
}

// devHints prints what to try next with the example running.
func devHints(ctx context.Context, out io.Writer, cli *clientv3.Client, agentCfg, ep string) {
	fmt.Fprintf(out, "\nTry, in another terminal:\n")
	if agentCfg == defaultDevConfig {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if resp, err := cli.Get(rctx, demoKey); err == nil && len(resp.Kvs) == 1 {
			fmt.Fprintf(out, "  curl -s http://127.0.0.1:%s/loaded          # what the app loaded, its pid\n", resp.Kvs[0].Value)
		}
		fmt.Fprintf(out, "  go run ./cmd/tend%s put /myapp/production/config/app/hosts/2 c.example.com\n", ep)
		fmt.Fprintf(out, "                                              # application.yml changes, the app restarts\n")
		fmt.Fprintf(out, "  go run ./cmd/tend%s put /myapp/production/config/server/port eighty\n", ep)
		fmt.Fprintf(out, "                                              # refused by the app's check: nothing changes\n")
	}
	fmt.Fprintf(out, "  go run ./cmd/tend%s get --prefix --keys-only /myapp/production/\n", ep)
	fmt.Fprintf(out, "  go run ./cmd/tend%s watch --prefix /myapp/\n", ep)
}

// devLevel is the lowest level l logs.
func devLevel(l *slog.Logger) slog.Level {
	for _, lv := range []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn} {
		if l.Enabled(context.Background(), lv) {
			return lv
		}
	}
	return slog.LevelError
}
