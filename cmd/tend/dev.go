package main

import (
	"context"
	"fmt"
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
	)
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run a one-member cluster on this machine, write a demo key, and print what to try next",
		Long: `Dev starts a one-member tend cluster serving the etcd v3 API on
--listen-client-urls, puts ` + demoKey + `, reads it back, prints
the commands to try next and runs until Ctrl-C. Its data lives in a temporary
directory that is removed on exit, unless --data-dir names one to keep.`,
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
			return runDev(ctx, cmd, cluster.Config{
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
	return cmd
}

func runDev(ctx context.Context, cmd *cobra.Command, cfg cluster.Config, keep bool) error {
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

	ep := ""
	if urls[0] != "http://127.0.0.1:2379" {
		ep = " --endpoints " + urls[0]
	}
	fmt.Fprintf(out, `
Try, in another terminal:
  go run ./cmd/tend%[1]s put %[2]s 9091
  go run ./cmd/tend%[1]s get %[2]s
  go run ./cmd/tend%[1]s watch --prefix /myapp/
  go run ./cmd/tend%[1]s put /myapp/production/config < application.yml
etcdctl and every etcd client work too (etcdctl --endpoints %[3]s get --prefix /myapp/).

Ctrl-C stops it.
`, ep, demoKey, urls[0])

	select {
	case <-ctx.Done():
		fmt.Fprintln(out, "tend dev: stopping")
		return nil
	case <-m.Done():
		return fmt.Errorf("dev member stopped: %w", m.Err())
	}
}
