package main

import (
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tendkv/tend/internal/freeport"
)

// untilOK runs tend against endpoint until it succeeds (membership changes
// wait, as etcd's do, for a learner to catch up or a quorum to be
// connected for a while) and returns its stdout.
func untilOK(t *testing.T, what, endpoint string, args ...string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := tendAt(t, endpoint, nil, args...)
		if r.err == nil {
			return string(r.stdout)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: tend --endpoints %s %q: %v\nstderr: %s", what, endpoint, args, r.err, r.stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// memberRow returns the row of `tend member list` naming name, split at
// its commas.
func memberRow(t *testing.T, list, name string) []string {
	t.Helper()
	for _, l := range strings.Split(strings.TrimSpace(list), "\n") {
		if f := strings.Split(l, ", "); len(f) == 6 && f[2] == name {
			return f
		}
	}
	t.Fatalf("member list has no row for %s:\n%s", name, list)
	return nil
}

// TestMemberCommands grows a one-member cluster of `tend server` processes
// with the member commands as an operator would: member add --learner,
// start the learner with the settings add printed, member promote, member
// update to a new peer URL and a restart there, member remove — after
// which the removed member stops and says why.
func TestMemberCommands(t *testing.T) {
	ps, _ := startMemberProcs(t, "mc", 1)
	ep := ps[0].clientURL
	untilOK(t, "first member ready", ep, "endpoint", "health")

	p2 := &memberProc{
		name:      "mc2",
		clientURL: fmt.Sprintf("http://127.0.0.1:%d", freeport.Port(t)),
		peerURL:   fmt.Sprintf("http://127.0.0.1:%d", freeport.Port(t)),
		dataDir:   filepath.Join(t.TempDir(), "mc2"),
	}
	out := okAt(t, ep, "member", "add", p2.name, "--learner", "--peer-urls="+p2.peerURL)
	added := regexp.MustCompile(`Member +([0-9a-f]+) added as learner to cluster +[0-9a-f]+\n`).FindStringSubmatch(out)
	initial := regexp.MustCompile(`ETCD_INITIAL_CLUSTER="([^"]+)"`).FindStringSubmatch(out)
	if added == nil || initial == nil {
		t.Fatalf("member add --learner printed:\n%s", out)
	}
	id := added[1]
	// The members come in member-ID order, as etcdctl prints them; the IDs
	// depend on the ports, so compare them as a set.
	if got, want := sortedList(initial[1]), sortedList("mc1="+ps[0].peerURL+",mc2="+p2.peerURL); got != want {
		t.Fatalf("member add printed ETCD_INITIAL_CLUSTER=%q, want the members %q", initial[1], want)
	}
	if row := memberRow(t, okAt(t, ep, "member", "list"), ""); row[0] != id || row[1] != "unstarted" || row[3] != p2.peerURL || row[5] != "true" {
		t.Fatalf("added learner before it starts: %q", row)
	}

	p2.start(t, initial[1], "existing")
	// Once started, the learner publishes its name and client URL.
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(okAt(t, ep, "member", "list"), ", started, mc2, ") {
		if time.Now().After(deadline) {
			t.Fatalf("learner not listed as started within 30s\n%s", p2.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if row := memberRow(t, okAt(t, ep, "member", "list"), "mc2"); row[0] != id || row[4] != p2.clientURL || row[5] != "true" {
		t.Fatalf("started learner: %q", row)
	}
	// A learner takes no writes; once it has caught up it can be promoted.
	if r := tendAt(t, p2.clientURL, nil, "set", "/mc/k", "v"); r.err == nil {
		t.Fatal("a learner took a write")
	}
	out = untilOK(t, "promote the learner", ep, "member", "promote", id)
	if !regexp.MustCompile(`^Member +` + id + ` promoted in cluster +[0-9a-f]+\n$`).MatchString(out) {
		t.Fatalf("member promote printed %q", out)
	}
	if row := memberRow(t, okAt(t, ep, "member", "list"), "mc2"); row[5] != "false" {
		t.Fatalf("promoted member: %q", row)
	}
	okAt(t, p2.clientURL, "set", "/mc/k", "through mc2")
	want(t, "get through mc1", okAt(t, ep, "get", "/mc/k"), "through mc2")

	// Move mc2 to a new peer URL, then restart it listening there.
	newPeer := fmt.Sprintf("http://127.0.0.1:%d", freeport.Port(t))
	out = okAt(t, ep, "member", "update", id, "--peer-urls="+newPeer)
	if !regexp.MustCompile(`^Member +` + id + ` updated in cluster +[0-9a-f]+\n$`).MatchString(out) {
		t.Fatalf("member update printed %q", out)
	}
	if row := memberRow(t, okAt(t, ep, "member", "list"), "mc2"); row[3] != newPeer {
		t.Fatalf("updated member: %q, want peer URL %s", row, newPeer)
	}
	p2.kill9(t)
	p2.peerURL = newPeer
	p2.start(t, initial[1], "existing")
	// With two voters, a write through mc1 commits only once mc2 answers
	// on its new URL.
	untilOK(t, "write after the move", ep, "set", "/mc/moved", "yes")
	want(t, "get through the moved member", untilOK(t, "read through the moved member", p2.clientURL, "get", "/mc/moved"), "yes")

	out = untilOK(t, "remove mc2", ep, "member", "remove", id)
	if !regexp.MustCompile(`^Member +` + id + ` removed from cluster +[0-9a-f]+\n$`).MatchString(out) {
		t.Fatalf("member remove printed %q", out)
	}
	select {
	case err := <-p2.done:
		p2.done <- err
		if err == nil || !strings.Contains(p2.stderr.String(), "permanently removed from the cluster") {
			t.Fatalf("removed member exited with %v, want an error saying it was removed:\n%s", err, p2.stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("removed member still running 30s after member remove\n%s", p2.stderr)
	}
	list := okAt(t, ep, "member", "list")
	if strings.Count(strings.TrimSpace(list), "\n") != 0 || !strings.Contains(list, ", mc1, ") {
		t.Fatalf("member list after remove:\n%s", list)
	}
	want(t, "the remaining member still serves", okAt(t, ep, "get", "/mc/moved"), "yes")
}

// sortedList sorts the items of a comma-separated list.
func sortedList(s string) string {
	items := strings.Split(s, ",")
	slices.Sort(items)
	return strings.Join(items, ",")
}
