package agent

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Randomized multi-key txns: the file always shows all keys of one txn,
// never a mix of two.
func TestTxnIsNeverHalfRendered(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s server) {
		h := startAgent(t, s.URL(), s.URL(), `
template "pair" {
  contents    = "{{ keyOrDefault \"/tx/a\" \"0\" }} {{ keyOrDefault \"/tx/b\" \"0\" }} {{ range ls \"/tx/list/\" }}{{ .Value }}{{ end }}"
  destination = "pair"
}
`, nil)
		h.waitFile("pair", "0 0 ")
		// A reader checks every version of the file it sees while the
		// writer commits txns, each setting every key to one value.
		stop := make(chan struct{})
		var bad []string
		var seen int
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				b, err := os.ReadFile(h.path("pair"))
				if err != nil {
					bad = append(bad, "read: "+err.Error())
					continue
				}
				f := strings.Fields(string(b))
				seen++
				initial := string(b) == "0 0 "
				if !initial && (len(f) != 3 || f[0] != f[1] || f[2] != strings.Repeat(f[0], 3)) {
					bad = append(bad, string(b))
				}
			}
		}()
		rng := rand.New(rand.NewPCG(1, 2))
		var last string
		for i := 0; i < 150; i++ {
			v := fmt.Sprint(rng.IntN(9) + 1)
			last = v
			ops := []clientv3.Op{clientv3.OpPut("/tx/b", v)}
			for _, k := range rng.Perm(3) {
				ops = append(ops, clientv3.OpPut(fmt.Sprintf("/tx/list/%d", k), v))
			}
			ops = append(ops, clientv3.OpPut("/tx/a", v))
			if _, err := h.cli.Txn(context.Background()).Then(ops...).Commit(); err != nil {
				t.Fatalf("txn %d: %v", i, err)
			}
			if i%10 == 0 {
				time.Sleep(time.Millisecond) // let some renders land between txns
			}
		}
		h.waitFile("pair", last+" "+last+" "+strings.Repeat(last, 3))
		close(stop)
		wg.Wait()
		if len(bad) > 0 {
			t.Fatalf("%d of %d reads saw a half-applied txn or a bad file, e.g. %q", len(bad), seen, bad[0])
		}
	})
}

// 1,000 puts in a burst give a handful of renders, and the last render
// shows the last value.
func TestDebounceCollapsesBursts(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s server) {
		h := startAgent(t, s.URL(), s.URL(), `
wait {
  min = "100ms"
  max = "400ms"
}
template "burst" {
  contents    = "{{ keyOrDefault \"/burst/n\" \"start\" }}"
  destination = "burst"
}
`, nil)
		h.waitFile("burst", "start")
		before := h.logs.count("file replaced", "template=burst")
		const n = 1000
		var wg sync.WaitGroup
		next := make(chan int, n)
		for i := 1; i <= n; i++ {
			next <- i
		}
		close(next)
		var mu sync.Mutex
		var lastRev int64
		lastVal := ""
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range next {
					resp, err := h.cli.Put(context.Background(), "/burst/n", fmt.Sprint(i))
					if err != nil {
						t.Errorf("put: %v", err)
						return
					}
					mu.Lock()
					if resp.Header.Revision > lastRev {
						lastRev, lastVal = resp.Header.Revision, fmt.Sprint(i)
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		h.waitFile("burst", lastVal)
		waitFor(t, "status at the last revision", 5*time.Second, func() bool { return h.status("burst").Revision >= lastRev })
		renders := h.logs.count("file replaced", "template=burst") - before
		// The storm lasts a while on a loaded machine; max forces a render
		// every 400ms, so allow a few per second of storm, far below 1000.
		if renders < 1 || renders > 40 {
			t.Fatalf("%d puts gave %d renders, want a handful", n, renders)
		}
		t.Logf("%d puts → %d renders", n, renders)
	})
}

// A failing check leaves the old file untouched, and the next good value
// goes through. The check runs in the config file's folder, where its
// relative paths resolve like every other path in the config.
func TestFailingCheckKeepsOldFile(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s server) {
		h := startAgent(t, s.URL(), s.URL(), `
template "checked" {
  contents    = "value={{ keyOrDefault \"/chk/v\" \"good-0\" }}\n"
  destination = "checked.conf"
  check       = ["sh", "check.sh", "{{ .path }}"]
}
`, map[string]string{"check.sh": "grep -q good \"$1\"\n"})
		h.waitFile("checked.conf", "value=good-0\n")
		rev := h.put("/chk/v", "bad")
		waitFor(t, "check failure", 10*time.Second, func() bool {
			st := h.status("checked")
			return st.Outcome == "check-failed"
		})
		if got := h.read("checked.conf"); got != "value=good-0\n" {
			t.Fatalf("file changed to %q despite a failing check", got)
		}
		if st := h.status("checked"); !strings.Contains(st.Error, "check.sh") || st.Revision >= rev {
			t.Errorf("status = %+v, want the check command named and the old revision", st)
		}
		h.put("/chk/v", "good-1")
		h.waitFile("checked.conf", "value=good-1\n")
	})
}

