package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
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
keys into an empty keyspace, waits for the first render and for the app to
answer, prints where the file is and the commands to try next (run from the
repository root, they are go run ./cmd/tend ...), and runs until Ctrl-C. With
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
	// The commands dev suggests, as the user can type them here.
	tend := devCLI()
	if urls[0] != cluster.DefaultListenClientURL {
		tend += " --endpoints " + urls[0]
	}
	if agentCfg == "" {
		if err := devDemo(ctx, out, cli, tend, urls[0]); err != nil {
			return err
		}
	} else {
		actx, acancel := context.WithCancel(ctx)
		defer acancel()
		// The agent says what it applies (info), whatever the member's level.
		agentLog := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: min(devLevel(cfg.Logger), slog.LevelInfo)}))
		started := time.Now().Add(-time.Second) // an app answering that started before is not ours
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
			fmt.Fprintf(out, "the agent rendered %s (template %q, revision %d)\n", s.Destination, s.Template, s.Revision)
		}
		if isSpringboot(agentCfg) && len(st) == 1 {
			springbootHints(ctx, out, cli, tend, st[0].Destination, urls[0], started)
		} else {
			fmt.Fprintf(out, "\nTry, in another terminal:\n")
			fmt.Fprintf(out, "  %s get --prefix --keys-only /\n", tend)
			fmt.Fprintf(out, "  %s watch --prefix /\n", tend)
		}
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
func devDemo(ctx context.Context, out io.Writer, cli *clientv3.Client, tend, url string) error {
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
	fmt.Fprintf(out, "\nTry, in another terminal:\n")
	fmt.Fprintf(out, "  %s put %s 9091\n", tend, demoKey)
	fmt.Fprintf(out, "  %s get %s\n", tend, demoKey)
	fmt.Fprintf(out, "  %s watch --prefix /myapp/\n", tend)
	if _, err := os.Stat(wholeFileExample); err == nil {
		fmt.Fprintf(out, "  %s put /myapp/production/config < %s\n", tend, wholeFileExample)
		fmt.Fprintf(out, "      # a whole file under one key, as a CI job stores it\n")
	}
	fmt.Fprintf(out, "etcdctl and every etcd client work too: etcdctl --endpoints %s get --prefix /myapp/\n", url)
	return nil
}

// wholeFileExample is the Spring Boot example's application.yml, relative
// to the repository root.
const wholeFileExample = "examples/springboot/whole-file/application.example.yml"

// devCLI is how the user runs tend here: go run from the repository root,
// else the command they started dev with, else tend from PATH.
func devCLI() string {
	if _, err := os.Stat(filepath.Join("cmd", "tend", "main.go")); err == nil {
		return "go run ./cmd/tend"
	}
	if a := os.Args[0]; strings.Contains(a, "/") && !strings.Contains(a, "go-build") {
		return a
	}
	return "tend"
}

// isSpringboot reports whether agentCfg is the Spring Boot example's
// agent.hcl (the default, or named from another folder).
func isSpringboot(agentCfg string) bool {
	abs, err := filepath.Abs(agentCfg)
	return err == nil && filepath.Base(abs) == "agent.hcl" &&
		filepath.Base(filepath.Dir(abs)) == "springboot" && filepath.Base(filepath.Dir(filepath.Dir(abs))) == "examples"
}

// springbootHints waits for the example's app to answer and prints what to
// try next with it: each hint is a command to type and what it does.
func springbootHints(ctx context.Context, out io.Writer, cli *clientv3.Client, tend, file, url string, since time.Time) {
	port := ""
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if resp, err := cli.Get(rctx, demoKey); err == nil && len(resp.Kvs) == 1 {
		port = string(resp.Kvs[0].Value)
	}
	appURL := "http://127.0.0.1:" + port + "/loaded"
	if err := waitApp(ctx, appURL, since, 20*time.Second); err != nil {
		fmt.Fprintf(out, "\nThe example's app does not answer on %s (%v); the log above says why.\n"+
			"If the port is taken, move the app to another one:\n  %s put %s 18084\n", appURL, err, tend, demoKey)
	}
	newPort := freeHintPort(port)
	hint := func(cmd, what string) {
		fmt.Fprintf(out, "  %s\n      # %s\n", cmd, what)
	}
	fmt.Fprintf(out, "\nTry, in another terminal:\n")
	hint("curl -s "+appURL, "what the app loaded from application.yml, its pid and start time")
	hint("cat "+file, "the file the agent rendered from the keys under /myapp/production/config/")
	hint(tend+" put /myapp/production/config/app/hosts/2 c.example.com",
		"application.yml gains app.hosts[2]; the app restarts with it (a new pid)")
	hint(tend+" put "+demoKey+" "+newPort,
		"the app restarts on port "+newPort+": curl -s http://127.0.0.1:"+newPort+"/loaded")
	hint(tend+" put "+demoKey+" eighty",
		"refused by the app's check: the agent logs check-failed here; the file and the app stay as they were")
	hint(tend+" fleet status -w table",
		"what each host's agent reports: the revision application.yml is at, and the last outcome (check-failed, after that refused port)")
	hint(tend+" get --prefix --keys-only /myapp/production/", "the keys the file is rendered from")
	hint(tend+" watch --prefix /myapp/", "prints each change under /myapp/ as it happens")
	fmt.Fprintf(out, "etcdctl and every etcd client work too: etcdctl --endpoints %s get --prefix /myapp/production/\n", url)
}

// waitApp waits up to d for the example's app, started at since or later,
// to answer at url; an app that answers there but started before is
// another one, holding the port.
func waitApp(ctx context.Context, url string, since time.Time, d time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	c := &http.Client{Timeout: 2 * time.Second}
	for {
		err := getApp(c, url, since)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func getApp(c *http.Client, url string, since time.Time) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	var loaded struct {
		PID     int       `json:"pid"`
		Started time.Time `json:"started"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&loaded); err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	if loaded.Started.Before(since) {
		return fmt.Errorf("another app (pid %d, started %s, before tend dev) holds the port", loaded.PID, loaded.Started.Format(time.TimeOnly))
	}
	return nil
}

// freeHintPort picks the port the "move the app" hint suggests: 9090, or
// the next one that is free and not the app's current port.
func freeHintPort(current string) string {
	for p := 9090; p < 9100; p++ {
		s := strconv.Itoa(p)
		if s == current {
			continue
		}
		if l, err := net.Listen("tcp", "127.0.0.1:"+s); err == nil {
			l.Close()
			return s
		}
	}
	return "9090"
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
