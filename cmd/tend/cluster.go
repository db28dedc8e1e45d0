package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

func newClusterCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Run a local multi-member cluster",
	}
	cmd.AddCommand(newClusterUpCmd())
	return cmd
}

// localMember is one `tend server` process of `tend cluster up`.
type localMember struct {
	name      string
	clientURL string
	peerURL   string
	args      []string
	logPath   string
	cmd       *exec.Cmd
	exited    chan struct{}
	err       error // set before exited closes
}

func newClusterUpCmd() *cobra.Command {
	var (
		members                 int
		dataDir                 string
		clientPort              int
		heartbeatMS, electionMS uint
		snapshotCount           uint64
	)
	cmd := &cobra.Command{
		Use:   "up [-- tend server flags]",
		Short: "Start an N-member cluster of tend server processes on loopback",
		Long: `Start --members tend server processes on 127.0.0.1, one data dir each under
--data-dir (their logs next to them), wait until they have a leader, and
print the endpoints. Member i listens for clients on --client-port + 10*(i-1)
and for peers on the port after it (--client-port 0: free ports). Run it again
on the same --data-dir to restart the same cluster, on the same ports (kept in
<data-dir>/ports). Ctrl-C stops every member. Flags after -- go to every
member's tend server, e.g. tend cluster up -- --auto-compaction-retention 1h.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 && cmd.ArgsLenAtDash() != 0 {
				return fmt.Errorf("unexpected argument %q: give flags for every member's tend server after --, e.g. tend cluster up -- --auto-compaction-retention 1h", args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, serverFlags []string) error {
			if members < 1 {
				return fmt.Errorf("--members %d: give at least 1 (3 or 5 tolerate failures)", members)
			}
			if clientPort < 0 || clientPort+10*members > 65535 {
				return fmt.Errorf("--client-port %d: give a port such that every member's fits below 65536, or 0 for free ports", clientPort)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return clusterUp(ctx, cmd.OutOrStdout(), members, dataDir, clientPort,
				append([]string{"--heartbeat-interval", strconv.FormatUint(uint64(heartbeatMS), 10),
					"--election-timeout", strconv.FormatUint(uint64(electionMS), 10),
					"--snapshot-count", strconv.FormatUint(snapshotCount, 10)}, serverFlags...))
		},
	}
	f := cmd.Flags()
	f.IntVar(&members, "members", 3, "number of members")
	f.StringVar(&dataDir, "data-dir", "tend-cluster", "folder holding each member's data dir and log")
	f.IntVar(&clientPort, "client-port", 2379, "first member's client port (0: free ports)")
	f.UintVar(&heartbeatMS, "heartbeat-interval", 100, "time (in milliseconds) of a heartbeat interval")
	f.UintVar(&electionMS, "election-timeout", 1000, "time (in milliseconds) for an election to timeout")
	f.Uint64Var(&snapshotCount, "snapshot-count", 10000, "number of committed transactions to trigger a snapshot")
	return cmd
}

// freeLoopbackPort returns a port that was free a moment ago.
func freeLoopbackPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func clusterUp(ctx context.Context, out io.Writer, n int, dataDir string, clientPort int, extra []string) error {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find the tend binary: %w", err)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return fmt.Errorf("create --data-dir %s: %w", dataDir, err)
	}
	ports, err := clusterPorts(dataDir, n, clientPort)
	if err != nil {
		return err
	}
	ms := make([]*localMember, n)
	var initial []string
	for i := range n {
		cp, pp := ports[i][0], ports[i][1]
		name := fmt.Sprintf("m%d", i+1)
		ms[i] = &localMember{
			name:      name,
			clientURL: fmt.Sprintf("http://127.0.0.1:%d", cp),
			peerURL:   fmt.Sprintf("http://127.0.0.1:%d", pp),
			logPath:   filepath.Join(dataDir, name+".log"),
			exited:    make(chan struct{}),
		}
		initial = append(initial, name+"="+ms[i].peerURL)
	}
	for _, m := range ms {
		m.args = append([]string{"server", "--name", m.name,
			"--data-dir", filepath.Join(dataDir, m.name),
			"--listen-client-urls", m.clientURL, "--advertise-client-urls", m.clientURL,
			"--listen-peer-urls", m.peerURL, "--initial-advertise-peer-urls", m.peerURL,
			"--initial-cluster", strings.Join(initial, ","),
			"--initial-cluster-token", "tend-cluster-up",
		}, extra...)
	}
	defer stopMembers(ms)
	for _, m := range ms {
		logf, err := os.OpenFile(m.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("open log %s: %w", m.logPath, err)
		}
		m.cmd = exec.Command(self, m.args...)
		m.cmd.Stdout, m.cmd.Stderr = logf, logf
		if err := m.cmd.Start(); err != nil {
			logf.Close()
			return fmt.Errorf("start member %s: %w", m.name, err)
		}
		go func() {
			m.err = m.cmd.Wait()
			logf.Close()
			close(m.exited)
		}()
	}
	var eps []string
	for _, m := range ms {
		eps = append(eps, strings.TrimPrefix(m.clientURL, "http://"))
	}
	if err := waitClusterReady(ctx, ms, eps); err != nil {
		return err
	}
	fmt.Fprintf(out, "tend cluster of %d members is up (data and logs in %s)\n", n, dataDir)
	for _, m := range ms {
		fmt.Fprintf(out, "  %s  client %s  peer %s  pid %d  log %s\n", m.name, m.clientURL, m.peerURL, m.cmd.Process.Pid, m.logPath)
	}
	fmt.Fprintf(out, "endpoints: %s\n\n", strings.Join(eps, ","))
	fmt.Fprintf(out, "Try:\n  tend put --endpoints %s /my_key \"my value\"\n  tend get --endpoints %s /my_key\n  tend member list --endpoints %s -w table\n",
		eps[0], eps[min(1, n-1)], strings.Join(eps, ","))
	fmt.Fprintf(out, "Kill a member (kill -9 <pid>) and watch the others carry on. Ctrl-C stops them all.\n")

	// Report members that exit on their own, with how to start them again.
	exits := make(chan *localMember, len(ms))
	for _, m := range ms {
		go func() {
			select {
			case <-m.exited:
				exits <- m
			case <-ctx.Done():
			}
		}()
	}
	for {
		select {
		case <-ctx.Done():
			fmt.Fprintln(out, "stopping the members")
			return nil
		case m := <-exits:
			fmt.Fprintf(out, "member %s exited (%v); start it again with:\n  %s %s\n", m.name, m.err, self, strings.Join(m.args, " "))
		}
	}
}

// portsFile records, in --data-dir, the ports a cluster was started on:
// its members know one another by those peer URLs, so a restart must use
// them again.
const portsFile = "ports"

// clusterPorts returns each member's client and peer ports: those recorded
// in dataDir by an earlier start, else from clientPort on (free ones for
// 0), recorded for the next start.
func clusterPorts(dataDir string, n, clientPort int) ([][2]int, error) {
	path := filepath.Join(dataDir, portsFile)
	if b, err := os.ReadFile(path); err == nil {
		var ports [][2]int
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			var p [2]int
			if _, err := fmt.Sscanf(line, "%d %d", &p[0], &p[1]); err != nil {
				return nil, fmt.Errorf("%s: line %q: %v (remove --data-dir %s to start a new cluster)", path, line, err, dataDir)
			}
			ports = append(ports, p)
		}
		if len(ports) != n {
			return nil, fmt.Errorf("--data-dir %s holds a cluster of %d members, not --members %d (use --members %d, or another --data-dir)", dataDir, len(ports), n, len(ports))
		}
		return ports, nil
	}
	ports := make([][2]int, n)
	var lines []string
	for i := range n {
		ports[i] = [2]int{clientPort + 10*i, clientPort + 10*i + 1}
		if clientPort == 0 {
			for j := range 2 {
				p, err := freeLoopbackPort()
				if err != nil {
					return nil, err
				}
				ports[i][j] = p
			}
		}
		lines = append(lines, fmt.Sprintf("%d %d", ports[i][0], ports[i][1]))
	}
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("record the cluster's ports in %s: %w", path, err)
	}
	return ports, nil
}

// waitClusterReady waits until a linearizable read succeeds through every
// member, or a member exits, or ctx ends.
func waitClusterReady(ctx context.Context, ms []*localMember, eps []string) error {
	deadline := time.Now().Add(60 * time.Second)
	for i, m := range ms {
		cli, err := clientv3.New(clientv3.Config{Endpoints: []string{eps[i]}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			return fmt.Errorf("connect to member %s: %w", m.name, err)
		}
		for {
			rctx, cancel := context.WithTimeout(ctx, time.Second)
			_, err = cli.Get(rctx, "health")
			cancel()
			if err == nil {
				break
			}
			select {
			case <-m.exited:
				cli.Close()
				return fmt.Errorf("member %s exited (%v); see its log %s", m.name, m.err, m.logPath)
			case <-ctx.Done():
				cli.Close()
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				cli.Close()
				return fmt.Errorf("member %s did not serve within 60s (%v); see its log %s", m.name, err, m.logPath)
			}
		}
		cli.Close()
	}
	return nil
}

// stopMembers sends SIGTERM to every running member and waits; a member
// still running after 10 seconds is killed.
func stopMembers(ms []*localMember) {
	for _, m := range ms {
		if m != nil && m.cmd != nil && m.cmd.Process != nil {
			m.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	for _, m := range ms {
		if m == nil || m.cmd == nil || m.cmd.Process == nil {
			continue
		}
		select {
		case <-m.exited:
		case <-time.After(10 * time.Second):
			m.cmd.Process.Kill()
			<-m.exited
		}
	}
}
