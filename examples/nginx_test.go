package examples

import (
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/tendkv/tend/internal/testenv"
)

// The upstream template renders every registration form, and nginx -t (via
// the example's check script) accepts what it renders, also with nobody
// registered.
func TestNginxUpstreamTemplate(t *testing.T) {
	t.Parallel()
	ep := startEtcd(t)
	c := newClient(t, ep)
	dir := copyExample(t, "nginx", `"http://127.0.0.1:2379"`, strconv.Quote(ep))
	cfg := loadConfig(t, filepath.Join(dir, "agent.hcl"))
	check := func(t *testing.T) {
		t.Helper()
		testenv.Program(t, "nginx", "nginx-light")
		out, err := exec.Command("sh", filepath.Join(dir, "check-upstream.sh"), cfg.Templates[0].Destination).CombinedOutput()
		if err != nil {
			t.Errorf("nginx -t refuses the render: %v\n%s", err, out)
		}
	}

	empty := string(render(t, c, cfg, "upstream"))
	want := `# Rendered by tend from the registrations under /services/web/; do not edit.
upstream web {
    # No backend is registered: answer 502 until one is.
    server 127.0.0.1:1 down;
}
`
	if empty != want {
		t.Errorf("with nobody registered:\n%s\nwant\n%s", empty, want)
	}
	check(t)

	put(t, c, "/services/web/a", `{"address":"10.0.0.1","port":8080,"tags":["blue"],"meta":{"weight":"3"}}`)
	put(t, c, "/services/web/b", `10.0.0.2:8081`)
	put(t, c, "/services/web/c", `[fd00::3]:8082`)
	put(t, c, "/services/other/x", `10.9.9.9:1`)
	got := string(render(t, c, cfg, "upstream"))
	want = `# Rendered by tend from the registrations under /services/web/; do not edit.
upstream web {
    server 10.0.0.1:8080 weight=3;  # a
    server 10.0.0.2:8081;  # b
    server [fd00::3]:8082;  # c
}
`
	if got != want {
		t.Errorf("rendered:\n%s\nwant\n%s", got, want)
	}
	check(t)
}