// A failing hook rolls the files back and runs the hooks again.
func TestFailingHookRollsBack(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s server) {
		h := startAgent(t, s.URL(), s.URL(), `
template "a" {
  contents    = "{{ keyOrDefault \"/rb/v\" \"fine-0\" }}"
  destination = "a.conf"
  backup      = true
  on_change   = ["record", "verify"]
}
template "b" {
  contents    = "b={{ keyOrDefault \"/rb/v\" \"fine-0\" }}"
  destination = "b.conf"
  on_change   = ["record"]
}
hook "record" {
  exec {
    command = ["sh", "-c", "cat a.conf >> hooks.log; echo >> hooks.log"]
    dir     = "."
  }
}
hook "verify" {
  exec {
    command = ["grep", "-q", "fine", "a.conf"]
    dir     = "."
  }
}
`, nil)
		h.waitFile("a.conf", "fine-0")
		h.waitFile("b.conf", "b=fine-0")
		goodRev := h.status("a").Revision
		h.put("/rb/v", "bad")
		waitFor(t, "rollback", 10*time.Second, func() bool { return h.status("a").Outcome == "rolled-back" })
		if got := h.read("a.conf"); got != "fine-0" {
			t.Errorf("a.conf = %q after rollback, want fine-0", got)
		}
		if got := h.read("b.conf"); got != "b=fine-0" {
			t.Errorf("b.conf = %q after rollback, want b=fine-0", got)
		}
		if st := h.status("a"); st.Revision != goodRev {
			t.Errorf("status revision %d after rollback, want %d, the revision on disk again", st.Revision, goodRev)
		}
		if h.status("b").Outcome != "rolled-back" {
			t.Errorf("b status = %+v, want rolled-back", h.status("b"))
		}
		// "record" ran once for the change (once, though both templates
		// name it) and once after the rollback.
		waitFor(t, "hooks re-run after rollback", 5*time.Second, func() bool {
			b, _ := os.ReadFile(h.path("hooks.log"))
			return strings.HasSuffix(string(b), "bad\nfine-0\n")
		})
		b, _ := os.ReadFile(h.path("hooks.log"))
		if strings.Count(string(b), "bad") != 1 {
			t.Errorf("hooks.log = %q: the shared hook must run once per change set", b)
		}
		h.put("/rb/v", "fine-1")
		h.waitFile("a.conf", "fine-1")
		if bak := h.read("a.conf.bak"); bak != "fine-0" {
			t.Errorf("a.conf.bak = %q, want the previous content fine-0", bak)
		}
	})
}

// An HTTP hook posts a body rendered at the change's revision.
func TestHTTPHookGetsRenderedBody(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s server) {
		bodies := make(chan string, 16)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			bodies <- r.Method + " " + r.URL.Path + " " + r.Header.Get("Content-Type") + " " + string(b)
			w.WriteHeader(http.StatusNoContent)
		}))
		defer srv.Close()
		h := startAgent(t, s.URL(), s.URL(), `
template "level" {
  contents    = "level={{ keyOrDefault \"/log/level\" \"INFO\" }}\n"
  destination = "level.conf"
  on_change   = ["log-level"]
}
hook "log-level" {
  http {
    method        = "POST"
    url           = "`+srv.URL+`/actuator/loggers/ROOT"
    headers       = { "Content-Type" = "application/json" }
    body          = "{\"configuredLevel\": \"{{ keyOrDefault \"/log/level\" \"INFO\" }}\"}"
    expect_status = [200, 204]
  }
}
`, nil)
		h.waitFile("level.conf", "level=INFO\n")
		h.put("/log/level", "DEBUG")
		h.waitFile("level.conf", "level=DEBUG\n")
		want := `POST /actuator/loggers/ROOT application/json {"configuredLevel": "DEBUG"}`
		deadline := time.After(10 * time.Second)
		for {
			select {
			case got := <-bodies:
				if got == want {
					return
				}
				t.Logf("hook call %q", got)
			case <-deadline:
				t.Fatalf("no hook call %q within 10s", want)
			}
		}
	})
}

