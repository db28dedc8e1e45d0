package agent

import (
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Splay delays a change set's hooks by a random time below the largest
// splay of the files it wrote, drawn from the agent's random source; a
// template with no splay runs its hooks at once.
func TestSplayDelaysHooks(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s server) {
		// The hook records when it ran, by name.
		var mu sync.Mutex
		ran := map[string][]time.Time{}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			ran[r.URL.Path] = append(ran[r.URL.Path], time.Now())
			mu.Unlock()
		}))
		defer srv.Close()
		hookRuns := func(name string) []time.Time {
			mu.Lock()
			defer mu.Unlock()
			return append([]time.Time(nil), ran["/"+name]...)
		}

		const splay = 2 * time.Second
		seed := func() *rand.Rand { return rand.New(rand.NewPCG(7, 11)) }
		// The same source the agent gets: the delays it will draw.
		draws := seed()
		h := startAgentWith(t, s.URL(), s.URL(), strings.ReplaceAll(`
splay = "2s"
template "fleet" {
  contents    = "{{ keyOrDefault \"/splay/fleet\" \"0\" }}"
  destination = "fleet"
  on_change   = ["fleet"]
}
template "quick" {
  contents    = "{{ keyOrDefault \"/splay/quick\" \"0\" }}"
  destination = "quick"
  splay       = "0s"
  on_change   = ["quick"]
}
hook "fleet" {
  http { url = "$URL/fleet" }
}
hook "quick" {
  http { url = "$URL/quick" }
}
`, "$URL", srv.URL), nil, Options{Rand: seed()})

		// The first render writes both files: one change set, waiting for
		// the larger splay (fleet's 2s), the first draw.
		first := time.Duration(draws.Int64N(int64(splay)))
		waitFor(t, "the first hooks", 10*time.Second, func() bool { return len(hookRuns("fleet")) == 1 && len(hookRuns("quick")) == 1 })
		checkDelay(t, "first render", h.status("fleet").AppliedAt, hookRuns("fleet")[0], first)

		// quick has no splay: its hook runs at once, and draws nothing.
		h.put("/splay/quick", "1")
		waitFor(t, "quick's hook", 10*time.Second, func() bool { return len(hookRuns("quick")) == 2 })
		if n := h.logs.count("splay before hooks"); n != 1 {
			t.Errorf("%d splays, want only the first render's: a template with splay 0 waited", n)
		}

		// fleet waits for the next draw.
		second := time.Duration(draws.Int64N(int64(splay)))
		h.put("/splay/fleet", "1")
		waitFor(t, "fleet's hook", 10*time.Second, func() bool { return len(hookRuns("fleet")) == 2 })
		checkDelay(t, "fleet change", h.status("fleet").AppliedAt, hookRuns("fleet")[1], second)
		if first == second {
			t.Errorf("two draws gave the same delay %s; the test cannot tell them apart", first)
		}
		for _, d := range []time.Duration{first, second} {
			if n := h.logs.count("splay before hooks", "delay="+d.String(), "splay=2s"); n != 1 {
				t.Errorf("the log shows %d splays of %s, want 1:\n%s", n, d, h.logs.String())
			}
		}
	})
}

// checkDelay checks that a hook ran no earlier than delay after its file
// was replaced, and not much later.
func checkDelay(t *testing.T, what string, applied, ran time.Time, delay time.Duration) {
	t.Helper()
	got := ran.Sub(applied)
	t.Logf("%s: hook ran %s after the file was replaced; the drawn splay was %s", what, got.Round(time.Millisecond), delay.Round(time.Millisecond))
	if got < delay {
		t.Errorf("%s: hook ran %s after the file was replaced, before the drawn splay of %s", what, got, delay)
	}
	if got > delay+2*time.Second {
		t.Errorf("%s: hook ran %s after the file was replaced, long after the drawn splay of %s", what, got, delay)
	}
}

// A process restarted because its environment changed waits for the
// configuration's splay first, drawn from the agent's random source.
func TestSplayDelaysEnvironmentRestart(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s server) {
		const splay = 2 * time.Second
		seed := func() *rand.Rand { return rand.New(rand.NewPCG(5, 9)) }
		h := startAgentWith(t, s.URL(), s.URL(), `
splay = "2s"
process "app" {
  command      = ["sh", "-c", "date +%s%N >> starts; echo \"$MODE\" > mode.tmp && mv mode.tmp mode; exec sleep 600"]
  dir          = "."
  env_prefix   = "/splay/env/"
  kill_timeout = "2s"
}
`, nil, Options{Rand: seed()})
		h.waitFile("mode", "\n")
		want := time.Duration(seed().Int64N(int64(splay)))
		h.put("/splay/env/mode", "green")
		put := time.Now()
		h.waitFile("mode", "green\n")
		starts := strings.Fields(h.read("starts"))
		ns, err := strconv.ParseInt(starts[len(starts)-1], 10, 64)
		if err != nil {
			t.Fatalf("starts: %v", err)
		}
		got := time.Unix(0, ns).Sub(put)
		t.Logf("restarted %s after the put; the drawn splay was %s", got.Round(time.Millisecond), want.Round(time.Millisecond))
		if got < want {
			t.Errorf("restarted %s after the put, before the drawn splay of %s", got, want)
		}
		if got > want+3*time.Second {
			t.Errorf("restarted %s after the put, long after the drawn splay of %s", got, want)
		}
		if n := h.logs.count("splay before restart", "delay="+want.String()); n != 1 {
			t.Errorf("%d splays of %s before the restart in the log, want 1:\n%s", n, want, h.logs.String())
		}
	})
}
