package examples

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"gopkg.in/yaml.v3"

	"github.com/tendkv/tend/examples/internal/exampletest"
	"github.com/tendkv/tend/internal/freeport"
)

const springbootApp = "github.com/tendkv/tend/examples/springboot/app"

// seedSpringboot runs the example's seed.sh with the tend binary against
// endpoint.
func seedSpringboot(t *testing.T, dir, endpoint string) {
	t.Helper()
	cmd := exec.Command("sh", filepath.Join(dir, "seed.sh"))
	cmd.Env = append(os.Environ(), "TEND="+tendBinary(t), "TEND_ENDPOINTS="+endpoint)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("seed.sh: %v\n%s", err, out)
	}
}

// wantProps is what seed.sh stores for env, as Spring Boot property names.
func wantProps(env string, port int, root string) map[string]string {
	return map[string]string{
		"server.port":                strconv.Itoa(port),
		"spring.application.name":    "myapp",
		"spring.profiles.active":     env,
		"spring.datasource.url":      "jdbc:postgresql://db." + env + ".example.com:5432/myapp",
		"spring.datasource.username": "myapp",
		"app.hosts[0]":               "a." + env + ".example.com",
		"app.hosts[1]":               "b." + env + ".example.com",
		"app.feature.new-checkout":   "false",
		"logging.level.root":         root,
	}
}

// wantDoc builds the document the keys under prefix (at revision rev, or
// the latest when 0) should render to, without the template engine: path
// segments nest, children all named by numbers form a list in numeric
// order, and leaves are typed as a person types them in YAML ("8084" an
// int, "false" a bool), as the tree function documents.
func wantDoc(t *testing.T, c *clientv3.Client, prefix string, rev int64) map[string]any {
	t.Helper()
	opts := []clientv3.OpOption{clientv3.WithPrefix()}
	if rev != 0 {
		opts = append(opts, clientv3.WithRev(rev))
	}
	resp, err := c.Get(ctx(t), prefix+"/", opts...)
	if err != nil {
		t.Fatalf("read %s/: %v", prefix, err)
	}
	if len(resp.Kvs) == 0 {
		t.Fatalf("no keys under %s/", prefix)
	}
	root := map[string]any{}
	for _, kv := range resp.Kvs {
		segs := strings.Split(strings.TrimPrefix(string(kv.Key), prefix+"/"), "/")
		m := root
		for _, seg := range segs[:len(segs)-1] {
			child, ok := m[seg].(map[string]any)
			if !ok {
				child = map[string]any{}
				m[seg] = child
			}
			m = child
		}
		v := string(kv.Value)
		var leaf any = v
		if n, err := strconv.Atoi(v); err == nil && strconv.Itoa(n) == v {
			leaf = n
		} else if v == "true" || v == "false" {
			leaf = v == "true"
		}
		m[segs[len(segs)-1]] = leaf
	}
	return listsOf(root).(map[string]any)
}

// listsOf turns every mapping whose keys are all numbers into a list in
// numeric order.
func listsOf(v any) any {
	m, ok := v.(map[string]any)
	if !ok {
		return v
	}
	idx := make([]int, 0, len(m))
	for k, c := range m {
		m[k] = listsOf(c)
		if n, err := strconv.Atoi(k); err == nil && n >= 0 {
			idx = append(idx, n)
		}
	}
	if len(idx) == 0 || len(idx) != len(m) {
		return m
	}
	sort.Ints(idx)
	list := make([]any, len(idx))
	for i, n := range idx {
		list[i] = m[strconv.Itoa(n)]
	}
	return list
}

// checkDoc parses the YAML in data (the rendered file) and compares the
// whole document with want.
func checkDoc(t *testing.T, what string, data []byte, want map[string]any) {
	t.Helper()
	var got any
	if err := yaml.Unmarshal(data, &got); err != nil {
		t.Fatalf("%s does not parse as YAML: %v\n%s", what, err, data)
	}
	if !reflect.DeepEqual(got, want) {
		w, _ := yaml.Marshal(want)
		t.Errorf("%s parses to a different document:\n%s\nwant (from the keys)\n%s", what, data, w)
	}
}

// runApp starts the stand-in app on file and returns what it loaded.
func runApp(t *testing.T, bin, file string) loaded {
	t.Helper()
	port := freeport.Port(t)
	p := exampletest.Start(t, filepath.Dir(file), nil, bin, "--config", file, "--port", strconv.Itoa(port))
	p.WaitOutput(t, 20*time.Second, "serving on")
	var got loaded
	if err := exampletest.GetJSON("http://127.0.0.1:"+strconv.Itoa(port)+"/loaded", &got); err != nil {
		t.Fatal(err)
	}
	return got
}