// A destination that cannot be written (here a folder stands in its way)
// gives an error naming it, and nothing on disk changes.
func TestUnwritableDestination(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s server) {
		h := startAgent(t, s.URL(), s.URL(), `
template "blocked" {
  contents    = "x={{ keyOrDefault \"/blk/x\" \"1\" }}"
  destination = "blocked"
}
`, map[string]string{"blocked/keep": "mine"})
		waitFor(t, "write failure", 10*time.Second, func() bool { return h.status("blocked").Outcome == "write-failed" })
		st := h.status("blocked")
		if !strings.Contains(st.Error, h.path("blocked")) {
			t.Errorf("error %q does not name the destination", st.Error)
		}
		if got := h.read("blocked/keep"); got != "mine" {
			t.Errorf("blocked/keep = %q", got)
		}
		entries, _ := os.ReadDir(h.dir)
		for _, e := range entries {
			if strings.Contains(e.Name(), ".tend-") {
				t.Errorf("staged file left behind: %s", e.Name())
			}
		}
	})
}

// A missing key keeps the last good file and names the key; its arrival
// renders the file.
func TestMissingKeyKeepsFile(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s server) {
		h := startAgent(t, s.URL(), s.URL(), `
template "m" {
  contents             = "v={{ key \"/miss/v\" }}\n"
  destination          = "m.conf"
  error_on_missing_key = true
}
`, map[string]string{"m.conf": "old\n"})
		waitFor(t, "render failure", 10*time.Second, func() bool { return h.logs.count("render failed", "template=m") >= 2 })
		if st := h.status("m"); st.Outcome != "render-failed" || !strings.Contains(st.Error, "missing key /miss/v") {
			t.Errorf("status = %+v, want render-failed naming /miss/v", st)
		}
		if got := h.read("m.conf"); got != "old\n" {
			t.Fatalf("m.conf = %q, want the old file kept", got)
		}
		h.put("/miss/v", "1")
		h.waitFile("m.conf", "v=1\n")
	})
}

// A failing health gate after the hooks rolls the change back.
func TestHealthGateRollsBack(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s server) {
		h := startAgent(t, s.URL(), s.URL(), `
template "svc" {
  contents    = "{{ keyOrDefault \"/hg/v\" \"fine-0\" }}"
  destination = "svc.conf"
}
health {
  command  = ["grep", "-q", "fine", "$DIR/svc.conf"]
  retries  = 3
  interval = "10ms"
  deadline = "5s"
}
`, nil)
		h.waitFile("svc.conf", "fine-0")
		h.put("/hg/v", "sick")
		waitFor(t, "rollback after the health gate", 10*time.Second, func() bool { return h.status("svc").Outcome == "rolled-back" })
		if got := h.read("svc.conf"); got != "fine-0" {
			t.Fatalf("svc.conf = %q, want fine-0 restored", got)
		}
		if n := h.logs.count("health check failed"); n != 3 {
			t.Errorf("%d failed health tries logged, want 3 (retries = 3)", n)
		}
		h.put("/hg/v", "fine-1")
		h.waitFile("svc.conf", "fine-1")
	})
}

// During a storm that never leaves min of quiet, the file is still
// rendered at least every max.
func TestWaitMaxBoundsAStorm(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s server) {
		h := startAgent(t, s.URL(), s.URL(), `
template "storm" {
  contents    = "{{ keyOrDefault \"/storm/n\" \"start\" }}"
  destination = "storm"
  wait {
    min = "250ms"
    max = "300ms"
  }
}
`, nil)
		h.waitFile("storm", "start")
		before := h.logs.count("file replaced", "template=storm")
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		end := time.Now().Add(1500 * time.Millisecond)
		i := 0
		for time.Now().Before(end) {
			<-tick.C
			i++
			h.put("/storm/n", fmt.Sprint(i))
		}
		during := h.logs.count("file replaced", "template=storm") - before
		h.waitFile("storm", fmt.Sprint(i))
		if during < 2 {
			t.Fatalf("%d renders during a 1.5s storm with max = 300ms, want at least 2", during)
		}
		t.Logf("%d puts, %d renders during the storm", i, during)
	})
}

// A template's own wait block overrides the global one.
func TestTemplateWaitOverridesGlobal(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s server) {
		h := startAgent(t, s.URL(), s.URL(), `
wait {
  min = "30s"
  max = "60s"
}
template "slow" {
  contents    = "{{ keyOrDefault \"/wo/v\" \"0\" }}"
  destination = "slow"
}
template "fast" {
  contents    = "{{ keyOrDefault \"/wo/v\" \"0\" }}"
  destination = "fast"
  wait {
    min = "0s"
  }
}
`, nil)
		h.waitFile("fast", "0")
		h.waitFile("slow", "0") // the first render does not wait
		h.put("/wo/v", "1")
		h.waitFile("fast", "1")
		if got := h.read("slow"); got != "0" {
			t.Errorf("slow = %q right after the change; its 30s wait was not kept", got)
		}
	})
}
