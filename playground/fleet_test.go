package playground

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/tendkv/tend/agent"
	"github.com/tendkv/tend/fleet"
)

// hostStatus is what the agent on host publishes with templates ts.
func hostStatus(t *testing.T, host string, ts ...agent.Status) string {
	t.Helper()
	b, err := json.Marshal(agent.HostStatus{Host: host, PID: 42, StartedAt: time.Now(), UpdatedAt: time.Now(), Templates: ts})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestDashboardFleet follows what agents publish under the fleet prefix:
// the hosts read first, with their templates' revisions and outcomes and
// the failed one first; the same sent first to a page that opens later; an
// entry updated and one deleted; and a rollout of 200 hosts publishing at
// once reaching the page in a few events, at most one per fleetEvery.
func TestDashboardFleet(t *testing.T) {
	p, _ := startTest(t, 1)
	cli := clusterClient(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	put := func(key, value string) int64 {
		t.Helper()
		resp, err := cli.Put(ctx, key, value)
		if err != nil {
			t.Fatalf("put %s: %v", key, err)
		}
		return resp.Header.Revision
	}
	applied := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	longErr := "check: exit status 1\n" + strings.Repeat("nginx: [emerg] unknown directive\n", 40)
	put("/tend/fleet/web1", hostStatus(t, "web1",
		agent.Status{Template: "app.yml", Revision: 5, AppliedAt: applied, Outcome: "applied"},
		agent.Status{Template: "nginx.conf", Revision: 4, Outcome: "unchanged"}))
	rev := put("/tend/fleet/web2", hostStatus(t, "web2", agent.Status{Template: "app.yml", Revision: 3, Outcome: "check-failed", Error: longErr}))
	put("/tend/fleetwood", "not under the prefix")

	_, srv := startDashboard(t, cli, DashboardOptions{Prefix: "/app/", FleetPrefix: "/tend/fleet/", Interval: 200 * time.Millisecond})
	s := openStream(t, srv.URL)
	f := s.waitFleet(t, 10*time.Second, "web1 and web2", func(f Fleet) bool { return f.Hosts == 2 })
	if f.Prefix != "/tend/fleet/" || f.Templates != 3 || f.Failed != 1 || f.More != 0 || f.Revision < rev || f.Error != "" {
		t.Fatalf("fleet %+v, want 2 hosts, 3 templates, 1 failed, at revision %d or later", f, rev)
	}
	if e := f.Rows[0].Error; !strings.HasPrefix(e, "check: exit status 1 nginx: [emerg]") || strings.Contains(e, "\n") || utf8.RuneCountInString(e) > maxFleetError {
		t.Fatalf("the failed row's error is not cut to one line of %d runes: %q", maxFleetError, e)
	}
	want := []FleetRow{
		{Host: "web2", Template: "app.yml", Revision: 3, Outcome: "check-failed", Error: f.Rows[0].Error, Failed: true},
		{Host: "web1", Template: "app.yml", Revision: 5, Outcome: "applied", AppliedAt: applied.UnixMilli()},
		{Host: "web1", Template: "nginx.conf", Revision: 4, Outcome: "unchanged"},
	}
	if !slices.Equal(f.Rows, want) {
		t.Fatalf("rows\n%+v\nwant (the failed first)\n%+v", f.Rows, want)
	}
	// Nothing changes from now on: a page that opens gets the fleet only
	// because a new subscriber is sent it first.
	openStream(t, srv.URL).waitFleet(t, 5*time.Second, "the current fleet, sent to a new page first", func(g Fleet) bool {
		return slices.Equal(g.Rows, want)
	})

	put("/tend/fleet/web1", hostStatus(t, "web1",
		agent.Status{Template: "app.yml", Revision: 9, AppliedAt: applied.Add(time.Minute), Outcome: "applied"},
		agent.Status{Template: "nginx.conf", Revision: 4, Outcome: "unchanged"}))
	if _, err := cli.Delete(ctx, "/tend/fleet/web2"); err != nil {
		t.Fatal(err)
	}
	s.waitFleet(t, 5*time.Second, "web1 at revision 9 and web2 gone", func(f Fleet) bool {
		return f.Hosts == 1 && f.Failed == 0 && len(f.Rows) == 2 && f.Rows[0].Revision == 9 && f.Rows[0].Outcome == "applied"
	})

	// A rollout: 200 agents publish at once.
	for len(s.fleet) > 0 {
		<-s.fleet
	}
	start := time.Now()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < 200; i += 8 {
				host := fmt.Sprintf("node%03d", i)
				if _, err := cli.Put(ctx, "/tend/fleet/"+host, hostStatus(t, host, agent.Status{Template: "app.yml", Revision: 10, Outcome: "applied"})); err != nil {
					t.Errorf("put %s: %v", host, err)
					return
				}
			}
		})
	}
	wg.Wait()
	resp, err := cli.Get(ctx, "/tend/fleet/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || resp.Count != 201 {
		t.Fatalf("after the rollout: %v, %d entries", err, resp.Count)
	}
	events := 0
	last := s.waitFleet(t, 10*time.Second, "all 201 hosts", func(f Fleet) bool {
		events++
		return f.Hosts == 201 && f.Revision >= resp.Header.Revision
	})
	took := time.Since(start)
	if limit := int(took/fleetEvery) + 2; events > limit || events >= 50 {
		t.Fatalf("200 puts over %v reached the page in %d fleet events; want at most one per %v (%d)", took, events, fleetEvery, limit)
	}
	if last.Templates != 202 || last.Failed != 0 || len(last.Rows) != 202 {
		t.Fatalf("after the rollout: %d templates, %d failed, %d rows; want 202 (web1 has two), 0, 202", last.Templates, last.Failed, len(last.Rows))
	}
	t.Logf("200 puts in %v reached the page in %d fleet events", took, events)
}

