package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/tendkv/tend/internal/freeport"
	"github.com/tendkv/tend/internal/lockedbuf"
	"github.com/tendkv/tend/internal/testenv"
)

// devRun is a running `tend dev`.
type devRun struct {
	t        *testing.T
	cmd      *exec.Cmd
	out      *strings.Builder
	stderr   *lockedbuf.Buffer
	readDone chan struct{}
	exited   chan error
	// interrupted is set once the test stops dev itself.
	interrupted bool
	printed     string // stdout up to "Ctrl-C stops it."
	dataDir     string
}

// startDev runs `tend dev` with args on free ports and waits until it says
// it is ready.
func startDev(t *testing.T, client string, args ...string) *devRun {
	t.Helper()
	return startDevIn(t, "", client, args...)
}

// startDevIn is startDev run in the folder dir.
func startDevIn(t *testing.T, dir, client string, args ...string) *devRun {
	t.Helper()
	peer := freeport.Addr(t)
	cmd := exec.Command(tendBin, append([]string{"dev", "--listen-client-urls", "http://" + client, "--listen-peer-urls", "http://" + peer}, args...)...)
	cmd.Dir = dir
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	d := &devRun{t: t, cmd: cmd, out: &strings.Builder{}, stderr: &lockedbuf.Buffer{}, readDone: make(chan struct{}), exited: make(chan error, 1)}
	cmd.Stderr = d.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if d.interrupted {
			return
		}
		// A test that failed midway: stop dev as Ctrl-C does, so that it
		// stops the app it started (a killed dev would leave it running,
		// holding its port), and kill it only if it does not stop.
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-d.readDone:
		case <-time.After(20 * time.Second):
		}
		cmd.Process.Kill()
		cmd.Wait()
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
	data := regexp.MustCompile(`data in (\S+),`).FindStringSubmatch(d.printed)
	if data == nil {
		t.Fatalf("dev did not say where its data is: %q", d.printed)
	}
	d.dataDir = data[1]
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
	select {
	case <-d.readDone:
	case <-time.After(20 * time.Second):
		t.Fatal("dev did not stop within 20s of SIGINT") // the cleanup kills it
	}
	d.interrupted = true
	go func() { d.exited <- d.cmd.Wait() }()
	select {
	case err := <-d.exited:
		if err != nil {
			t.Errorf("dev after Ctrl-C: %v, stderr %q", err, d.stderr.String())
		}
	case <-time.After(20 * time.Second):
		d.cmd.Process.Kill()
		t.Fatal("dev closed its output but did not exit within 20s of SIGINT")
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
	client := freeport.Addr(t)
	d := startDev(t, client, "--config", "")
	for _, want := range []string{
		"serving the etcd v3 API on http://" + client,
		"put /myapp/production/config/server/port = 9090 (revision 2)",
		"get /myapp/production/config/server/port -> 9090",
		// Run outside the repository, dev names the binary it was started as.
		tendBin + " --endpoints http://" + client + " watch --prefix /myapp/",
	} {
		if !strings.Contains(d.printed, want) {
			t.Errorf("dev output lacks %q:\n%s", want, d.printed)
		}
	}
	if strings.Contains(d.printed, "< ") {
		t.Errorf("dev suggests storing a file that is not here (%s is not the repository root):\n%s", mustWd(t), d.printed)
	}
	if got := tendAt(t, client, nil, "get", "/myapp/production/config/server/port"); string(got.stdout) != "9090" {
		t.Errorf("get demo key from dev = %q (%v, %s)", got.stdout, got.err, got.stderr)
	}
	d.interrupt()
}

func mustWd(t *testing.T) string {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return wd
}

// hint is one of the commands dev prints under "Try, in another
// terminal:", with the comment under it.
type hint struct{ cmd, what string }

// devHints returns the commands dev printed, in order, and the etcdctl
// command of its last line.
func devHints(t *testing.T, printed string) (hints []hint, etcdctl string) {
	t.Helper()
	_, rest, ok := strings.Cut(printed, "\nTry, in another terminal:\n")
	if !ok {
		t.Fatalf("dev printed nothing to try:\n%s", printed)
	}
	for _, line := range strings.Split(rest, "\n") {
		switch {
		case strings.HasPrefix(line, "      # ") && len(hints) > 0:
			hints[len(hints)-1].what = strings.TrimPrefix(line, "      # ")
		case strings.HasPrefix(line, "  "):
			hints = append(hints, hint{cmd: strings.TrimSpace(line)})
		case strings.HasPrefix(line, "etcdctl and every etcd client work too: "):
			etcdctl = strings.TrimPrefix(line, "etcdctl and every etcd client work too: ")
		}
	}
	if len(hints) == 0 {
		t.Fatalf("no commands under \"Try\":\n%s", printed)
	}
	return hints, etcdctl
}

// shell runs line with sh in dir, as a user pastes it, and returns its
// output; it fails the test if the command fails or takes over two minutes
// (the first go run builds tend).
func shell(t *testing.T, dir, line string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", line)
	cmd.Dir = dir
	// Only the printed flags say where the store is.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TEND_ENDPOINTS=") && !strings.HasPrefix(kv, "ETCDCTL_ENDPOINTS=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", line, err, out)
	}
	return string(out)
}

