package exampletest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tendkv/tend/internal/lockedbuf"
)

var (
	buildMu sync.Mutex
	builds  = map[string]string{} // package → binary, for this test binary's life
	binDir  string
)

// Build compiles the Go main package pkg (an import path, or a folder like
// "." relative to the test's folder) once per test binary and returns the
// path of the program.
func Build(t testing.TB, pkg string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if bin, ok := builds[pkg]; ok {
		return bin
	}
	if binDir == "" {
		d, err := os.MkdirTemp("", "tend-examples-bin-")
		if err != nil {
			t.Fatalf("create build folder: %v", err)
		}
		binDir = d // RemoveBuilds deletes it when the test binary ends
	}
	name := filepath.Base(filepath.Clean(pkg))
	if name == "." {
		wd, _ := os.Getwd()
		name = filepath.Base(wd)
	}
	bin := filepath.Join(binDir, fmt.Sprintf("%s-%d", name, len(builds)))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, pkg).CombinedOutput()
	if err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	builds[pkg] = bin
	return bin
}

// RemoveBuilds deletes what Build compiled; call it from TestMain after
// m.Run.
func RemoveBuilds() {
	buildMu.Lock()
	defer buildMu.Unlock()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
}

// Proc is a started program whose output (stdout and stderr together) is
// kept.
type Proc struct {
	Cmd  *exec.Cmd
	out  *lockedbuf.Buffer
	done chan struct{}
	err  error // set before done closes
}

// Start runs name with args in its own process group (so that its children
// stop with it) and stops it when the test ends: SIGTERM to the group, then
// SIGKILL after five seconds.
func Start(t testing.TB, dir string, env []string, name string, args ...string) *Proc {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out := &lockedbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p := &Proc{Cmd: cmd, out: out, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if p.Stop(5*time.Second) != nil && testing.Verbose() {
			t.Logf("%s output:\n%s", filepath.Base(name), p.Output())
		}
	})
	return p
}

// Output is everything the program printed so far.
func (p *Proc) Output() string { return p.out.String() }

// Done is closed when the program has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Wait waits up to d for the program to exit and returns its exit error
// (nil for status 0), or an error saying it is still running.
func (p *Proc) Wait(d time.Duration) error {
	select {
	case <-p.done:
		return p.err
	case <-time.After(d):
		return fmt.Errorf("%s still running after %v", p.Cmd.Path, d)
	}
}

// Stop sends SIGTERM to the program's group, SIGKILL after grace, and
// returns how it exited.
func (p *Proc) Stop(grace time.Duration) error {
	select {
	case <-p.done:
		return p.err
	default:
	}
	syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
	return p.err
}

// Eventually calls f until it returns nil or d has passed, and fails the
// test with f's last error then. It polls every 25ms.
func Eventually(t testing.TB, d time.Duration, what string, f func() error) {
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
		time.Sleep(25 * time.Millisecond)
	}
}

// WaitOutput waits up to d for the program's output to contain s, and fails
// the test (showing the output) otherwise.
func (p *Proc) WaitOutput(t testing.TB, d time.Duration, s string) {
	t.Helper()
	Eventually(t, d, fmt.Sprintf("output of %s contains %q", filepath.Base(p.Cmd.Path), s), func() error {
		if strings.Contains(p.Output(), s) {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("exited (%v) with output:\n%s", p.err, p.Output())
		default:
		}
		return errors.New("not yet; output so far:\n" + p.Output())
	})
}

// client is for the examples' loopback servers; no request waits long.
var client = &http.Client{Timeout: 5 * time.Second}

// GetJSON GETs url and decodes a 200 answer's JSON body into v.
func GetJSON(url string, v any) error {
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("read %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("decode %s: %w: %s", url, err, body)
	}
	return nil
}

// Do sends one request and returns the status and body.
func Do(method, url, body string) (int, string, error) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}
