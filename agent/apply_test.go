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
	"sync/atomic"
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

// By default a missing key keeps the last good file and names the key in
// the status and the log; its arrival renders the file. With
// error_on_missing_key = false the key reads as "".
func TestMissingKeyKeepsFile(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s server) {
		h := startAgent(t, s.URL(), s.URL(), `
template "m" {
  contents    = "v={{ key \"/miss/v\" }} opt={{ keyOrDefault \"/miss/opt\" \"none\" }}\n"
  destination = "m.conf"
}
template "lenient" {
  contents             = "v={{ key \"/miss/v\" }}\n"
  destination          = "lenient.conf"
  error_on_missing_key = false
}
`, map[string]string{"m.conf": "old\n", "lenient.conf": "old\n"})
		waitFor(t, "render failure", 10*time.Second, func() bool {
			return h.logs.count("render failed", "template=m", "missing-keys=/miss/v") >= 2
		})
		if st := h.status("m"); st.Outcome != "render-failed" || !strings.Contains(st.Error, "missing key /miss/v") {
			t.Errorf("status = %+v, want render-failed naming /miss/v", st)
		}
		if got := h.read("m.conf"); got != "old\n" {
			t.Fatalf("m.conf = %q, want the old file kept", got)
		}
		h.waitFile("lenient.conf", "v=\n")
		h.put("/miss/v", "1")
		h.waitFile("m.conf", "v=1 opt=none\n")
		h.waitFile("lenient.conf", "v=1\n")
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

// A template reading one prefix renders from the agent's mirror of it
// (the watch's events applied to a copy, no read from the store): random
// txns of puts and deletes under the prefix reach the file whole, and the
// last state is exactly the store's.
func TestMirrorFollowsTxns(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s server) {
		h := startAgent(t, s.URL(), s.URL(), `
template "m" {
  contents    = "{{ range ls \"/mir/\" }}{{ .Rel }}={{ .Value }};{{ end }}"
  destination = "m"
}
`, nil)
		h.waitFile("m", "")
		stop := make(chan struct{})
		var bad []string
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
				b, err := os.ReadFile(h.path("m"))
				if err != nil {
					bad = append(bad, "read: "+err.Error())
					continue
				}
				// Every txn gives all the keys it leaves one value.
				var vals []string
				for _, kv := range strings.Split(strings.TrimSuffix(string(b), ";"), ";") {
					if _, v, ok := strings.Cut(kv, "="); ok {
						vals = append(vals, v)
					}
				}
				for _, v := range vals {
					if v != vals[0] {
						bad = append(bad, string(b))
						break
					}
				}
			}
		}()
		rng := rand.New(rand.NewPCG(3, 4))
		for i := 0; i < 200; i++ {
			v := fmt.Sprint(i)
			// Each key, in a random order, takes the txn's value or goes.
			var ops []clientv3.Op
			for _, k := range rng.Perm(6) {
				key := fmt.Sprintf("/mir/%d", k)
				if rng.IntN(3) == 0 {
					ops = append(ops, clientv3.OpDelete(key))
				} else {
					ops = append(ops, clientv3.OpPut(key, v))
				}
			}
			if _, err := h.cli.Txn(context.Background()).Then(ops...).Commit(); err != nil {
				t.Fatalf("txn %d: %v", i, err)
			}
			if i%10 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
		resp, err := h.cli.Get(context.Background(), "/mir/", clientv3.WithPrefix())
		if err != nil {
			t.Fatal(err)
		}
		var want strings.Builder
		for _, kv := range resp.Kvs {
			fmt.Fprintf(&want, "%s=%s;", strings.TrimPrefix(string(kv.Key), "/mir/"), kv.Value)
		}
		h.waitFile("m", want.String())
		waitFor(t, "the status to show the last revision", 5*time.Second, func() bool { return h.status("m").Revision == resp.Header.Revision })
		close(stop)
		wg.Wait()
		if len(bad) > 0 {
			t.Fatalf("%d reads saw a half-applied txn, e.g. %q", len(bad), bad[0])
		}
		if h.logs.count("rendered from the mirror", "template=m") == 0 {
			t.Errorf("no render came from the mirror; the test did not test it")
		}
	})
}

