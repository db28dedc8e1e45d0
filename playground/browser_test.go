package playground

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/tendkv/tend/agent"
	"github.com/tendkv/tend/internal/testenv"
)

// ScreenshotEnv names a directory the browser test saves the README's
// screenshot in, as playground.png (TEND_SCREENSHOTS=$PWD/docs); without
// it, and for the other screenshots, the test's artifact directory.
const ScreenshotEnv = "TEND_SCREENSHOTS"

// browser drives one headless Chromium tab on the page.
type browser struct {
	t   *testing.T
	ctx context.Context
	dir string // where the README's screenshot goes

	mu         sync.Mutex
	exceptions []string // guarded by mu: uncaught errors in the page
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	path := testenv.Program(t, "chromium", "chromium")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // root in CI containers
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1440, 960),
	)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(acancel)
	bctx, bcancel := chromedp.NewContext(actx)
	t.Cleanup(bcancel)
	b := &browser{t: t, ctx: bctx, dir: os.Getenv(ScreenshotEnv)}
	if b.dir == "" {
		b.dir = t.ArtifactDir()
	}
	if err := chromedp.Do(bctx); err != nil { // starts the browser
		t.Fatalf("start %s: %v", path, err)
	}
	console := chromedp.Console(bctx)
	go func() {
		for m, err := range console {
			if err != nil {
				return
			}
			if m.IsException() || m.Type == "error" {
				b.mu.Lock()
				b.exceptions = append(b.exceptions, m.String())
				b.mu.Unlock()
			}
		}
	}()
	return b
}

// do runs actions, failing the test (with a screenshot) on error.
func (b *browser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.fail("%s: %v", what, err)
	}
}

// eval returns the value of a JavaScript expression.
func eval[T any](b *browser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.fail("evaluate %s: %v", expr, err)
	}
	return v
}

// wait waits until a JavaScript expression is true, for at most d.
func (b *browser) wait(d time.Duration, what, expr string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, d+5*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr,
		chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(d)))
	if err != nil {
		b.fail("wait %v for %s (%s): %v", d, what, expr, err)
	}
}

// shot saves a screenshot of the page as dir/name.
func (b *browser) shot(dir, name string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	// A toast saying what the last click did would hide part of the page.
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`document.querySelector('#toast').hidden = true`)); err != nil {
		b.t.Fatalf("hide the toast: %v", err)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatalf("save screenshot: %v", err)
	}
	b.t.Logf("screenshot %s", path)
	return path
}

func (b *browser) fail(format string, args ...any) {
	b.t.Helper()
	msg := fmt.Sprintf(format, args...)
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	if s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("#summary").innerText + " | " + [...document.querySelectorAll("#members .member")].map(g => g.dataset.name + "=" + g.dataset.role).join(" ")`)); err == nil {
		msg += "\npage: " + s
	}
	if png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot()); err == nil {
		path := filepath.Join(b.t.ArtifactDir(), "failure.png")
		if os.WriteFile(path, png, 0o644) == nil {
			msg += "\nscreenshot: " + path
		}
	}
	b.t.Fatal(msg)
}

func (b *browser) errors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.exceptions...)
}

func click(css string) chromedp.Action[chromedp.Void] {
	return chromedp.Click(chromedp.CSS(css), chromedp.NodeVisible)
}

// press selects member (when not empty) and presses the button at css once
// the page takes actions again and the button is enabled, then waits for
// the page's answer: a click while the last action is still under way, or
// on a button not yet enabled for the member, would do nothing.
func (b *browser) press(what, member, css string) {
	b.t.Helper()
	if member != "" {
		b.do("select "+member+" to "+what, click(fmt.Sprintf(`#chips .chip[data-name=%q]`, member)))
		b.wait(5*time.Second, member+" selected", fmt.Sprintf(`document.querySelector('#chips .chip[data-name=%q]').classList.contains('on')`, member))
	}
	b.wait(15*time.Second, "the page ready to "+what, fmt.Sprintf(`!document.body.dataset.busy && !document.querySelector(%q).disabled`, css))
	b.do(what, click(css))
	b.wait(30*time.Second, "the answer to "+what, `!document.body.dataset.busy`)
}

// recordDrawn makes the page note, in window.drawn, the kind of every
// message drawn flying from now on, and "lost" for every one crossed out:
// they fly for a second at most, too briefly to be sure to catch by
// polling.
func (b *browser) recordDrawn() {
	b.t.Helper()
	b.do("record the messages drawn", chromedp.Evaluate[chromedp.Void](`(() => {
		window.drawn = new Set();
		new MutationObserver((records) => {
			for (const r of records) for (const n of r.addedNodes) {
				if (n.classList && n.classList.contains('msg')) drawn.add(n.dataset.kind);
				if (n.classList && n.classList.contains('msg-x')) drawn.add('lost');
			}
		}).observe(document.querySelector('#dots'), {childList: true, subtree: true});
	})()`))
}

