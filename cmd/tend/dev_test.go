package main

import (
	"bufio"
	"bytes"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestDev runs `tend dev` as a user would: it prints the demo put and get,
// serves clients until interrupted, and removes its temporary data.
func TestDev(t *testing.T) {
	t.Parallel()
	client, peer := freeAddr(t), freeAddr(t)
	cmd := exec.Command(tendBin, "dev", "--listen-client-urls", "http://"+client, "--listen-peer-urls", "http://"+peer)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	defer func() {
		select {
		case <-exited:
		default:
			cmd.Process.Kill()
		}
	}()

	var out strings.Builder
	ready := make(chan struct{})
	readDone := make(chan struct{})
	go func() { // ends when dev closes stdout
		defer close(readDone)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			out.WriteString(sc.Text() + "\n")
			if sc.Text() == "Ctrl-C stops it." {
				close(ready)
			}
		}
	}()
	select {
	case <-ready:
	case <-readDone:
		t.Fatalf("dev ended early: %q, stderr %q", out.String(), stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("dev not ready within 30s: %q", out.String())
	}
	printed := out.String()
	for _, want := range []string{
		"serving the etcd v3 API on http://" + client,
		"put /myapp/production/config/server/port = 9090 (revision 2)",
		"get /myapp/production/config/server/port -> 9090",
		"go run ./cmd/tend --endpoints http://" + client + " watch --prefix /myapp/",
	} {
		if !strings.Contains(printed, want) {
			t.Errorf("dev output lacks %q:\n%s", want, printed)
		}
	}
	if got := tendAt(t, client, nil, "get", "/myapp/production/config/server/port"); string(got.stdout) != "9090" {
		t.Errorf("get demo key from dev = %q (%v, %s)", got.stdout, got.err, got.stderr)
	}
	dir := regexp.MustCompile(`data in (\S+),`).FindStringSubmatch(printed)
	if dir == nil {
		t.Fatalf("dev did not say where its data is: %q", printed)
	}
	if _, err := os.Stat(dir[1]); err != nil {
		t.Fatalf("data dir %s while running: %v", dir[1], err)
	}

	cmd.Process.Signal(os.Interrupt)
	<-readDone
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("dev after Ctrl-C: %v, stderr %q", err, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("dev did not stop within 15s of SIGINT")
	}
	if _, err := os.Stat(dir[1]); !os.IsNotExist(err) {
		t.Errorf("temporary data dir %s left behind: %v", dir[1], err)
	}
}
