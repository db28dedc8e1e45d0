package agent

import (
	"sync/atomic"
	"testing"
	"time"
)

// Once idle after rendering, the agent returns the memory the renders used
// to the OS, once per burst of work.
func TestIdleAfterRenderReleasesMemory(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s server) {
		h := startAgent(t, s.URL(), s.URL(), `
template "a" {
  contents    = "{{ keyOrDefault \"/mem/a\" \"-\" }}"
  destination = "a"
}
`, nil)
		h.waitFile("a", "-")
		waitFor(t, "the first release", 10*time.Second, func() bool { return h.logs.count("returned idle memory") == 1 })
		for _, v := range []string{"1", "2", "3"} {
			h.put("/mem/a", v)
			h.waitFile("a", v)
		}
		waitFor(t, "a release after the puts", 10*time.Second, func() bool { return h.logs.count("returned idle memory") >= 2 })
	})
}

// Options.Idle runs with each release, once per burst of work: tend agent
// drops its binary's pages there.
func TestIdleRunsOptionsIdle(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s server) {
		var calls atomic.Int32
		h := startAgentWith(t, s.URL(), s.URL(), `
template "a" {
  contents    = "{{ keyOrDefault \"/idle/a\" \"-\" }}"
  destination = "a"
}
`, nil, Options{Idle: func() { calls.Add(1) }})
		h.waitFile("a", "-")
		waitFor(t, "Idle after the first render", 10*time.Second, func() bool { return calls.Load() == 1 })
		h.put("/idle/a", "1")
		h.waitFile("a", "1")
		waitFor(t, "Idle after the change", 10*time.Second, func() bool { return calls.Load() == 2 })
		waitFor(t, "as many releases as Idle calls", 10*time.Second, func() bool { return h.logs.count("returned idle memory") == 2 })
		if n := calls.Load(); n != 2 {
			t.Errorf("Idle ran %d times for 2 releases", n)
		}
	})
}
