package examples

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tendkv/tend/examples/internal/exampletest"
	"github.com/tendkv/tend/internal/freeport"
	"github.com/tendkv/tend/internal/testenv"
)

// logLine matches what both loglevel programs print: logback's
// "%-5level %logger - %msg" with messages "debug line N" / "info line N",
// N counting the rounds.
var logLine = regexp.MustCompile(`(?m)\b(DEBUG|INFO) +(\S+) - (?:debug|info) line (\d+)$`)

// expectLines waits until, in the last five rounds the program logged,
// logger printed lines at level (some) or none at all (!some).
func expectLines(t *testing.T, p *exampletest.Proc, logger, level string, some bool) {
	t.Helper()
	const rounds = 5
	mark := len(p.Output())
	what := fmt.Sprintf("%s %s lines (want some: %v)", logger, level, some)
	exampletest.Eventually(t, 30*time.Second, what, func() error {
		out := p.Output()[mark:]
		type hit struct {
			level, logger string
			n             int
		}
		var hits []hit
		first, last := -1, -1
		for _, m := range logLine.FindAllStringSubmatch(out, -1) {
			n, _ := strconv.Atoi(m[3])
			hits = append(hits, hit{m[1], m[2], n})
			if first < 0 {
				first = n
			}
			last = max(last, n)
		}
		if first < 0 || last-first < rounds {
			return fmt.Errorf("only rounds %d..%d logged since the change", first, last)
		}
		count := 0
		for _, h := range hits {
			if h.n > last-rounds && h.level == level && h.logger == logger {
				count++
			}
		}
		if some && count < 2 {
			return fmt.Errorf("%d lines in the last %d rounds", count, rounds)
		}
		if !some && count > 0 {
			return fmt.Errorf("%d lines in the last %d rounds", count, rounds)
		}
		return nil
	})
}

// The actuator variant: the agent POSTs each logger's level to the running
// app when its key changes; the app's DEBUG lines appear and vanish, and it
// is never restarted.
func TestLoglevelActuatorAgent(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, ep string) {
		c := newClient(t, ep)
		port := strconv.Itoa(freeport.Port(t))
		dir := copyExample(t, "loglevel",
			`"http://127.0.0.1:2379"`, strconv.Quote(ep),
			`127.0.0.1:8080`, `127.0.0.1:`+port,
			`"--port", "8080"`, `"--port", "`+port+`", "--interval", "50ms"`)
		installBinary(t, dir, "app", "github.com/tendkv/tend/examples/loglevel/app")

		agent := startAgent(t, dir, "agent.hcl")
		// At start every logger's file is new, so every hook runs once (sending
		// null: no key yet), retrying until the app listens.
		for _, h := range []string{"level-root", "level-orders", "level-payments"} {
			waitCount(t, agent, 30*time.Second, `msg="hook ran" hook=`+h+` revision=`, 1)
		}
		base := "http://127.0.0.1:" + port + "/actuator/loggers/"
		level := func(name string) (configured any, effective string) {
			var s struct {
				ConfiguredLevel any    `json:"configuredLevel"`
				EffectiveLevel  string `json:"effectiveLevel"`
			}
			if err := exampletest.GetJSON(base+name, &s); err != nil {
				t.Fatal(err)
			}
			return s.ConfiguredLevel, s.EffectiveLevel
		}
		waitLevel := func(name string, configured any, effective string) {
			t.Helper()
			exampletest.Eventually(t, 30*time.Second, "logger "+name+" level", func() error {
				if c, e := level(name); c != configured || e != effective {
					return fmt.Errorf("configured %v effective %s", c, e)
				}
				return nil
			})
		}
		expectLines(t, agent, "com.example.orders", "INFO", true)
		expectLines(t, agent, "com.example.orders", "DEBUG", false)

		put(t, c, "/myapp/production/logging/com.example.orders", "debug")
		waitLevel("com.example.orders", "DEBUG", "DEBUG")
		expectLines(t, agent, "com.example.orders", "DEBUG", true)
		expectLines(t, agent, "com.example.payments", "DEBUG", false)

		if _, err := c.Delete(ctx(t), "/myapp/production/logging/com.example.orders"); err != nil {
			t.Fatal(err)
		}
		waitLevel("com.example.orders", nil, "INFO")
		expectLines(t, agent, "com.example.orders", "DEBUG", false)

		// A level the app does not know: the check refuses it, the file and
		// the app's level stay as they were.
		put(t, c, "/myapp/production/logging/com.example.payments", "LOUD")
		waitCount(t, agent, 30*time.Second, "outcome=check-failed", 1)
		waitLevel("com.example.payments", nil, "INFO")
		if _, err := c.Delete(ctx(t), "/myapp/production/logging/com.example.payments"); err != nil {
			t.Fatal(err)
		}

		// ROOT at WARN silences payments, which inherits it; orders, set to
		// INFO on its own, keeps logging (and shows the rounds go on).
		put(t, c, "/myapp/production/logging/com.example.orders", "INFO")
		put(t, c, "/myapp/production/logging/ROOT", "WARN")
		waitLevel("com.example.payments", nil, "WARN")
		expectLines(t, agent, "com.example.payments", "INFO", false)
		expectLines(t, agent, "com.example.orders", "INFO", true)

		if n := strings.Count(agent.Output(), "app: actuator on"); n != 1 {
			t.Errorf("the app started %d times; a level change must not restart it", n)
		}

		// A new agent finds the level files as they are and sends nothing;
		// the app it starts reads them, and comes up at the store's levels.
		if err := agent.Stop(15 * time.Second); err != nil {
			t.Errorf("agent exit: %v", err)
		}
		agent = startAgent(t, dir, "agent.hcl")
		agent.WaitOutput(t, 30*time.Second, "app: actuator on")
		for _, l := range []struct {
			name       string
			configured any
			effective  string
		}{{"ROOT", "WARN", "WARN"}, {"com.example.orders", "INFO", "INFO"}, {"com.example.payments", nil, "WARN"}} {
			if c, e := level(l.name); c != l.configured || e != l.effective {
				t.Errorf("after the agent's restart, %s: configured %v effective %s; want %v %s", l.name, c, e, l.configured, l.effective)
			}
		}
		if strings.Contains(agent.Output(), `msg="hook ran"`) {
			t.Errorf("a hook ran although no level file changed")
		}
	})
}

