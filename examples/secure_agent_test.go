package examples

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/tendkv/tend/agent"
	"github.com/tendkv/tend/examples/internal/exampletest"
)

// TestSecureAgent runs examples/secure as its README does: setup.sh creates
// root, a role that reads /myapp/production/ and writes /services/myapp/
// and /tend/fleet/myapp/, and the agent's user, and turns auth on; the
// agent signs in as that user, renders its file, registers its service and
// publishes its fleet status (and revokes it when it stops). Signed in as the agent's
// user, a client may write under /services/myapp/ and read myapp's config,
// and is refused with etcd's permission denied everywhere else: other
// registrations, its own config, another application's keys (which exist),
// the whole keyspace. A template that reads another application's keys is
// refused likewise and writes nothing.
func TestSecureAgent(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, ep string) {
		c := newClient(t, ep)
		put(t, c, "/myapp/production/config/server/port", "8080")
		put(t, c, "/myapp/production/config/spring/datasource/password", "s3cret")
		put(t, c, "/otherapp/production/config/secret", "not yours")
		put(t, c, "/services/otherapp/host9", "127.0.0.1:9090")
		dir := copyExample(t, "secure", `"http://127.0.0.1:2379"`, `"`+ep+`"`)

		setup := exec.Command("sh", "setup.sh")
		setup.Dir = dir
		setup.Env = append(os.Environ(), "TEND="+tendBinary(t), "TEND_ENDPOINTS="+ep, "ROOT_PASSWORD=rootpw")
		if out, err := setup.CombinedOutput(); err != nil {
			t.Fatalf("setup.sh: %v\n%s", err, out)
		}
		// Without credentials nothing is readable any more.
		if _, err := c.Get(ctx(t), "/myapp/production/config/server/port"); err == nil || !strings.Contains(err.Error(), "user name is empty") {
			t.Fatalf("anonymous get after auth enable: %v, want etcd's refusal", err)
		}
		root, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, Username: "root", Password: "rootpw", DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			t.Fatal(err)
		}
		defer root.Close()

		agentProc := startAgent(t, dir, "agent.hcl", "MYAPP_HOST=host1")
		file := filepath.Join(dir, "application.yml")
		exampletest.Eventually(t, 30*time.Second, "application.yml rendered as myapp", func() error {
			b, err := os.ReadFile(file)
			if err != nil {
				return err
			}
			if !strings.Contains(string(b), "password: s3cret") || !strings.Contains(string(b), "port: 8080") {
				return fmt.Errorf("rendered %q", b)
			}
			return nil
		})
		exampletest.Eventually(t, 30*time.Second, "service registered under /services/myapp/", func() error {
			r, err := root.Get(ctx(t), "/services/myapp/host1")
			if err != nil || len(r.Kvs) != 1 {
				return fmt.Errorf("get = %v, %v", r, err)
			}
			return nil
		})
		// The fleet status, under the prefix the role may write.
		fleetStatus := func(what string, ok func(st agent.Status) bool) {
			t.Helper()
			exampletest.Eventually(t, 30*time.Second, "fleet status "+what, func() error {
				r, err := root.Get(ctx(t), "/tend/fleet/myapp/host1")
				if err != nil || len(r.Kvs) != 1 {
					return fmt.Errorf("get = %v, %v", r, err)
				}
				var hs agent.HostStatus
				if err := json.Unmarshal(r.Kvs[0].Value, &hs); err != nil {
					return err
				}
				if len(hs.Templates) != 1 || !ok(hs.Templates[0]) || r.Kvs[0].Lease == 0 {
					return fmt.Errorf("status %s (lease %x)", r.Kvs[0].Value, r.Kvs[0].Lease)
				}
				return nil
			})
		}
		fleetStatus("published", func(st agent.Status) bool { return st.Template == "application-yml" && st.Outcome == "applied" })
		// What the agent's user may do itself: write its own service
		// registrations, and nothing else; read its own config, and no
		// other application's keys, though they exist.
		pw, err := os.ReadFile(filepath.Join(dir, "myapp.password"))
		if err != nil {
			t.Fatal(err)
		}
		myapp, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, Username: "myapp", Password: strings.TrimRight(string(pw), "\n"), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			t.Fatalf("sign in as myapp: %v", err)
		}
		defer myapp.Close()
		if _, err := myapp.Put(ctx(t), "/services/myapp/host2", "127.0.0.1:8082"); err != nil {
			t.Errorf("myapp registers /services/myapp/host2: %v", err)
		}
		if _, err := myapp.Delete(ctx(t), "/services/myapp/host2"); err != nil {
			t.Errorf("myapp removes /services/myapp/host2: %v", err)
		}
		if r, err := myapp.Get(ctx(t), "/myapp/production/", clientv3.WithPrefix()); err != nil || len(r.Kvs) != 2 {
			t.Errorf("myapp reads its config: %v, %v, want its 2 keys", r, err)
		}
		denied := func(what string, err error) {
			t.Helper()
			if !errors.Is(err, rpctypes.ErrPermissionDenied) {
				t.Errorf("myapp %s: %v, want etcd's permission denied", what, err)
			}
		}
		for _, k := range []string{
			"/services/otherapp/host1", "/services/myapp", "/services/myapp2/host1",
			"/tend/fleet/otherapp/host1", "/tend/fleet/host1",
			"/myapp/production/config/server/port", "/otherapp/production/config/secret", "/elsewhere",
		} {
			_, err := myapp.Put(ctx(t), k, "by myapp")
			denied("writes "+k, err)
		}
		_, err = myapp.Delete(ctx(t), "/services/otherapp/host9")
		denied("deletes /services/otherapp/host9", err)
		_, err = myapp.Delete(ctx(t), "/services/", clientv3.WithPrefix())
		denied("deletes everything under /services/", err)
		for _, k := range []string{"/otherapp/production/config/secret", "/services/otherapp/host9"} {
			_, err := myapp.Get(ctx(t), k)
			denied("reads "+k, err)
		}
		_, err = myapp.Get(ctx(t), "/otherapp/", clientv3.WithPrefix())
		denied("reads the /otherapp/ prefix", err)
		_, err = myapp.Get(ctx(t), "", clientv3.WithFromKey(), clientv3.WithKeysOnly())
		denied("lists all keys", err)
		if r, err := root.Get(ctx(t), "/services/otherapp/host9"); err != nil || len(r.Kvs) != 1 || string(r.Kvs[0].Value) != "127.0.0.1:9090" {
			t.Errorf("otherapp's registration after myapp's tries: %v, %v", r, err)
		}

		// A change by root reaches the file, and the fleet status.
		changed, err := root.Put(ctx(t), "/myapp/production/config/server/port", "8081")
		if err != nil {
			t.Fatal(err)
		}
		exampletest.Eventually(t, 30*time.Second, "the change rendered", func() error {
			b, _ := os.ReadFile(file)
			if !strings.Contains(string(b), "port: 8081") {
				return fmt.Errorf("rendered %q", b)
			}
			return nil
		})
		fleetStatus("at the change's revision", func(st agent.Status) bool { return st.Revision == changed.Header.Revision })
		// Stopped, the agent revokes its status lease: its write permission
		// covers the revoke.
		if err := agentProc.Stop(10 * time.Second); err != nil {
			t.Fatalf("agent stop: %v", err)
		}
		if r, err := root.Get(ctx(t), "/tend/fleet/myapp/host1"); err != nil || len(r.Kvs) != 0 {
			t.Errorf("fleet status after the agent stopped: %v, %v; want it revoked", r, err)
		}
		if strings.Contains(agentProc.Output(), "permission denied") {
			t.Errorf("the agent was refused something:\n%s", agentProc.Output())
		}

		// Reading another application's keys is refused, and nothing is
		// written.
		tmpl := filepath.Join(dir, "application.yml.tmpl")
		if err := os.WriteFile(tmpl, []byte(`{{ key "/otherapp/production/config/secret" }}`+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		before, _ := os.ReadFile(file)
		render := exec.Command(tendBinary(t), "render", "--config", "agent.hcl")
		render.Dir = dir
		out, err := render.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "permission denied") {
			t.Fatalf("render reading /otherapp/ as myapp: %v\n%s\nwant permission denied", err, out)
		}
		if after, _ := os.ReadFile(file); string(after) != string(before) {
			t.Fatalf("a refused render changed application.yml:\n%s", after)
		}
	})
}
