package examples

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/tendkv/tend/agent/config"
	"github.com/tendkv/tend/cluster"
	"github.com/tendkv/tend/examples/internal/exampletest"
	"github.com/tendkv/tend/internal/etcdtest"
	"github.com/tendkv/tend/internal/freeport"
	"github.com/tendkv/tend/templates"
)

func TestMain(m *testing.M) {
	code := m.Run()
	exampletest.RemoveBuilds()
	os.Exit(code)
}

// startEtcd starts an embedded etcd on loopback ports for the test and
// returns its client URL.
func startEtcd(t *testing.T) string {
	t.Helper()
	e := etcdtest.StartT(t, etcdtest.Config{Dir: t.TempDir(), Name: "examples", Change: func(cfg *embed.Config) {
		cfg.TickMs, cfg.ElectionMs = 10, 100
	}})
	return "http://" + etcdtest.ClientAddr(e)
}

// startTend starts a one-member tend cluster on loopback ports for the test
// and returns its client URL.
func startTend(t *testing.T) string {
	t.Helper()
	cu := freeport.URL(t)
	m, err := cluster.StartMember(context.Background(), cluster.Config{
		Name:             "examples",
		DataDir:          t.TempDir(),
		ListenClientURLs: []string{cu},
		// One member never dials its peer URL: nothing needs to listen on
		// the advertised one, and port 0 cannot be taken first.
		ListenPeerURLs:           []string{"http://127.0.0.1:0"},
		InitialAdvertisePeerURLs: []string{"http://127.0.0.1:12380"},
		HeartbeatInterval:        10 * time.Millisecond,
		ElectionTimeout:          100 * time.Millisecond,
		Logger:                   slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatalf("start tend member: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	select {
	case <-m.ReadyNotify():
	case <-m.Done():
		t.Fatalf("tend member stopped before ready: %v", m.Err())
	case <-time.After(10 * time.Second):
		t.Fatal("tend member not ready within 10s")
	}
	return cu
}

// forEachStore runs f as a parallel subtest against an embedded etcd and
// against a tend member: the examples work the same on both.
func forEachStore(t *testing.T, f func(t *testing.T, endpoint string)) {
	for _, s := range []struct {
		name  string
		start func(*testing.T) string
	}{{"etcd", startEtcd}, {"tend", startTend}} {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			f(t, s.start(t))
		})
	}
}

func newClient(t *testing.T, endpoint string) *clientv3.Client {
	t.Helper()
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatalf("connect to %s: %v", endpoint, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func put(t *testing.T, c *clientv3.Client, key, value string, opts ...clientv3.OpOption) {
	t.Helper()
	if _, err := c.Put(ctx(t), key, value, opts...); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

// copyExample copies the example folder name (everything but Go sources
// and built or rendered files, which its .gitignore names) to a temporary
// folder, with replacements applied to every *.hcl file, and returns it.
func copyExample(t *testing.T, name string, replace ...string) string {
	t.Helper()
	dst := t.TempDir()
	src, err := filepath.Abs(name)
	if err != nil {
		t.Fatal(err)
	}
	r := strings.NewReplacer(replace...)
	err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			if rel == "bin" || rel == "tmp" {
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		if strings.HasSuffix(p, ".go") {
			return nil
		}
		if rendered(rel) {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if strings.HasSuffix(p, ".hcl") {
			b = []byte(r.Replace(string(b)))
		}
		info, _ := d.Info()
		return os.WriteFile(filepath.Join(dst, rel), b, info.Mode().Perm())
	})
	if err != nil {
		t.Fatalf("copy example %s: %v", name, err)
	}
	return dst
}

// rendered reports whether rel is a file an example run in its own folder
// leaves behind (see the examples' .gitignore files).
func rendered(rel string) bool {
	base := filepath.Base(rel)
	switch base {
	case "application.yml", "upstream.conf", "listen.conf", "logback.xml":
		return true
	}
	return strings.HasSuffix(base, ".bak") || strings.HasPrefix(rel, "levels/")
}

// loadConfig loads an agent configuration and fails the test on an error.
func loadConfig(t *testing.T, path string) *config.Config {
	t.Helper()
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("load %s:\n%v", path, err)
	}
	return cfg
}

// view is the keyspace at one revision, read through clientv3, as the agent
// reads it.
type view struct {
	t   *testing.T
	c   *clientv3.Client
	rev int64
}

func (v view) Get(key string) ([]byte, bool, error) {
	resp, err := v.c.Get(ctx(v.t), key, clientv3.WithRev(v.rev))
	if err != nil || len(resp.Kvs) == 0 {
		return nil, false, err
	}
	return resp.Kvs[0].Value, true, nil
}

func (v view) List(prefix string) ([]templates.KV, error) {
	resp, err := v.c.Get(ctx(v.t), prefix, clientv3.WithPrefix(), clientv3.WithRev(v.rev),
		clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	if err != nil {
		return nil, err
	}
	out := make([]templates.KV, len(resp.Kvs))
	for i, kv := range resp.Kvs {
		out[i] = templates.KV{Key: string(kv.Key), Value: kv.Value}
	}
	return out, nil
}

// viewNow is the keyspace at the store's current revision.
func viewNow(t *testing.T, c *clientv3.Client) view {
	t.Helper()
	resp, err := c.Get(ctx(t), "/")
	if err != nil {
		t.Fatalf("read revision: %v", err)
	}
	return view{t: t, c: c, rev: resp.Header.Revision}
}

// render renders the configured template name at the current revision and
// writes it to its destination, as the agent would, returning the bytes.
func render(t *testing.T, c *clientv3.Client, cfg *config.Config, name string) []byte {
	t.Helper()
	for _, tp := range cfg.Templates {
		if tp.Name != name {
			continue
		}
		out, _, err := tp.Parsed.Render(viewNow(t, c))
		if err != nil {
			t.Fatalf("render %s: %v", name, err)
		}
		if err := os.WriteFile(tp.Destination, out, 0o644); err != nil {
			t.Fatal(err)
		}
		return out
	}
	t.Fatalf("no template %q in %v", name, cfg.Files)
	return nil
}

// tendBinary builds cmd/tend once for the test binary.
func tendBinary(t *testing.T) string {
	return exampletest.Build(t, "github.com/tendkv/tend/cmd/tend")
}

// installBinary places the built main package pkg at dir/bin/name, where the
// example's configuration expects it.
func installBinary(t *testing.T, dir, name, pkg string) string {
	t.Helper()
	bin := exampletest.Build(t, pkg)
	dst := filepath.Join(dir, "bin", name)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(bin, dst); err != nil {
		if out, err := exec.Command("cp", bin, dst).CombinedOutput(); err != nil {
			t.Fatalf("install %s: %v %s", dst, err, out)
		}
	}
	return dst
}

// startAgent runs `tend agent --config file` in dir (the example's copy,
// where its check commands expect to run) with debug logging. Its output
// holds the agent's log and the output of the processes it supervises.
func startAgent(t *testing.T, dir, file string, env ...string) *exampletest.Proc {
	t.Helper()
	p := exampletest.Start(t, dir, env, tendBinary(t), "agent", "--config", file, "--log-level", "debug")
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("TEND_TEST_LOG") != "" {
			t.Logf("agent output:\n%s", p.Output())
		}
	})
	return p
}

// waitCount waits until s occurs at least n times in the program's output.
func waitCount(t *testing.T, p *exampletest.Proc, d time.Duration, s string, n int) {
	t.Helper()
	exampletest.Eventually(t, d, fmt.Sprintf("%d× %q in the output", n, s), func() error {
		if c := strings.Count(p.Output(), s); c < n {
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