// The health gate can be an HTTP URL: a change after which the app
// answers unhealthy is rolled back, a healthy one stays. Its deadline
// bounds the whole gate, however many retries are allowed, and also a
// probe the app never answers.
func TestHealthGateHTTPAndDeadline(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s server) {
		var dest atomic.Pointer[string]
		var probes atomic.Int64
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			probes.Add(1)
			p := dest.Load()
			if p == nil {
				// The harness's folder is not known yet: this is the
				// first apply, of the healthy default.
				w.WriteHeader(http.StatusOK)
				return
			}
			b, _ := os.ReadFile(*p)
			switch {
			case strings.HasPrefix(string(b), "fine"):
				w.WriteHeader(http.StatusOK)
			case strings.HasPrefix(string(b), "hang"):
				<-r.Context().Done() // never answers; the gate's deadline ends it
			default:
				http.Error(w, "unhealthy: "+string(b), http.StatusServiceUnavailable)
			}
		}))
		defer srv.Close()
		h := startAgent(t, s.URL(), s.URL(), `
template "svc" {
  contents    = "{{ keyOrDefault \"/hh/v\" \"fine-0\" }}"
  destination = "svc.conf"
}
health {
  http     = "`+srv.URL+`/health"
  retries  = 2000
  interval = "10ms"
  deadline = "500ms"
}
`, nil)
		p := h.path("svc.conf")
		dest.Store(&p)
		h.waitFile("svc.conf", "fine-0")
		waitFor(t, "fine-0 accepted by the gate", 10*time.Second, func() bool { return h.logs.count("health check passed") > 0 })

		good := "fine-0"
		for i, bad := range []string{"sick", "hang"} {
			before := probes.Load()
			start := time.Now()
			h.put("/hh/v", bad)
			// 2000 tries 10ms apart would take 20s: only the deadline
			// ends the gate within the wait.
			waitFor(t, bad+" rolled back", 10*time.Second, func() bool { return h.status("svc").Outcome == "rolled-back" })
			took := time.Since(start)
			if got := h.read("svc.conf"); got != good {
				t.Fatalf("svc.conf = %q after the %s change was refused, want %s", got, bad, good)
			}
			if st := h.status("svc"); !strings.Contains(st.Error, "deadline 500ms passed") {
				t.Errorf("%s: status error %q, want it to name the deadline", bad, st.Error)
			}
			n := probes.Load() - before
			if bad == "sick" && n < 2 {
				t.Errorf("%s: %d probes, want the gate to retry until its deadline", bad, n)
			}
			if bad == "hang" && n != 1 {
				t.Errorf("%s: %d probes, want one, which the deadline ended", bad, n)
			}
			t.Logf("%s: rolled back after %s and %d probes", bad, took.Round(time.Millisecond), n)

			good = "fine-" + itoa(i+1)
			passed := h.logs.count("health check passed")
			h.put("/hh/v", good)
			h.waitFile("svc.conf", good)
			// The gate's probe ends before the next phase counts probes.
			waitFor(t, good+" accepted by the gate", 10*time.Second, func() bool { return h.logs.count("health check passed") > passed })
			if st := h.status("svc"); st.Outcome != "applied" {
				t.Fatalf("status after %s = %+v, want applied", good, st)
			}
		}
	})
}

// With rollback = false a failing hook leaves the new file in place and
// reports the change as not accepted.
func TestRollbackOffKeepsNewFile(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s server) {
		h := startAgent(t, s.URL(), s.URL(), `
rollback = false
template "a" {
  contents    = "{{ keyOrDefault \"/rbo/v\" \"fine-0\" }}"
  destination = "a.conf"
  on_change   = ["verify"]
}
hook "verify" {
  exec {
    command = ["grep", "-q", "fine", "a.conf"]
    dir     = "."
  }
}
`, nil)
		h.waitFile("a.conf", "fine-0")
		rev := h.put("/rbo/v", "bad")
		// The status is set before the line is logged.
		waitFor(t, "the hook failure", 10*time.Second, func() bool {
			return h.logs.count("rollback is off", "templates=a", "outcome=hook-failed") > 0
		})
		if st := h.status("a"); st.Outcome != "hook-failed" {
			t.Errorf("status = %+v, want hook-failed", st)
		}
		if got := h.read("a.conf"); got != "bad" {
			t.Fatalf("a.conf = %q, want the new content kept with rollback off", got)
		}
		if st := h.status("a"); st.Revision != rev || !strings.Contains(st.Error, "grep") {
			t.Errorf("status = %+v, want revision %d on disk and the hook's command named", st, rev)
		}
		if n := h.logs.count("rollback is off", "templates=a", "outcome=hook-failed"); n != 1 {
			t.Errorf("%d rollback-off lines, want 1", n)
		}
		if n := h.logs.count("rolled back"); n != 0 {
			t.Errorf("%d rolled back lines with rollback off", n)
		}
		h.put("/rbo/v", "fine-1")
		h.waitFile("a.conf", "fine-1")
	})
}

// The hooks of a change set run once every file of the set is written:
// the hook named by the first template sees the new content of all three.
func TestHooksRunAfterWholeChangeSet(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s server) {
		h := startAgent(t, s.URL(), s.URL(), `
template "a" {
  contents    = "{{ keyOrDefault \"/set/v\" \"0\" }}"
  destination = "a"
  on_change   = ["seen"]
}
template "b" {
  contents    = "{{ keyOrDefault \"/set/v\" \"0\" }}"
  destination = "b"
}
template "c" {
  contents    = "{{ keyOrDefault \"/set/v\" \"0\" }}"
  destination = "c"
  on_change   = ["seen"]
}
hook "seen" {
  exec {
    command = ["sh", "-c", "echo \"$(cat a) $(cat b) $(cat c)\" >> seen.log"]
    dir     = "."
  }
}
`, nil)
		want := []string{"0 0 0"}
		waitFor(t, "the first hook run", 10*time.Second, func() bool { return len(h.seen()) == 1 })
		for i := 1; i <= 5; i++ {
			v := itoa(i)
			h.put("/set/v", v)
			want = append(want, v+" "+v+" "+v)
			waitFor(t, "hook run "+v, 10*time.Second, func() bool { return len(h.seen()) == len(want) })
		}
		if got := h.seen(); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("the hook saw\n%s\nwant\n%s\n(each line: a, b and c when it ran)", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})
}

// seen returns the lines of seen.log.
func (h *harness) seen() []string {
	b, err := os.ReadFile(h.path("seen.log"))
	if err != nil || len(b) == 0 {
		return nil
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}
