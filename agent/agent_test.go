package agent

import (
	"context"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A put reaches the file; identical bytes do not rewrite it; a delete
// with a default makes the default appear.
func TestRenderFollowsWrites(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s server) {
		h := startAgent(t, s.URL(), s.URL(), `
template "app" {
  contents    = "port={{ keyOrDefault \"/app/port\" \"none\" }}\nname={{ keyOrDefault \"/app/name\" \"x\" }}\n"
  destination = "app.conf"
  perms       = "0640"
}
`, nil)
		h.waitFile("app.conf", "port=none\nname=x\n")
		h.put("/app/port", "8080")
		h.waitFile("app.conf", "port=8080\nname=x\n")
		info, err := os.Stat(h.path("app.conf"))
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm() != 0o640 {
			t.Errorf("mode = %v, want 0640", info.Mode().Perm())
		}
		ino := info.Sys().(*syscall.Stat_t).Ino

		// A key the template does not read changes nothing; a value that
		// renders the same bytes does not replace the file.
		h.put("/other", "1")
		rev := h.put("/app/port", "8080")
		waitFor(t, "render at the last revision", 10*time.Second, func() bool {
			st := h.status("app")
			return st.Outcome == "unchanged" && st.Revision >= rev
		})
		info, _ = os.Stat(h.path("app.conf"))
		if got := info.Sys().(*syscall.Stat_t).Ino; got != ino {
			t.Errorf("file replaced although its bytes did not change (inode %d → %d)", ino, got)
		}
		if _, err := h.cli.Delete(context.Background(), "/app/port"); err != nil {
			t.Fatal(err)
		}
		h.waitFile("app.conf", "port=none\nname=x\n")
		leftovers, _ := os.ReadDir(h.dir)
		for _, e := range leftovers {
			if strings.Contains(e.Name(), ".tend-") {
				t.Errorf("staged file left behind: %s", e.Name())
			}
		}
	})
}
