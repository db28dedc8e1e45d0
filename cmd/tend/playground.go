package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/tendkv/tend/playground"
)

// newPlaygroundCmd is `tend playground`: real members in one process, drawn
// in a web page that writes, reads, kills and partitions them.
func newPlaygroundCmd() *cobra.Command {
	var (
		members                 int
		port                    int
		clientPort              int
		dataDir                 string
		heartbeatMS, electionMS uint
		preVote                 bool
		logLevel                string
	)
	cmd := &cobra.Command{
		Use:   "playground",
		Short: "Run a live cluster in this process and draw it in a web page you can poke",
		Long: `Playground starts --members real tend members in this process (real Raft,
WAL and TCP peer links, with the transport's fault seam), and serves a web
page on 127.0.0.1:--port that draws them live: roles, terms, indexes,
election timers and the messages between them. From the page you put, get
and delete keys through a chosen member, kill and restart members, isolate
one, split the network in two, heal it, add members (voters, or learners
you then promote) and remove them, and slow the cluster's clock down to
watch an election happen.

Every member also serves the etcd v3 API on a printed client URL, so tend,
etcdctl and agents can use the playground too. Its data lives in a temporary
directory removed on exit, unless --data-dir names one.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("--log-level %q: want debug, info, warn or error", logLevel)
			}
			dir := dataDir
			if dir == "" {
				d, err := os.MkdirTemp("", "tend-playground-")
				if err != nil {
					return fmt.Errorf("create data dir: %w (or give one with --data-dir)", err)
				}
				dir = d
				defer os.RemoveAll(dir)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runPlayground(ctx, cmd.OutOrStdout(), port, playground.Options{
				Members:           members,
				DataDir:           dir,
				ClientPort:        clientPort,
				HeartbeatInterval: time.Duration(heartbeatMS) * time.Millisecond,
				ElectionTimeout:   time.Duration(electionMS) * time.Millisecond,
				DisablePreVote:    !preVote,
				Logger:            slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level})),
			})
		},
	}
	f := cmd.Flags()
	f.IntVar(&members, "members", 5, "number of members (1 to 9)")
	f.IntVar(&port, "port", 8379, "port of the web page on 127.0.0.1 (0: a free one)")
	f.IntVar(&clientPort, "client-port", 0, "first member's client port; member i gets --client-port + 10*(i-1) (0: free ports)")
	f.StringVar(&dataDir, "data-dir", "", "keep the members' data in this directory (default: a temporary one, removed on exit)")
	f.UintVar(&heartbeatMS, "heartbeat-interval", 100, "time (in milliseconds) of a heartbeat interval")
	f.UintVar(&electionMS, "election-timeout", 1000, "time (in milliseconds) for an election to timeout")
	f.BoolVar(&preVote, "pre-vote", true, "run the members with Raft's pre-vote (--pre-vote=false shows what it prevents: a cut-off member's term climbs and its return forces an election)")
	f.StringVar(&logLevel, "log-level", "error", "the members' log level: debug, info, warn or error")
	return cmd
}

func runPlayground(ctx context.Context, out io.Writer, port int, opts playground.Options) error {
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return fmt.Errorf("listen on --port %d: %w (pick another, or 0 for a free one)", port, err)
	}
	defer l.Close()
	fmt.Fprintf(out, "starting %d members…\n", max(opts.Members, 1))
	p, err := playground.Start(ctx, opts)
	if err != nil {
		return err
	}
	defer p.Close()
	eps := p.Endpoints()
	fmt.Fprintf(out, "tend playground: %d members in this process (data in %s)\n", len(eps), opts.DataDir)
	for i, ep := range eps {
		fmt.Fprintf(out, "  m%d  %s\n", i+1, ep)
	}
	var hostports []string
	for _, ep := range eps {
		hostports = append(hostports, strings.TrimPrefix(ep, "http://"))
	}
	fmt.Fprintf(out, "\nOpen http://%s/ in a browser.\n", l.Addr())
	fmt.Fprintf(out, "The members speak the etcd v3 API too:\n  tend --endpoints %s put /hello world\n  etcdctl --endpoints %s watch --prefix /\n",
		strings.Join(hostports, ","), strings.Join(hostports, ","))
	fmt.Fprintf(out, "Ctrl-C stops it.\n")
	return serveUntil(ctx, l, playground.Handler(p.Hub(), p))
}

// serveUntil serves h on l until ctx ends, then shuts the server down.
func serveUntil(ctx context.Context, l net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve the page: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	// Event streams never end by themselves: close what Shutdown leaves.
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	srv.Close()
	return nil
}
