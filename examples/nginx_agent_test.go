package examples

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tendkv/tend/examples/internal/exampletest"
	"github.com/tendkv/tend/internal/testenv"
)

// startBackend runs the example's backend named name and returns its port.
func startBackend(t *testing.T, name string) int {
	t.Helper()
	port := exampletest.FreePort(t)
	p := exampletest.Start(t, t.TempDir(), nil, exampletest.Build(t, "github.com/tendkv/tend/examples/nginx/backend"),
		"--name", name, "--port", strconv.Itoa(port))
	p.WaitOutput(t, 20*time.Second, "serving on")
	return port
}

// register puts a service registration for a backend, as the agent's
// coming service block will: the host's key under /services/web/, attached
// to a lease so that it vanishes when the host stops renewing it.
func register(t *testing.T, c *clientv3.Client, name string, port int) clientv3.LeaseID {
	t.Helper()
	lease, err := c.Grant(ctx(t), 60)
	if err != nil {
		t.Fatal(err)
	}
	put(t, c, "/services/web/"+name, fmt.Sprintf(`{"address":"127.0.0.1","port":%d}`, port), clientv3.WithLease(lease.ID))
	return lease.ID
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

// The nginx example end to end: backends register under /services/web/,
// the agent renders the upstream, checks it with nginx -t, starts nginx and
// reloads it as hosts come and go; a registration nginx would refuse never
// reaches it.
func TestNginxAgent(t *testing.T) {
	t.Parallel()
	testenv.Program(t, "nginx", "nginx-light")
	forEachStore(t, func(t *testing.T, ep string) {
		c := newClient(t, ep)
		dir := copyExample(t, "nginx", `"http://127.0.0.1:2379"`, strconv.Quote(ep))
		port := exampletest.FreePort(t)
		if err := os.WriteFile(filepath.Join(dir, "listen.conf"), []byte(fmt.Sprintf("listen 127.0.0.1:%d;\n", port)), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(filepath.Join(dir, "tmp"), 0o755); err != nil {
			t.Fatal(err)
		}
		url := fmt.Sprintf("http://127.0.0.1:%d/", port)

		web1, web2, web3 := startBackend(t, "web-1"), startBackend(t, "web-2"), startBackend(t, "web-3")
		register(t, c, "web-1", web1)
		lease2 := register(t, c, "web-2", web2)

		agent := startAgent(t, dir, "agent.hcl")
		waitRouted(t, url, "web-1", "web-2")

		register(t, c, "web-3", web3)
		waitRouted(t, url, "web-1", "web-2", "web-3")

		// web-2 stops renewing its lease: its key goes, and so does its traffic
		// (web-2 itself still runs, so only a reload can explain the change).
		if _, err := c.Revoke(ctx(t), lease2); err != nil {
			t.Fatal(err)
		}
		waitRouted(t, url, "web-1", "web-3")

		// An address nginx refuses: the check fails, upstream.conf and nginx
		// keep the last good configuration.
		before, err := os.ReadFile(filepath.Join(dir, "upstream.conf"))
		if err != nil {
			t.Fatal(err)
		}
		put(t, c, "/services/web/broken", `{"address":"bad host","port":80}`)
		waitCount(t, agent, 30*time.Second, "outcome=check-failed", 1)
		if after, _ := os.ReadFile(filepath.Join(dir, "upstream.conf")); string(after) != string(before) {
			t.Errorf("a rejected upstream replaced the file:\n%s", after)
		}
		if got, err := routed(url, 8); err != nil || strings.Join(got, ",") != "web-1,web-3" {
			t.Errorf("after a rejected change: routed to %v (%v)", got, err)
		}

		// Nobody registered: the upstream holds one server marked down, which
		// nginx accepts, and answers 502.
		if _, err := c.Delete(ctx(t), "/services/web/", clientv3.WithPrefix()); err != nil {
			t.Fatal(err)
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
