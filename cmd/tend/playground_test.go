package main

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tendkv/tend/internal/lockedbuf"
	"github.com/tendkv/tend/playground"
)

// pageRun is a running `tend playground` or `tend dashboard`.
type pageRun struct {
	cmd    *exec.Cmd
	lines  []string
	url    string // the page
	exited chan error
	done   bool // stop ran
}

var openLine = regexp.MustCompile(`open http://(127\.0\.0\.1:\d+)/|Open http://(127\.0\.0\.1:\d+)/`)

// startPage runs tend with args and waits until it has printed the page's
// URL and "Ctrl-C stops it".
func startPage(t *testing.T, args ...string) *pageRun {
	t.Helper()
	cmd := exec.Command(tendBin, args...)
	cmd.Env = append(os.Environ(), "TEND_ENDPOINTS=", "ETCDCTL_ENDPOINTS=")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr lockedbuf.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := &pageRun{cmd: cmd, exited: make(chan error, 1)}
	lines := make(chan string, 100)
	go func() {
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			lines <- s.Text()
		}
		close(lines)
		r.exited <- cmd.Wait()
	}()
	deadline := time.After(60 * time.Second)
	for ready := false; !ready; {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("tend %v exited before printing its page: %s\nstderr: %s", args, strings.Join(r.lines, "\n"), stderr.String())
			}
			r.lines = append(r.lines, l)
			if m := openLine.FindStringSubmatch(l); m != nil {
				r.url = "http://" + m[1] + m[2]
			}
			ready = r.url != "" && strings.Contains(l, "Ctrl-C stops it")
		case <-deadline:
			cmd.Process.Kill()
			t.Fatalf("tend %v printed no page within 60s: %s", args, strings.Join(r.lines, "\n"))
		}
	}
	go func() {
		for range lines { // keep the pipe flowing
		}
	}()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop interrupts it and waits for a clean exit.
func (r *pageRun) stop(t *testing.T) {
	if r.done {
		return
	}
	r.done = true
	r.cmd.Process.Signal(os.Interrupt)
	select {
	case err := <-r.exited:
		if err != nil {
			t.Errorf("tend %v after Ctrl-C: %v", r.cmd.Args[1:], err)
		}
	case <-time.After(20 * time.Second):
		r.cmd.Process.Kill()
		t.Errorf("tend %v still running 20s after Ctrl-C", r.cmd.Args[1:])
	}
}

// state polls the page's /api/state until cond holds.
func (r *pageRun) state(t *testing.T, what string, cond func(playground.State) bool) playground.State {
	t.Helper()
	return poll(t, r, "/api/state", "state with "+what, cond)
}

// poll gets the page's JSON at path until cond holds, for at most 20s.
func poll[T any](t *testing.T, r *pageRun, path, what string, cond func(T) bool) T {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var v T
	for time.Now().Before(deadline) {
		resp, err := http.Get(r.url + path)
		if err == nil {
			var zero T
			v = zero
			err = json.NewDecoder(resp.Body).Decode(&v)
			resp.Body.Close()
			if err == nil && cond(v) {
				return v
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s%s: no %s within 20s; last %+v", r.url, path, what, v)
	return v
}

// TestPlaygroundAndDashboard runs `tend playground`, writes to it with
// `tend put` on the endpoints it prints, and watches it with `tend
// dashboard`, whose fleet panel reads the agents' default prefix.
func TestPlaygroundAndDashboard(t *testing.T) {
	pg := startPage(t, "playground", "--members", "3", "--port", "0")
	out := strings.Join(pg.lines, "\n")
	m := regexp.MustCompile(`tend --endpoints (\S+) put`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("playground printed no endpoints:\n%s", out)
	}
	eps := m[1]
	st := pg.state(t, "3 members and a leader", func(st playground.State) bool { return len(st.Members) == 3 && st.Leader != "" })
	if st.Mode != "playground" {
		t.Fatalf("mode %q", st.Mode)
	}
	want(t, "put on the playground", string(tendAt(t, eps, nil, "put", "/hello", "world").stdout), "OK\n")
	status := `{"host":"web1","templates":[{"template":"app.yml","revision":2,"outcome":"render-failed","error":"no such key"}]}`
	want(t, "put a host's status", string(tendAt(t, eps, nil, "put", defaultFleetPrefix+"web1", status).stdout), "OK\n")

	db := startPage(t, "dashboard", "--endpoints", eps, "--port", "0", "--prefix", "/hello")
	st = db.state(t, "the playground's members and its key", func(st playground.State) bool {
		return st.Mode == "dashboard" && len(st.Members) == 3 && st.Leader != ""
	})
	resp, err := http.Get(db.url + "/api/keys")
	if err != nil {
		t.Fatal(err)
	}
	var ks playground.Keyspace
	json.NewDecoder(resp.Body).Decode(&ks)
	resp.Body.Close()
	if len(ks.Keys) != 1 || ks.Keys[0].Key != "/hello" || ks.Keys[0].Value != "world" {
		t.Fatalf("dashboard keyspace = %+v", ks)
	}
	poll(t, db, "/api/fleet", "web1's failed template under "+defaultFleetPrefix, func(f playground.Fleet) bool {
		return f.Prefix == defaultFleetPrefix && f.Hosts == 1 && f.Failed == 1 && len(f.Rows) == 1 && f.Rows[0].Host == "web1"
	})
	db.stop(t)
	pg.stop(t)
}
