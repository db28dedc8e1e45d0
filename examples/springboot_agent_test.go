package examples

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tendkv/tend/examples/internal/exampletest"
	"github.com/tendkv/tend/internal/freeport"
)

// The whole example as the README runs it: `tend agent` renders
// application.yml from the production tree, starts the app, restarts it on
// a change, and refuses a change the app's check rejects.
func TestSpringbootAgent(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, ep string) {
		c := newClient(t, ep)
		dir := copyExample(t, "springboot", `"http://127.0.0.1:2379"`, strconv.Quote(ep))
		seedSpringboot(t, dir, ep)
		port := freeport.Port(t)
		put(t, c, "/myapp/production/config/server/port", strconv.Itoa(port))
		installBinary(t, dir, "app", springbootApp)

		agent := startAgent(t, dir, "agent.hcl", "APP_ENV=")
		url := "http://127.0.0.1:" + strconv.Itoa(port) + "/loaded"
		// The first render starts the app, which reads the fresh file: its
		// restart hook does not run for that first apply.
		waitCount(t, agent, 30*time.Second, `msg="started process"`, 1)
		want := wantProps("production", port, "INFO")
		var first loaded
		exampletest.Eventually(t, 30*time.Second, "app serves the production tree", func() error {
			if err := exampletest.GetJSON(url, &first); err != nil {
				return err
			}
			if !reflect.DeepEqual(first.Properties, want) {
				return fmt.Errorf("loaded %v", first.Properties)
			}
			return nil
		})
		if first.File != "application.yml" {
			t.Errorf("app read %q, want application.yml in its folder", first.File)
		}
		yml := filepath.Join(dir, "application.yml")
		const prefix = "/myapp/production/config"
		checkRender := func(what string, rev int64) []byte {
			t.Helper()
			b, err := os.ReadFile(yml)
			if err != nil {
				t.Fatal(err)
			}
			checkDoc(t, what, b, wantDoc(t, c, prefix, rev))
			return b
		}
		checkRender("the first render", 0)

		// One transaction, two keys: the app restarts once and sees both.
		newURL := "jdbc:postgresql://db2.production.example.com:5432/myapp"
		txn, err := c.Txn(ctx(t)).Then(
			clientv3.OpPut("/myapp/production/config/spring/datasource/url", newURL),
			clientv3.OpPut("/myapp/production/config/app/hosts/2", "c.production.example.com"),
		).Commit()
		if err != nil {
			t.Fatal(err)
		}
		want["spring.datasource.url"] = newURL
		want["app.hosts[2]"] = "c.production.example.com"
		var second loaded
		exampletest.Eventually(t, 30*time.Second, "app restarted with the change", func() error {
			if err := exampletest.GetJSON(url, &second); err != nil {
				return err
			}
			if second.PID == first.PID {
				return errors.New("same pid: not restarted yet")
			}
			if !reflect.DeepEqual(second.Properties, want) {
				return fmt.Errorf("loaded %v", second.Properties)
			}
			return nil
		})
		waitCount(t, agent, 30*time.Second, `msg="hook ran" hook=restart-app`, 1)
		checkRender("the render after the transaction", txn.Header.Revision)
		if n := strings.Count(agent.Output(), `msg="started process"`); n != 2 {
			t.Errorf("app started %d times by now, want 2: once at the first render, once for the change", n)
		}
		bak, err := os.ReadFile(filepath.Join(dir, "application.yml.bak"))
		if err != nil || !strings.Contains(string(bak), "db.production.example.com") {
			t.Errorf("backup = true: application.yml.bak holds %q (%v), want the previous file", bak, err)
		}

		// A port the app would refuse: the check fails, the file and the
		// running app stay as they were.
		before := checkRender("the render before the refused change", txn.Header.Revision)
		put(t, c, "/myapp/production/config/server/port", "eighty")
		waitCount(t, agent, 30*time.Second, `outcome=check-failed`, 1)
		after := checkRender("application.yml after a refused change (the keys before it)", txn.Header.Revision)
		if string(after) != string(before) {
			t.Errorf("a rejected render replaced application.yml:\n%s", after)
		}
		var third loaded
		if err := exampletest.GetJSON(url, &third); err != nil || third.PID != second.PID {
			t.Errorf("after a rejected change: pid %d (%v), want %d still running", third.PID, err, second.PID)
		}

		// Stopping the agent stops the app it supervises.
		if err := agent.Stop(15 * time.Second); err != nil {
			t.Errorf("agent exit: %v", err)
		}
		if err := exampletest.GetJSON(url, &third); err == nil {
			t.Errorf("app still serving after the agent stopped")
		}
	})
}
