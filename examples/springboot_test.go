package examples

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/tendkv/tend/examples/internal/exampletest"
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

// runApp starts the stand-in app on file and returns what it loaded.
func runApp(t *testing.T, bin, file string) loaded {
	t.Helper()
	port := exampletest.FreePort(t)
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
		{"staging", "staging", 8083, "INFO"},
	} {
		t.Run(tc.env, func(t *testing.T) {
			t.Setenv("APP_ENV", tc.appEnv)
			out := render(t, c, cfg, "application-yml")

			// The YAML is nested and typed as a person writes it.
			var doc struct {
				Server struct{ Port any }
				App    struct {
					Hosts   []string
					Feature map[string]any
				}
			}
			if err := yaml.Unmarshal(out, &doc); err != nil {
				t.Fatalf("rendered YAML does not parse: %v\n%s", err, out)
			}
			if doc.Server.Port != tc.port || len(doc.App.Hosts) != 2 || doc.App.Feature["new-checkout"] != false {
				t.Errorf("rendered YAML:\n%s", out)
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
	props := runApp(t, app, dest).Properties
	if props["server.port"] != "8091" || props["app.hosts[1]"] != "b.production.example.com" {
		t.Errorf("app loaded %v", props)
	}
}
