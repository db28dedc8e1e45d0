package main

import (
	"bufio"
	"bytes"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
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

// devRun is a running `tend dev`.
type devRun struct {
	t        *testing.T
	cmd      *exec.Cmd
	out      *strings.Builder
	stderr   *lockedBuffer
	readDone chan struct{}
	exited   chan error
	printed  string // stdout up to "Ctrl-C stops it."
	dataDir  string
}

// lockedBuffer is a buffer the child's stderr copier writes while the test
// reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startDev runs `tend dev` with args on free ports and waits until it says
// it is ready.
func startDev(t *testing.T, client string, args ...string) *devRun {
	t.Helper()
	peer := freeAddr(t)
	cmd := exec.Command(tendBin, append([]string{"dev", "--listen-client-urls", "http://" + client, "--listen-peer-urls", "http://" + peer}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	d := &devRun{t: t, cmd: cmd, out: &strings.Builder{}, stderr: &lockedBuffer{}, readDone: make(chan struct{}), exited: make(chan error, 1)}
	cmd.Stderr = d.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		select {
		case <-d.exited:
		default:
			cmd.Process.Kill()
		}
	})
	var mu sync.Mutex
	ready := make(chan string, 1)
	go func() { // ends when dev closes stdout
		defer close(d.readDone)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			mu.Lock()
			d.out.WriteString(sc.Text() + "\n")
			if sc.Text() == "Ctrl-C stops it." {
				ready <- d.out.String()
			}
			mu.Unlock()
		}
	}()
	select {
	case d.printed = <-ready:
	case <-d.readDone:
		t.Fatalf("dev ended early: %q, stderr %q", d.out.String(), d.stderr.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("dev not ready within 60s, stderr %q", d.stderr.String())
	}
	dir := regexp.MustCompile(`data in (\S+),`).FindStringSubmatch(d.printed)
	if dir == nil {
		t.Fatalf("dev did not say where its data is: %q", d.printed)
	}
	d.dataDir = dir[1]
	if _, err := os.Stat(d.dataDir); err != nil {
		t.Fatalf("data dir %s while running: %v", d.dataDir, err)
	}
	return d
}

// interrupt stops dev as Ctrl-C does and checks it exits 0 and removes its
// temporary data.
func (d *devRun) interrupt() {
	t := d.t
	t.Helper()
	d.cmd.Process.Signal(os.Interrupt)
	<-d.readDone
	go func() { d.exited <- d.cmd.Wait() }()
	select {
	case err := <-d.exited:
		if err != nil {
			t.Errorf("dev after Ctrl-C: %v, stderr %q", err, d.stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("dev did not stop within 20s of SIGINT")
	}
	if _, err := os.Stat(d.dataDir); !os.IsNotExist(err) {
		t.Errorf("temporary data dir %s left behind: %v", d.dataDir, err)
	}
}

// TestDevStoreAlone runs `tend dev --config ”` as a user would: it prints
// the demo put and get, serves clients until interrupted, and removes its
// temporary data.
func TestDevStoreAlone(t *testing.T) {
	t.Parallel()
	client := freeAddr(t)
	d := startDev(t, client, "--config", "")
	for _, want := range []string{
		"serving the etcd v3 API on http://" + client,
		"put /myapp/production/config/server/port = 9090 (revision 2)",
		"get /myapp/production/config/server/port -> 9090",
		"go run ./cmd/tend --endpoints http://" + client + " watch --prefix /myapp/",
	} {
		if !strings.Contains(d.printed, want) {
			t.Errorf("dev output lacks %q:\n%s", want, d.printed)
		}
	}
	if got := tendAt(t, client, nil, "get", "/myapp/production/config/server/port"); string(got.stdout) != "9090" {
		t.Errorf("get demo key from dev = %q (%v, %s)", got.stdout, got.err, got.stderr)
	}
	d.interrupt()
}

// TestDevSpringboot runs `tend dev` with the Spring Boot example, as the
// README's first command does: the keys are seeded, application.yml is
// rendered and follows a put, the app restarts with it, and Ctrl-C stops
// the app too.
func TestDevSpringboot(t *testing.T) {
	t.Parallel()
	client := freeAddr(t)
	d := startDev(t, client, "--config", "../../examples/springboot/agent.hcl")
	m := regexp.MustCompile(`rendered (\S+application\.yml) `).FindStringSubmatch(d.printed)
	if m == nil {
		t.Fatalf("dev did not say where application.yml is:\n%s", d.printed)
	}
	yml := m[1]
	var doc struct {
		App struct {
			Hosts []string `yaml:"hosts"`
		} `yaml:"app"`
	}
	readYAML := func() error {
		b, err := os.ReadFile(yml)
		if err != nil {
			return err
		}
		return yaml.Unmarshal(b, &doc)
	}
	if err := readYAML(); err != nil || len(doc.App.Hosts) != 2 {
		t.Fatalf("rendered %s: hosts %v (%v), want the 2 seeded", yml, doc.App.Hosts, err)
	}
	if got := tendAt(t, client, nil, "put", "/myapp/production/config/app/hosts/2", "c.example.com"); got.err != nil {
		t.Fatalf("put: %v %s", got.err, got.stderr)
	}
	deadline := time.Now().Add(20 * time.Second)
	for readYAML() != nil || len(doc.App.Hosts) != 3 || doc.App.Hosts[2] != "c.example.com" {
		if time.Now().After(deadline) {
			t.Fatalf("application.yml hosts = %v after the put, want c.example.com third", doc.App.Hosts)
		}
		time.Sleep(20 * time.Millisecond)
	}
	deadline = time.Now().Add(20 * time.Second)
	for strings.Count(d.stderr.String(), `msg="started process"`) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the app was not restarted after the change; stderr:\n%s", d.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	d.interrupt()
	if !strings.Contains(d.out.String(), "app: stopped") {
		t.Errorf("the app did not stop with dev:\n%s", d.out.String())
	}
}
