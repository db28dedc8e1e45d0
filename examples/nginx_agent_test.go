package examples

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tendkv/tend/examples/internal/exampletest"
	"github.com/tendkv/tend/internal/freeport"
	"github.com/tendkv/tend/internal/testenv"
)

// startBackend runs the example's backend named name and returns its port.
func startBackend(t *testing.T, name string) int {
	t.Helper()
	port := freeport.Port(t)
	p := exampletest.Start(t, t.TempDir(), nil, exampletest.Build(t, "github.com/tendkv/tend/examples/nginx/backend"),
		"--name", name, "--port", strconv.Itoa(port))
	p.WaitOutput(t, 20*time.Second, "serving on")
	return port
}

// startBackendAgent runs `tend agent --config backend.hcl` for the backend
// name on port, as its host would: it registers the backend under
// /services/web/ while the backend's /health answers.
func startBackendAgent(t *testing.T, dir, name string, port int) *exampletest.Proc {
	t.Helper()
	return startAgent(t, dir, "backend.hcl", "BACKEND_NAME="+name, "BACKEND_PORT="+strconv.Itoa(port))
}

// registered returns the registration of backend name, or nil.
func registered(t *testing.T, c *clientv3.Client, name string) *mvccpb.KeyValue {
	t.Helper()
	resp, err := c.Get(ctx(t), "/services/web/"+name)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) == 0 {
		return nil
	}
	return resp.Kvs[0]
}

// routed sends n requests through nginx and returns the backends that
// answered, sorted, or an error naming the first failed request.
func routed(url string, n int) ([]string, error) {
	seen := map[string]bool{}
	for i := 0; i < n; i++ {
		code, body, err := exampletest.Do("GET", url, "")
		if err != nil {
			return nil, err
		}
		if code != 200 {
			return nil, fmt.Errorf("GET %s: %d %s", url, code, body)
		}
		seen[strings.TrimPrefix(strings.TrimSpace(body), "backend ")] = true
	}
	out := make([]string, 0, len(seen))
	for b := range seen {
		out = append(out, b)
	}
	sort.Strings(out)
	return out, nil
}

// waitRouted waits until n requests in a row reach exactly want.
func waitRouted(t *testing.T, url string, want ...string) {
	t.Helper()
	exampletest.Eventually(t, 30*time.Second, "nginx routes to "+strings.Join(want, ","), func() error {
		got, err := routed(url, 4*len(want))
		if err != nil {
			return err
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			return fmt.Errorf("routed to %v", got)
		}
		return nil
	})
}

// countLines counts the lines of out that hold every one of parts.
func countLines(out string, parts ...string) int {
	n := 0
	for _, line := range strings.Split(out, "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			n++
		}
	}
	return n
}

// waitLines waits until at least n lines of the program's output hold
// every one of parts.
func waitLines(t *testing.T, p *exampletest.Proc, d time.Duration, n int, parts ...string) {
	t.Helper()
	exampletest.Eventually(t, d, fmt.Sprintf("%d lines with %q in the output", n, parts), func() error {
		if c := countLines(p.Output(), parts...); c < n {
			select {
			case <-p.Done():
				return fmt.Errorf("exited after %d", c)
			default:
			}
			return fmt.Errorf("%d so far", c)
		}
		return nil
	})
}