// loaded is the stand-in app's GET /loaded answer.
type loaded struct {
	File       string            `json:"file"`
	PID        int               `json:"pid"`
	Started    time.Time         `json:"started"`
	Properties map[string]string `json:"properties"`
}

// Pattern 2: one template renders the tree of the environment APP_ENV names;
// the app loads exactly the properties seed.sh stored for it.
func TestSpringbootTreePerEnvironment(t *testing.T) {
	ep := startEtcd(t)
	c := newClient(t, ep)
	dir := copyExample(t, "springboot")
	seedSpringboot(t, dir, ep)
	cfg := loadConfig(t, filepath.Join(dir, "agent.hcl"))
	app := installBinary(t, dir, "app", springbootApp)

	for _, tc := range []struct {
		env, appEnv string
		port        int
		root        string
	}{
		{"production", "", 8084, "INFO"},
		{"dev", "dev", 8081, "DEBUG"},
		{"qa", "qa", 8082, "INFO"},
		{"staging", "staging", 8083, "INFO"},
	} {
		t.Run(tc.env, func(t *testing.T) {
			t.Setenv("APP_ENV", tc.appEnv)
			out := render(t, c, cfg, "application-yml")

			// The whole document is the environment's keys, nested and
			// typed as a person writes them, and only those.
			checkDoc(t, "application.yml for "+tc.env, out, wantDoc(t, c, "/myapp/"+tc.env+"/config", 0))
			for _, want := range []string{"# Rendered by tend from the keys under /myapp/" + tc.env + "/config/.\n", "(tend put /myapp/" + tc.env + "/config/server/port "} {
				if !strings.Contains(string(out), want) {
					t.Errorf("the header lacks %q:\n%s", want, out)
				}
			}
			if !strings.HasPrefix(string(out), "# Rendered") {
				t.Errorf("the file does not start with its header:\n%s", out)
			}

			cmd := exec.Command(app, "--check", "--config", cfg.Templates[0].Destination)
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("the example's check command refuses the render: %v\n%s", err, b)
			}
			got := runApp(t, app, cfg.Templates[0].Destination)
			if want := wantProps(tc.env, tc.port, tc.root); !reflect.DeepEqual(got.Properties, want) {
				t.Errorf("app loaded\n%v\nwant\n%v", got.Properties, want)
			}
		})
	}
}

// Pattern 1: the key /myapp/production/config holds a whole application.yml
// (seed.sh stores it with `tend put KEY < file`); the render is that file,
// byte for byte.
func TestSpringbootWholeFile(t *testing.T) {
	t.Parallel()
	ep := startEtcd(t)
	dir := copyExample(t, "springboot", `"http://127.0.0.1:2379"`, strconv.Quote(ep))
	app := installBinary(t, dir, "app", springbootApp)
	dest := filepath.Join(dir, "whole-file", "application.yml")

	// Before the key exists: an error naming it, and no file at all.
	early := exec.Command(tendBinary(t), "render", "--once", "--config", "whole-file/agent.hcl")
	early.Dir = dir
	if out, err := early.CombinedOutput(); err == nil || !strings.Contains(string(out), "/myapp/production/config") {
		t.Errorf("render with the key missing: %v, output %s; want a failure naming the key", err, out)
	}
	if _, err := os.Stat(dest); !os.IsNotExist(err) {
		t.Errorf("render with the key missing left %s (%v)", dest, err)
	}

	seedSpringboot(t, dir, ep)
	// `tend render --once`, as a container start script would run it: the
	// file is written (after the check) and nothing is started.
	cmd := exec.Command(tendBinary(t), "render", "--once", "--config", "whole-file/agent.hcl")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tend render --once: %v\n%s", err, out)
	}
	got, err := os.ReadFile(dest)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join(dir, "whole-file", "application.example.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatalf("render differs from the stored file:\n got %q\nwant %q", got, want)
	}
	// The stored file is YAML with the nested structure the app reads.
	checkDoc(t, "whole-file/application.yml", got, map[string]any{
		"server": map[string]any{"port": 8091},
		"spring": map[string]any{
			"application": map[string]any{"name": "myapp"},
			"datasource": map[string]any{
				"url":      "jdbc:postgresql://db.production.example.com:5432/myapp",
				"username": "myapp",
			},
		},
		"app":     map[string]any{"hosts": []any{"a.production.example.com", "b.production.example.com"}},
		"logging": map[string]any{"level": map[string]any{"root": "INFO"}},
	})
	props := runApp(t, app, dest).Properties
	if props["server.port"] != "8091" || props["app.hosts[1]"] != "b.production.example.com" {
		t.Errorf("app loaded %v", props)
	}
}