// appLoaded is the Spring Boot stand-in's GET /loaded answer.
type appLoaded struct {
	PID        int               `json:"pid"`
	Properties map[string]string `json:"properties"`
}

func getLoaded(url string) (appLoaded, error) {
	var l appLoaded
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return l, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return l, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return l, json.NewDecoder(resp.Body).Decode(&l)
}

// eventually calls f every 50ms until it returns nil, and fails the test
// with its last error after d.
func eventually(t *testing.T, d time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, d, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestDevDefault runs `tend dev` as the README's first command does: from
// the repository root, with no --config. It must seed the Spring Boot
// example, render application.yml, start the stand-in app and print what to
// try next. The test then runs every printed command, in the printed order,
// and checks that it does what its comment says, in the rendered file and
// in what the app loaded; Ctrl-C then stops the app too.
func TestDevDefault(t *testing.T) {
	t.Parallel()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	client := freeport.Addr(t)
	d := startDevIn(t, root, client)
	m := regexp.MustCompile(`the agent rendered (\S+application\.yml) `).FindStringSubmatch(d.printed)
	if m == nil {
		t.Fatalf("dev did not say where application.yml is:\n%s", d.printed)
	}
	yml := m[1]
	if !strings.HasPrefix(yml, d.dataDir) {
		t.Errorf("application.yml at %s, outside dev's data dir %s", yml, d.dataDir)
	}
	if !regexp.MustCompile(`seeded \d+ keys with examples/springboot/seed\.sh`).MatchString(d.printed) {
		t.Errorf("dev did not say it seeded the keyspace:\n%s", d.printed)
	}
	// readYML parses the rendered file.
	type doc struct {
		Server struct{ Port any }
		App    struct{ Hosts []string }
	}
	readYML := func() (doc, []byte, error) {
		var y doc
		b, err := os.ReadFile(yml)
		if err != nil {
			return y, nil, err
		}
		return y, b, yaml.Unmarshal(b, &y)
	}

	hints, etcdctlLine := devHints(t, d.printed)
	var appURL string // where the app answers now, from the curl hint
	var pid int       // the app's process now
	portHint := regexp.MustCompile(`^put /myapp/production/config/server/port (\d+)$`)
	curlInWhat := regexp.MustCompile(`curl -s (http://127\.0\.0\.1:(\d+)/loaded)`)
	for _, h := range hints {
		t.Logf("trying %s", h.cmd)
		// The tend commands, as printed for this member.
		prefix := "go run ./cmd/tend --endpoints http://" + client + " "
		sub, isTend := strings.CutPrefix(h.cmd, prefix)
		if strings.HasPrefix(h.cmd, "go run ./cmd/tend") && !isTend {
			t.Errorf("hint %q does not name this member's endpoint (want %q...)", h.cmd, prefix)
			continue
		}
		switch {
		case strings.HasPrefix(h.cmd, "curl -s "):
			appURL = strings.TrimPrefix(h.cmd, "curl -s ")
			l, err := getLoaded(appURL)
			if err != nil {
				t.Fatalf("the printed %q: %v", h.cmd, err)
			}
			if !strings.HasSuffix(appURL, ":"+l.Properties["server.port"]+"/loaded") || !strings.Contains(h.what, "pid") {
				t.Errorf("the app at %s loaded server.port %s (%q)", appURL, l.Properties["server.port"], h.what)
			}
			pid = l.PID

		case h.cmd == "cat "+yml:
			out := shell(t, root, h.cmd)
			y, b, err := readYML()
			if err != nil || out != string(b) {
				t.Fatalf("cat printed %q; the file holds %q (%v)", out, b, err)
			}
			if !strings.HasSuffix(appURL, fmt.Sprintf(":%v/loaded", y.Server.Port)) || len(y.App.Hosts) != 2 {
				t.Errorf("the rendered file says port %v, hosts %v; the app answers on %s", y.Server.Port, y.App.Hosts, appURL)
			}
			if !strings.Contains(out, "/myapp/production/config/") || !strings.Contains(h.what, "/myapp/production/config/") {
				t.Errorf("the file does not say it is rendered from /myapp/production/config/:\n%s", out)
			}

		case isTend && sub == "put /myapp/production/config/app/hosts/2 c.example.com":
			shell(t, root, h.cmd)
			eventually(t, 30*time.Second, "application.yml gains app.hosts[2]", func() error {
				if y, _, err := readYML(); err != nil || len(y.App.Hosts) != 3 || y.App.Hosts[2] != "c.example.com" {
					return fmt.Errorf("hosts %v (%v)", y.App.Hosts, err)
				}
				return nil
			})
			eventually(t, 30*time.Second, "the app restarts with app.hosts[2]", func() error {
				l, err := getLoaded(appURL)
				if err != nil || l.PID == pid || l.Properties["app.hosts[2]"] != "c.example.com" {
					return fmt.Errorf("pid %d (was %d), app.hosts[2] %q, %v", l.PID, pid, l.Properties["app.hosts[2]"], err)
				}
				pid = l.PID
				return nil
			})

		case isTend && portHint.MatchString(sub):
			port := portHint.FindStringSubmatch(sub)[1]
			cm := curlInWhat.FindStringSubmatch(h.what)
			if cm == nil || cm[2] != port || !strings.Contains(h.what, "restarts on port "+port) {
				t.Fatalf("the hint %q says %q: want the port it moves to and how to reach it", h.cmd, h.what)
			}
			old := appURL
			shell(t, root, h.cmd)
			eventually(t, 30*time.Second, "the app answers on port "+port, func() error {
				l, err := getLoaded(cm[1])
				if err != nil || l.PID == pid || l.Properties["server.port"] != port {
					return fmt.Errorf("pid %d (was %d), server.port %q, %v", l.PID, pid, l.Properties["server.port"], err)
				}
				pid = l.PID
				return nil
			})
			appURL = cm[1]
			if y, _, err := readYML(); err != nil || fmt.Sprint(y.Server.Port) != port {
				t.Errorf("application.yml says port %v (%v), want %s", y.Server.Port, err, port)
			}
			if _, err := getLoaded(old); err == nil {
				t.Errorf("the app still answers on %s after moving to port %s", old, port)
			}

		case isTend && sub == "put /myapp/production/config/server/port eighty":
			_, before, err := readYML()
			if err != nil {
				t.Fatal(err)
			}
			failed := strings.Count(d.stderr.String(), "outcome=check-failed")
			shell(t, root, h.cmd)
			eventually(t, 30*time.Second, "the agent logs check-failed", func() error {
				if n := strings.Count(d.stderr.String(), "outcome=check-failed"); n == failed {
					return errors.New("not logged yet")
				}
				return nil
			})
			if _, after, _ := readYML(); string(after) != string(before) {
				t.Errorf("a refused port replaced application.yml:\n%s", after)
			}
			if l, err := getLoaded(appURL); err != nil || l.PID != pid {
				t.Errorf("after the refused port the app at %s has pid %d (%v), want %d still running", appURL, l.PID, err, pid)
			}

		case isTend && sub == "fleet status -w table":
			// The agent publishes the refused change's outcome shortly
			// after it logs it.
			eventually(t, 30*time.Second, "fleet status shows the check-failed", func() error {
				out := shell(t, root, h.cmd)
				if !strings.Contains(out, "application-yml") || !strings.Contains(out, "check-failed") {
					return fmt.Errorf("fleet status printed:\n%s", out)
				}
				return nil
			})
			if !strings.Contains(h.what, "check-failed") {
				t.Errorf("the hint %q says %q: want the outcome it shows", h.cmd, h.what)
			}

		case isTend && sub == "get --prefix --keys-only /myapp/production/":
			out := shell(t, root, h.cmd)
			for _, k := range []string{"/myapp/production/config/server/port", "/myapp/production/config/app/hosts/0"} {
				if !strings.Contains(out, k+"\n") {
					t.Errorf("%s lacks %s:\n%s", h.cmd, k, out)
				}
			}
			if strings.Contains(out, "jdbc:") {
				t.Errorf("%s printed values:\n%s", h.cmd, out)
			}

		case isTend && sub == "watch --prefix /myapp/":
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			w := exec.CommandContext(ctx, "sh", "-c", h.cmd)
			w.Dir = root
			w.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			w.Cancel = func() error { return syscall.Kill(-w.Process.Pid, syscall.SIGKILL) }
			wout := &lockedbuf.Buffer{}
			w.Stdout, w.Stderr = wout, wout
			if err := w.Start(); err != nil {
				t.Fatal(err)
			}
			// Until the watch is up a put goes unseen: put until one shows.
			eventually(t, time.Minute, "the watch prints a put", func() error {
				if r := tendAt(t, "http://"+client, nil, "put", "/myapp/production/config/app/feature/new-checkout", "true"); r.err != nil {
					return fmt.Errorf("put: %v %s", r.err, r.stderr)
				}
				if !strings.Contains(wout.String(), "/myapp/production/config/app/feature/new-checkout") {
					time.Sleep(200 * time.Millisecond)
					return fmt.Errorf("watch printed %q", wout.String())
				}
				return nil
			})
			cancel()
			w.Wait()

		default:
			t.Errorf("dev printed a hint this test does not check: %q (%s)", h.cmd, h.what)
		}
	}

	_, etcdctl := testenv.EtcdBinaries(t)
	want := "etcdctl --endpoints http://" + client + " get --prefix /myapp/production/"
	if etcdctlLine != want {
		t.Errorf("the etcdctl hint is %q, want %q", etcdctlLine, want)
	} else if out := shell(t, root, etcdctl+strings.TrimPrefix(etcdctlLine, "etcdctl")); !strings.Contains(out, "/myapp/production/config/server/port\n") {
		t.Errorf("%s printed:\n%s", etcdctlLine, out)
	}

	d.interrupt()
	if !strings.Contains(d.out.String(), "app: stopped") {
		t.Errorf("the app did not stop with dev:\n%s", d.out.String())
	}
}
