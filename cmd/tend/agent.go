package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"reflect"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/tendkv/tend/agent"
	"github.com/tendkv/tend/agent/config"
	"github.com/tendkv/tend/internal/exepages"
)

// newAgentCmd is `tend agent`: the long-running per-host agent.
func newAgentCmd() *cobra.Command {
	var path, logLevel string
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Keep files rendered from the store and run their hooks",
		Long: `Watch the keys the configured templates read, render them at one store
revision, swap changed files in atomically and run their hooks; supervise the
configured processes. --config is an HCL file or a folder of *.hcl files.

SIGHUP reloads the configuration if it is valid (the running one stays
otherwise); SIGINT or SIGTERM stop the agent and its processes.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(path)
			if err != nil {
				return err
			}
			log, err := agentLogger(cmd.ErrOrStderr(), cfg.Log, logLevel)
			if err != nil {
				return err
			}
			return runAgent(cmd.Context(), path, cfg, log)
		},
	}
	cmd.Flags().StringVar(&path, "config", "agent.hcl", "agent configuration: an HCL file or a folder of *.hcl files")
	cmd.Flags().StringVar(&logLevel, "log-level", "", "override the configuration's log level: debug, info, warn or error")
	return cmd
}

// releaseBinaryPages returns the agent's Idle: it drops the pages of the
// tend binary that start-up and the last burst of work mapped in (the
// server, Raft and dashboard code the agent never runs among them), which
// would otherwise stay in the agent's resident set for good. A page needed
// again is mapped back from the page cache.
func releaseBinaryPages(log *slog.Logger) func() {
	return func() {
		n, err := exepages.Release()
		if err != nil {
			log.Debug("release the binary's idle pages", "error", err)
			return
		}
		log.Debug("released the binary's idle pages", "mapped-bytes", n)
	}
}

func runAgent(parent context.Context, path string, cfg *config.Config, log *slog.Logger) error {
	if parent == nil {
		parent = context.Background()
	}
	ctx, stop := signal.NotifyContext(parent, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	a, err := agent.New(cfg, agent.Options{Logger: log, Idle: releaseBinaryPages(log)})
	if err != nil {
		return err
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	log.Info("agent started", "config", path, "templates", len(cfg.Templates), "processes", len(cfg.Processes), "services", len(cfg.Services), "endpoints", cfg.Store.Endpoints)
	for {
		select {
		case err := <-done:
			if cerr := a.Close(); err == nil {
				err = cerr
			}
			log.Info("agent stopped")
			return err
		case <-hup:
			next, err := config.Load(path)
			if err != nil {
				log.Error("configuration reload rejected; the running one stays", "config", path, "error", err)
				continue
			}
			if !reflect.DeepEqual(next.Store, a.Config().Store) || next.Log != a.Config().Log {
				log.Warn("store and log settings take effect at the next start", "config", path)
			}
			a.Reload(next)
		}
	}
}

// newRenderCmd is `tend render`: render every template once and exit.
func newRenderCmd() *cobra.Command {
	var (
		path, logLevel      string
		once, dryRun, hooks bool
	)
	cmd := &cobra.Command{
		Use:   "render",
		Short: "Render every template once, write the changed files and exit",
		Long: `Render every configured template at the store's current revision and write
the files whose bytes changed (checked, fsynced, renamed into place). Hooks run
only with --hooks; --dry-run prints a unified diff of what would change and
writes nothing. A template that cannot render (a missing key, an unreachable
store) keeps its file, and the command exits non-zero naming it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !once {
				return fmt.Errorf("--once=false: render always runs once; use tend agent to keep files rendered")
			}
			cfg, err := config.Load(path)
			if err != nil {
				return err
			}
			log, err := agentLogger(cmd.ErrOrStderr(), cfg.Log, logLevel)
			if err != nil {
				return err
			}
			a, err := agent.New(cfg, agent.Options{Logger: log, Idle: releaseBinaryPages(log)})
			if err != nil {
				return err
			}
			opts := agent.OnceOptions{Hooks: hooks}
			if dryRun {
				opts.DryRun = cmd.OutOrStdout()
			}
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			err = a.Once(ctx, opts)
			if cerr := a.Close(); err == nil {
				err = cerr
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&path, "config", "agent.hcl", "agent configuration: an HCL file or a folder of *.hcl files")
	f.BoolVar(&once, "once", true, "render once and exit (the only mode of render)")
	f.BoolVar(&dryRun, "dry-run", false, "print a unified diff of what would change; write nothing")
	f.BoolVar(&hooks, "hooks", false, "run the on_change hooks of the files written")
	f.StringVar(&logLevel, "log-level", "", "override the configuration's log level: debug, info, warn or error")
	return cmd
}

// agentLogger builds the agent's logger from the log block, with the
// --log-level flag taking precedence.
func agentLogger(w io.Writer, l config.Log, flagLevel string) (*slog.Logger, error) {
	name := l.Level
	if flagLevel != "" {
		name = flagLevel
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(name)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", name)
	}
	opts := &slog.HandlerOptions{Level: level}
	if l.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
}
