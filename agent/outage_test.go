package agent

import (
	"context"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// Killing the store mid-stream never blanks or truncates the file: renders
// during the outage fail and keep the last good file, and the agent picks
// up again when the store is back.
func TestStoreOutageKeepsLastGoodFile(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s server) {
		h := startAgent(t, s.URL(), s.URL(), `
template "out" {
  source      = "out.tmpl"
  destination = "out.conf"
}
`, map[string]string{"out.tmpl": "v={{ key \"/out/v\" }}\n"})
		h.put("/out/v", "0")
		h.waitFile("out.conf", "v=0\n")

		good := regexp.MustCompile(`^(v|w)=\d+\n$`)
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
				b, err := os.ReadFile(h.path("out.conf"))
				if err != nil || !good.Match(b) {
					bad = append(bad, string(b)+" "+errString(err))
				}
			}
		}()
		for i := 1; i <= 20; i++ {
			h.put("/out/v", itoa(i))
		}
		t0 := time.Now()
		s.Stop()
		t.Logf("store stopped in %s", time.Since(t0))
		// An edit of the template forces a render while the store is down;
		// it reads a key the agent holds no copy of, so the render fails.
		if err := os.WriteFile(h.path("out.tmpl"), []byte("w={{ key \"/out/v\" }}{{ keyOrDefault \"/elsewhere\" \"\" }}\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "a render to fail during the outage", 15*time.Second, func() bool {
			return h.logs.count("render failed", "template=out") > 0
		})
		t.Logf("render failed %s after the stop began", time.Since(t0))
		if got := h.read("out.conf"); !strings.HasPrefix(got, "v=") {
			t.Errorf("out.conf = %q during the outage, want the last good v= file", got)
		}
		t0 = time.Now()
		s.Start(t)
		t.Logf("store restarted in %s", time.Since(t0))
		h.waitFile("out.conf", "w=20\n")
		t.Logf("agent caught up %s after the restart began", time.Since(t0))
		h.put("/out/v", "21")
		h.waitFile("out.conf", "w=21\n")
		close(stop)
		wg.Wait()
		if len(bad) > 0 {
			t.Fatalf("%d reads saw a blank, partial or missing file, e.g. %q", len(bad), bad[0])
		}
	})
}

// When the agent is cut off while the store compacts the history its
// watch would resume from, it re-reads everything at the current revision.
func TestCompactionDuringDisconnect(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s server) {
		p := startProxy(t, s.URL())
		h := startAgent(t, p.URL(), s.URL(), `
template "list" {
  contents    = "{{ range ls \"/cmp/\" }}{{ .Key }}={{ .Value }};{{ end }}"
  destination = "list"
}
`, nil)
		h.put("/cmp/a", "1")
		h.put("/cmp/b", "1")
		h.waitFile("list", "/cmp/a=1;/cmp/b=1;")
		p.setDown(true)
		h.put("/cmp/b", "2")
		if _, err := h.cli.Delete(context.Background(), "/cmp/a"); err != nil {
			t.Fatal(err)
		}
		h.put("/cmp/c", "3")
		rev := h.put("/unrelated", "x")
		if _, err := h.cli.Compact(context.Background(), rev); err != nil {
			t.Fatalf("compact: %v", err)
		}
		p.setDown(false)
		h.waitFile("list", "/cmp/b=2;/cmp/c=3;")
		if h.logs.count("watched history compacted") == 0 {
			t.Errorf("the agent caught up without seeing the compaction; the test did not test it")
		}
		h.put("/cmp/d", "4")
		h.waitFile("list", "/cmp/b=2;/cmp/c=3;/cmp/d=4;")
	})
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func itoa(i int) string {
	const digits = "0123456789"
	if i < 10 {
		return digits[i : i+1]
	}
	return itoa(i/10) + digits[i%10:i%10+1]
}

// Changes made while the agent is cut off from the store (and the history
// is kept) reach the file when it is back: the watch resumes after the
// last revision it delivered, with no full re-read.
func TestDisconnectCatchesUpFromTheWatch(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s server) {
		p := startProxy(t, s.URL())
		h := startAgent(t, p.URL(), s.URL(), `
template "list" {
  contents    = "{{ range ls \"/dc/\" }}{{ .Rel }}={{ .Value }};{{ end }}"
  destination = "list"
}
`, nil)
		h.put("/dc/a", "1")
		h.put("/dc/b", "1")
		h.waitFile("list", "a=1;b=1;")
		reads := h.logs.count("read store revision")
		conns := p.connections()
		p.setDown(true)
		h.put("/dc/b", "2")
		if _, err := h.cli.Delete(context.Background(), "/dc/a"); err != nil {
			t.Fatal(err)
		}
		rev := h.put("/dc/c", "3")
		if got := h.read("list"); got != "a=1;b=1;" {
			t.Fatalf("list = %q while the agent is cut off", got)
		}
		p.setDown(false)
		h.waitFile("list", "b=2;c=3;")
		waitFor(t, "the status at the last revision", 10*time.Second, func() bool { return h.status("list").Revision == rev })
		if p.connections() == conns {
			t.Fatalf("the agent caught up without a new connection; it was never cut off")
		}
		if n := h.logs.count("read store revision"); n != reads {
			t.Errorf("the agent re-read the store's revision %d times after the disconnect; the watch should have resumed", n-reads)
		}
		if n := h.logs.count("compacted"); n != 0 {
			t.Errorf("%d compaction lines without a compaction", n)
		}
		h.put("/dc/d", "4")
		h.waitFile("list", "b=2;c=3;d=4;")
	})
}