// The nginx example end to end: each backend's host runs an agent that
// registers it under /services/web/ with a lease (backend.hcl); the nginx
// host's agent renders the upstream, checks it with nginx -t, starts nginx
// and reloads it as hosts come and go; neither a registration nor a
// template edit that nginx would refuse ever reaches it, and the restored
// template applies again.
func TestNginxAgent(t *testing.T) {
	t.Parallel()
	testenv.Program(t, "nginx", "nginx-light")
	forEachStore(t, func(t *testing.T, ep string) {
		c := newClient(t, ep)
		dir := copyExample(t, "nginx", `"http://127.0.0.1:2379"`, strconv.Quote(ep))
		port := freeport.Port(t)
		if err := os.WriteFile(filepath.Join(dir, "listen.conf"), []byte(fmt.Sprintf("listen 127.0.0.1:%d;\n", port)), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(filepath.Join(dir, "tmp"), 0o755); err != nil {
			t.Fatal(err)
		}
		url := fmt.Sprintf("http://127.0.0.1:%d/", port)

		ports := map[string]int{}
		for _, name := range []string{"web-1", "web-2", "web-3", "web-4"} {
			ports[name] = startBackend(t, name)
		}
		agents := map[string]*exampletest.Proc{}
		for _, name := range []string{"web-1", "web-2"} {
			agents[name] = startBackendAgent(t, dir, name, ports[name])
		}
		agent := startAgent(t, dir, "agent.hcl")
		waitRouted(t, url, "web-1", "web-2")

		agents["web-3"] = startBackendAgent(t, dir, "web-3", ports["web-3"])
		waitRouted(t, url, "web-1", "web-2", "web-3")

		// web-2's agent dies without a word: its lease is no longer kept
		// alive, and when it expires (ttl 5s) the key goes, and so does
		// web-2's traffic. web-2 itself still runs, so only a reload can
		// explain the change.
		if err := syscall.Kill(-agents["web-2"].Cmd.Process.Pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		agents["web-2"].Wait(5 * time.Second)
		if registered(t, c, "web-2") == nil {
			t.Fatalf("web-2's key went at once; a killed agent cannot revoke it, only the lease's expiry can remove it")
		}
		killed := time.Now()
		waitRouted(t, url, "web-1", "web-3")
		t.Logf("web-2 left the upstream %s after its agent was killed", time.Since(killed).Round(time.Millisecond))

		// web-3's agent stops cleanly: it revokes the lease, the key goes
		// at once.
		if err := agents["web-3"].Stop(10 * time.Second); err != nil {
			t.Errorf("web-3's agent exit: %v", err)
		}
		if kv := registered(t, c, "web-3"); kv != nil {
			t.Errorf("web-3 still registered after its agent stopped cleanly: %s", kv.Value)
		}
		waitRouted(t, url, "web-1")

		// A fourth host joins.
		agents["web-4"] = startBackendAgent(t, dir, "web-4", ports["web-4"])
		waitRouted(t, url, "web-1", "web-4")

		// An address nginx refuses, put by hand: the check fails,
		// upstream.conf and nginx keep the last good configuration.
		before, err := os.ReadFile(filepath.Join(dir, "upstream.conf"))
		if err != nil {
			t.Fatal(err)
		}
		put(t, c, "/services/web/broken", `{"address":"bad host","port":80}`)
		waitCount(t, agent, 30*time.Second, "outcome=check-failed", 1)
		if after, _ := os.ReadFile(filepath.Join(dir, "upstream.conf")); string(after) != string(before) {
			t.Errorf("a rejected upstream replaced the file:\n%s", after)
		}
		if got, err := routed(url, 8); err != nil || strings.Join(got, ",") != "web-1,web-4" {
			t.Errorf("after a rejected change: routed to %v (%v)", got, err)
		}
		if _, err := c.Delete(ctx(t), "/services/web/broken"); err != nil {
			t.Fatal(err)
		}

		// A template edit nginx refuses (a misspelt directive): the agent
		// re-reads the source, renders it, and the check keeps the result
		// out. Meanwhile web-4 leaves the store, so the new render differs
		// for that reason too, but nginx still has the old configuration,
		// with web-4 in it, and keeps sending it requests.
		tmplPath := filepath.Join(dir, "upstream.conf.tmpl")
		good, err := os.ReadFile(tmplPath)
		if err != nil {
			t.Fatal(err)
		}
		bad := strings.Replace(string(good), "    server {{ .HostPort }}", "    servr {{ .HostPort }}", 1)
		if bad == string(good) {
			t.Fatalf("the test's edit does not apply to %s:\n%s", tmplPath, good)
		}
		before, err = os.ReadFile(filepath.Join(dir, "upstream.conf"))
		if err != nil {
			t.Fatal(err)
		}
		// The agent's log line for a candidate the check refused, with
		// nginx's reason.
		refused := []string{"outcome=check-failed", `unknown directive \"servr\"`}
		if err := os.WriteFile(tmplPath, []byte(bad), 0o644); err != nil {
			t.Fatal(err)
		}
		waitCount(t, agent, 30*time.Second, `msg="template source changed" template=upstream`, 1)
		waitLines(t, agent, 30*time.Second, 1, refused...)
		if err := agents["web-4"].Stop(10 * time.Second); err != nil {
			t.Errorf("web-4's agent exit: %v", err)
		}
		if kv := registered(t, c, "web-4"); kv != nil {
			t.Errorf("web-4 still registered after its agent stopped cleanly: %s", kv.Value)
		}
		waitLines(t, agent, 30*time.Second, 2, refused...)
		if after, _ := os.ReadFile(filepath.Join(dir, "upstream.conf")); string(after) != string(before) {
			t.Errorf("an upstream rendered from a broken template replaced the file:\n%s", after)
		}
		if got, err := routed(url, 8); err != nil || strings.Join(got, ",") != "web-1,web-4" {
			t.Errorf("with the broken template: routed to %v (%v), want the old upstream web-1,web-4", got, err)
		}

		// The template is restored: it renders the store as it is now, the
		// check passes, nginx is reloaded and web-4 is gone.
		if err := os.WriteFile(tmplPath, good, 0o644); err != nil {
			t.Fatal(err)
		}
		waitCount(t, agent, 30*time.Second, `msg="template source changed" template=upstream`, 2)
		waitRouted(t, url, "web-1")
		if after, _ := os.ReadFile(filepath.Join(dir, "upstream.conf")); strings.Contains(string(after), "servr") || strings.Count(string(after), "server ") != 1 {
			t.Errorf("after the template was restored, upstream.conf is:\n%s", after)
		}

		// The check kept every refused file from nginx: no reload failed
		// (and so nothing had to be rolled back).
		if n := countLines(agent.Output(), `msg="hook failed"`, "hook=reload-nginx"); n != 0 {
			t.Errorf("nginx -s reload failed %d times: a configuration nginx refuses got past the check", n)
		}

		// The last host stops: nobody is registered, the upstream holds
		// one server marked down, which nginx accepts, and answers 502.
		for _, name := range []string{"web-1"} {
			if err := agents[name].Stop(10 * time.Second); err != nil {
				t.Errorf("%s's agent exit: %v", name, err)
			}
		}
		exampletest.Eventually(t, 30*time.Second, "nginx answers 502 with no backend", func() error {
			code, body, err := exampletest.Do("GET", url, "")
			if err != nil || code != 502 {
				return fmt.Errorf("%d %q %v", code, body, err)
			}
			return nil
		})
		if err := agent.Stop(15 * time.Second); err != nil {
			t.Errorf("agent exit: %v", err)
		}
		if _, _, err := exampletest.Do("GET", url, ""); err == nil {
			t.Errorf("nginx still answers after the agent stopped")
		}
	})
}

// A backend whose health check fails is deregistered by its own agent at
// once (the lease is revoked, not left to expire), and registered again
// when it answers again.
func TestNginxBackendHealthGatesRegistration(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, ep string) {
		c := newClient(t, ep)
		dir := copyExample(t, "nginx", `"http://127.0.0.1:2379"`, strconv.Quote(ep))
		port := freeport.Port(t)
		// Nothing listens on port yet: the check fails, nothing is registered.
		agent := startBackendAgent(t, dir, "web-9", port)
		waitCount(t, agent, 20*time.Second, "service check failed", 1)
		if kv := registered(t, c, "web-9"); kv != nil {
			t.Fatalf("registered before the backend answers: %s", kv.Value)
		}
		backend := exampletest.Start(t, t.TempDir(), nil, exampletest.Build(t, "github.com/tendkv/tend/examples/nginx/backend"),
			"--name", "web-9", "--port", strconv.Itoa(port))
		backend.WaitOutput(t, 20*time.Second, "serving on")
		want := fmt.Sprintf(`{"address":"127.0.0.1","port":%d}`, port)
		exampletest.Eventually(t, 20*time.Second, "web-9 registered", func() error {
			if kv := registered(t, c, "web-9"); kv == nil || string(kv.Value) != want || kv.Lease == 0 {
				return fmt.Errorf("registration %v", kv)
			}
			return nil
		})
		// The backend stops: the next check fails and the agent revokes the
		// lease, so the key goes without waiting for the 5s ttl.
		if err := backend.Stop(5 * time.Second); err != nil {
			t.Logf("backend exit: %v", err)
		}
		stopped := time.Now()
		exampletest.Eventually(t, 20*time.Second, "web-9 deregistered", func() error {
			if kv := registered(t, c, "web-9"); kv != nil {
				return fmt.Errorf("still registered: %s", kv.Value)
			}
			return nil
		})
		t.Logf("deregistered %s after the backend stopped", time.Since(stopped).Round(time.Millisecond))
		// Revoked by the agent, not expired.
		waitCount(t, agent, 5*time.Second, "reason=\"check failed\"", 1)
	})
}