// roleOf is a JavaScript expression: the role the ring draws a member with.
func roleOf(name string) string {
	return fmt.Sprintf(`(document.querySelector('#members .member[data-name=%q]') || {dataset: {}}).dataset.role`, name)
}

// TestBrowser drives the page in headless Chromium as a person would: five
// members and one leader, heartbeats flying; a key put through m1 and read
// through m4; the leader killed with a click, the election's votes drawn,
// and a new leader within seconds; a follower
// isolated and the network healed; a learner added and promoted; the key
// deleted; screenshots along the way.
func TestBrowser(t *testing.T) {
	b := newBrowser(t)
	_, srv := startTest(t, 5)

	b.do("open the page", chromedp.EmulateViewport(1440, 1000), chromedp.Navigate(srv.URL))
	b.recordDrawn()
	b.wait(15*time.Second, "five members and exactly one leader",
		`document.querySelectorAll('#members .member').length === 5 && document.querySelectorAll('#members .member[data-role=leader]').length === 1 && document.body.dataset.leader !== ''`)
	b.wait(5*time.Second, "heartbeats and their answers drawn flying", `drawn.has('heartbeat') && drawn.has('heartbeat-resp')`)
	if eval[bool](b, `getComputedStyle(document.querySelector('#fleet-panel')).display !== 'none'`) {
		b.fail("the playground draws the dashboard's fleet panel")
	}

	const key, value = "/playground/greeting", "hello from m1"
	b.do("put through m1",
		click(`#chips .chip[data-name="m1"]`),
		chromedp.SetValue(chromedp.CSS("#kv-key"), key),
		chromedp.SetValue(chromedp.CSS("#kv-value"), value),
		click("#btn-put"))
	b.wait(10*time.Second, "the put's answer", `document.querySelector('#kv-result').dataset.ok === 'true' && document.querySelector('#kv-result').dataset.op === 'put'`)
	if got := eval[string](b, `document.querySelector('#kv-result').innerText`); !strings.Contains(got, "via m1") || !strings.Contains(got, "revision") || !strings.Contains(got, "latency") {
		b.fail("put result says %q, want the member, revision and latency", got)
	}
	b.do("get through m4", click(`#chips .chip[data-name="m4"]`), click("#btn-get"))
	b.wait(10*time.Second, "the get's answer through m4",
		fmt.Sprintf(`(r => r.dataset.ok === 'true' && r.dataset.op === 'get' && r.dataset.value === %q && r.innerText.includes('via m4'))(document.querySelector('#kv-result'))`, value))
	b.wait(5*time.Second, "the key in the keyspace and the watch feed",
		fmt.Sprintf(`!!document.querySelector('#keys tr[data-key=%q]') && document.querySelector('#feed').innerText.includes(%q)`, key, key))

	old := eval[string](b, `document.body.dataset.leader`)
	start := time.Now()
	b.do("select the leader "+old, click(`#members .member[data-role=leader] .body`))
	b.do("forget the messages drawn so far", chromedp.Evaluate[chromedp.Void](`drawn.clear()`))
	b.press("kill the leader "+old, "", "#btn-kill")
	b.wait(10*time.Second, "a new leader",
		fmt.Sprintf(`document.body.dataset.leader !== '' && document.body.dataset.leader !== %q && %s === 'down'`, old, roleOf(old)))
	b.wait(5*time.Second, "the election's pre-votes and votes drawn, those to the killed leader crossed out",
		`drawn.has('prevote') && drawn.has('prevote-resp') && drawn.has('vote') && drawn.has('vote-resp') && drawn.has('lost')`)
	leader := eval[string](b, `document.body.dataset.leader`)
	t.Logf("killed %s with a click; the page shows %s leading %v later", old, leader, time.Since(start).Round(time.Millisecond))
	b.wait(5*time.Second, "the election in the timeline",
		fmt.Sprintf(`[...document.querySelectorAll('#timeline li[data-kind=elected]')].some(li => li.innerText.includes(%q))`, leader+" is the leader"))

	// Cut a follower off and let it campaign, as the README's screenshot
	// shows; then heal and bring the killed member back.
	var follower string
	for _, n := range []string{"m1", "m2", "m3", "m4", "m5"} {
		if n != old && n != leader {
			follower = n
			break
		}
	}
	b.press("isolate "+follower, follower, "#btn-isolate")
	b.wait(10*time.Second, follower+" cut off and asking for pre-votes",
		fmt.Sprintf(`%s === 'pre-candidate' && document.querySelectorAll('#fences .fence').length === 1`, roleOf(follower)))
	b.do("write during the partition", click(fmt.Sprintf(`#chips .chip[data-name=%q]`, leader)),
		chromedp.SetValue(chromedp.CSS("#kv-key"), "/playground/partition"),
		chromedp.SetValue(chromedp.CSS("#kv-value"), follower+" misses this"),
		click("#btn-put"))
	b.wait(10*time.Second, "the write through the majority", `document.querySelector('#kv-result').dataset.ok === 'true'`)
	b.shot(b.dir, "playground.png")

	b.press("heal", "", "#btn-heal")
	b.press("restart "+old, old, "#btn-restart")
	b.wait(15*time.Second, "every member up, one leader, no partition",
		`document.querySelectorAll('#members .member[data-role=follower]').length === 4 && document.querySelectorAll('#members .member[data-role=leader]').length === 1 && document.querySelectorAll('#fences .fence').length === 0`)
	b.shot(t.ArtifactDir(), "healed.png")

	// A learner joins drawn as one, without an election timer, and
	// Promote makes it a follower.
	b.press("add a learner", "", "#btn-add-learner")
	b.wait(20*time.Second, "m6 drawn as a learner",
		`document.querySelectorAll('#members .member').length === 6 && `+roleOf("m6")+` === 'learner' && document.querySelector('#members .member[data-name=m6] .timer').style.display === 'none'`)
	b.shot(t.ArtifactDir(), "learner.png")
	b.press("promote m6", "m6", "#btn-promote")
	b.wait(15*time.Second, "m6 a follower", roleOf("m6")+` === 'follower'`)

	b.do("delete the greeting through m2", click(`#chips .chip[data-name="m2"]`),
		chromedp.SetValue(chromedp.CSS("#kv-key"), key), click("#btn-delete"))
	b.wait(10*time.Second, "the delete's answer",
		`(r => r.dataset.ok === 'true' && r.dataset.op === 'delete' && r.dataset.deleted === '1' && r.innerText.includes('via m2'))(document.querySelector('#kv-result'))`)
	b.wait(5*time.Second, "the key gone from the keyspace and its delete in the watch feed",
		fmt.Sprintf(`!document.querySelector('#keys tr[data-key=%q]') && !!document.querySelector('#keys tr[data-key="/playground/partition"]') && (li => li.querySelector('.t').innerText === 'DELETE' && li.innerText.includes(%q))(document.querySelector('#feed li'))`, key, key))
	b.shot(t.ArtifactDir(), "deleted.png")

	if errs := b.errors(); len(errs) > 0 {
		t.Fatalf("the page logged errors:\n%s", strings.Join(errs, "\n"))
	}
}