// javaClasspath is where Debian's libslf4j-java and liblogback-java put
// their jars.
var javaJars = []struct{ jar, pkg string }{
	{"/usr/share/java/slf4j-api.jar", "libslf4j-java"},
	{"/usr/share/java/logback-core.jar", "liblogback-java"},
	{"/usr/share/java/logback-classic.jar", "liblogback-java"},
}

// compileJava compiles the example's Main.java with javac into dir/build.
func compileJava(t *testing.T, dir string) {
	t.Helper()
	javac := testenv.Program(t, "javac", "default-jdk-headless")
	testenv.Program(t, "java", "default-jdk-headless")
	var cp []string
	for _, j := range javaJars {
		if _, err := os.Stat(j.jar); err != nil {
			testenv.Missing(t, "needs %s (Debian package %s): %v", j.jar, j.pkg, err)
		}
		cp = append(cp, j.jar)
	}
	cmd := exec.Command(javac, "-cp", strings.Join(cp, ":"), "-d", filepath.Join(dir, "build"), filepath.Join(dir, "Main.java"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("javac Main.java: %v\n%s", err, out)
	}
}

// The logback variant: the agent renders logback.xml from the keys, and
// logback, scanning the file every second, changes the Java program's
// levels without a restart.
func TestLoglevelLogbackAgent(t *testing.T) {
	t.Parallel()
	ep := startEtcd(t)
	c := newClient(t, ep)
	dir := copyExample(t, "loglevel", `"http://127.0.0.1:2379"`, strconv.Quote(ep), `"Main", "200"`, `"Main", "50"`)
	java := filepath.Join(dir, "java")
	compileJava(t, java)
	put(t, c, "/myapp/production/logging/com.example.payments", "INFO")

	agent := startAgent(t, java, "agent.hcl")
	agent.WaitOutput(t, 60*time.Second, "Main: logging every 50ms")
	expectLines(t, agent, "com.example.orders", "INFO", true)
	expectLines(t, agent, "com.example.orders", "DEBUG", false)

	put(t, c, "/myapp/production/logging/com.example.orders", "DEBUG")
	expectLines(t, agent, "com.example.orders", "DEBUG", true)
	expectLines(t, agent, "com.example.payments", "DEBUG", false)

	if _, err := c.Delete(ctx(t), "/myapp/production/logging/com.example.orders"); err != nil {
		t.Fatal(err)
	}
	expectLines(t, agent, "com.example.orders", "DEBUG", false)
	expectLines(t, agent, "com.example.orders", "INFO", true)

	// A level logback does not know (it would read it as DEBUG): the
	// render fails and logback.xml stays as it was.
	before, err := os.ReadFile(filepath.Join(java, "logback.xml"))
	if err != nil {
		t.Fatal(err)
	}
	put(t, c, "/myapp/production/logging/com.example.orders", "LOUD")
	waitCount(t, agent, 30*time.Second, `level \"LOUD\" is not one of`, 1)
	if after, _ := os.ReadFile(filepath.Join(java, "logback.xml")); string(after) != string(before) {
		t.Errorf("logback.xml changed to\n%s", after)
	}

	if n := strings.Count(agent.Output(), "Main: logging every"); n != 1 {
		t.Errorf("the program started %d times; logback must pick up levels without a restart", n)
	}
}