// TestFleetPanel checks what a page is sent of a large fleet: every host
// and template counted, the rows capped at maxFleetRows, the failed and
// the invalid first wherever their hosts sort.
func TestFleetPanel(t *testing.T) {
	v := fleet.NewView(fleet.Options{Prefix: "/tend/fleet/"})
	rev := int64(0)
	put := func(host, value string) {
		rev++
		v.Apply(&clientv3.Event{Type: mvccpb.PUT, Kv: &mvccpb.KeyValue{Key: []byte("/tend/fleet/" + host), Value: []byte(value), ModRevision: rev}})
	}
	for i := range 600 {
		s := agent.Status{Template: "app.yml", Revision: 7, Outcome: "applied"}
		if i == 550 {
			s.Outcome, s.Error = "render-failed", "template: app.yml:3: no such key"
		}
		host := fmt.Sprintf("h%04d", i)
		put(host, hostStatus(t, host, s))
	}
	put("zz-bad", "not json")
	put("aa-idle", hostStatus(t, "aa-idle"))

	f := fleetPanel(v, "/tend/fleet/", 0, "")
	if f.Hosts != 602 || f.Templates != 600 || f.Failed != 2 || f.Revision != rev {
		t.Fatalf("fleet counts %d hosts, %d templates, %d failed at %d; want 602, 600, 2 at %d", f.Hosts, f.Templates, f.Failed, f.Revision, rev)
	}
	if len(f.Rows) != maxFleetRows || f.More != 602-maxFleetRows {
		t.Fatalf("%d rows and %d more; want %d and %d", len(f.Rows), f.More, maxFleetRows, 602-maxFleetRows)
	}
	if r := f.Rows[0]; r.Host != "h0550" || !r.Failed || r.Outcome != "render-failed" {
		t.Fatalf("first row %+v, want h0550's failed template", r)
	}
	if r := f.Rows[1]; r.Host != "zz-bad" || !r.Failed || r.Outcome != fleet.Invalid || !strings.HasPrefix(r.Error, "not an agent's status") {
		t.Fatalf("second row %+v, want zz-bad's invalid entry", r)
	}
	if r := f.Rows[2]; r.Host != "aa-idle" || r.Template != "" || r.Failed {
		t.Fatalf("third row %+v, want aa-idle, a host with no templates", r)
	}
	if r := f.Rows[3]; r.Host != "h0000" || r.Revision != 7 || r.Failed {
		t.Fatalf("fourth row %+v, want h0000", r)
	}
}

// The fleet panel outlives a watch that ends: the dashboard's member is
// cut off until it cancels its WithRequireLeader watch (no leader for three
// election timeouts), the panel says the read after it fails, a host
// publishes meanwhile through another member, and once the link heals the
// dashboard reads the prefix again and shows it.
func TestDashboardFleetWatchEnds(t *testing.T) {
	_, srv := startTest(t, 3)
	s := openStream(t, srv.URL)
	st := s.waitState(t, 10*time.Second, "one leader", func(st State) bool { return st.Leader != "" && leaders(st) == 1 })
	var follower, leader MemberView
	for _, m := range st.Members {
		switch {
		case m.ID == st.Leader:
			leader = m
		case follower.Name == "" && m.Role == "follower":
			follower = m
		}
	}
	pin := func(url string) *clientv3.Client {
		cli, err := clientv3.New(clientv3.Config{Endpoints: []string{url}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cli.Close() })
		return cli
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	writer := pin(leader.ClientURL)
	if _, err := writer.Put(ctx, "/tend/fleet/web1", hostStatus(t, "web1", agent.Status{Template: "app", Revision: 2, Outcome: "applied"})); err != nil {
		t.Fatal(err)
	}
	_, dash := startDashboard(t, pin(follower.ClientURL), DashboardOptions{Prefix: "/app/", FleetPrefix: "/tend/fleet/", Interval: 200 * time.Millisecond})
	d := openStream(t, dash.URL)
	d.waitFleet(t, 10*time.Second, "web1", func(f Fleet) bool { return f.Hosts == 1 })

	mustPost(t, srv.URL, "isolate", Request{Member: follower.Name})
	// A member without a leader for three election timeouts cancels its
	// streams, as etcd's does; the dashboard then reads again, which
	// fails while the member is cut off, and says so.
	f := d.waitFleet(t, 20*time.Second, "the read after the watch ended failing", func(f Fleet) bool { return f.Error != "" })
	if !strings.Contains(f.Error, "read /tend/fleet/") {
		t.Errorf("fleet error %q, want the failed read named", f.Error)
	}
	if _, err := writer.Put(ctx, "/tend/fleet/web2", hostStatus(t, "web2", agent.Status{Template: "app", Revision: 3, Outcome: "applied"})); err != nil {
		t.Fatal(err)
	}
	mustPost(t, srv.URL, "heal", Request{})
	d.waitFleet(t, 20*time.Second, "web2, published while the dashboard's watch was cancelled", func(f Fleet) bool { return f.Hosts == 2 && f.Error == "" })
}