// TestBrowserFleet opens a dashboard with a fleet prefix: the fleet panel
// lists each host's templates with the failed one marked, and says how to
// get entries once none is left.
func TestBrowserFleet(t *testing.T) {
	b := newBrowser(t)
	p, _ := startTest(t, 1)
	cli := clusterClient(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for key, value := range map[string]string{
		"/tend/fleet/web1": hostStatus(t, "web1", agent.Status{Template: "app.yml", Revision: 5, AppliedAt: time.Now(), Outcome: "applied"}),
		"/tend/fleet/web2": hostStatus(t, "web2", agent.Status{Template: "app.yml", Revision: 3, Outcome: "hook-failed", Error: "hook reload: exit status 1"}),
	} {
		if _, err := cli.Put(ctx, key, value); err != nil {
			t.Fatal(err)
		}
	}
	_, srv := startDashboard(t, cli, DashboardOptions{Prefix: "/", FleetPrefix: "/tend/fleet/"})

	b.do("open the dashboard", chromedp.EmulateViewport(1440, 1000), chromedp.Navigate(srv.URL))
	b.wait(15*time.Second, "the fleet panel with web1 and web2",
		`!document.querySelector('#fleet-panel').hidden && document.querySelectorAll('#fleet tbody tr[data-host]').length === 2`)
	if got := eval[string](b, `[...document.querySelectorAll('#fleet tbody tr[data-host]')].map(tr => tr.dataset.host + ':' + tr.dataset.failed + ':' + tr.classList.contains('failed')).join(' ')`); got != "web2:true:true web1:false:false" {
		b.fail("fleet rows (host:failed:marked) %q, want web2 failed and marked first, then web1", got)
	}
	if got := eval[string](b, `document.querySelector('#fleet-meta').innerText`); !strings.HasPrefix(got, "2 hosts, 2 templates, 1 failed") {
		b.fail("fleet count line %q", got)
	}
	if got := eval[string](b, `document.querySelector('#fleet tr[data-host=web2]').innerText`); !strings.Contains(got, "hook-failed") || !strings.Contains(got, "exit status 1") {
		b.fail("web2's row says %q, want its outcome and error", got)
	}
	b.shot(t.ArtifactDir(), "fleet.png")

	if _, err := cli.Delete(ctx, "/tend/fleet/", clientv3.WithPrefix()); err != nil {
		t.Fatal(err)
	}
	b.wait(10*time.Second, "the empty fleet saying how to get entries",
		`document.querySelector('#fleet tbody').innerText.includes('no agent publishes under /tend/fleet/') && document.querySelector('#fleet tbody').innerText.includes('status {} block')`)
	if errs := b.errors(); len(errs) > 0 {
		t.Fatalf("the page logged errors:\n%s", strings.Join(errs, "\n"))
	}
}
