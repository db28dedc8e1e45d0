package playground

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// TestDashboard points a read-only dashboard at a running cluster (a
// playground's members, through clientv3 only) and follows what happens
// to it: members, leader, keys under the prefix, the watch feed, a member
// going down; its page refuses every action.
func TestDashboard(t *testing.T) {
	p, psrv := startTest(t, 3)
	cli := clusterClient(t, p)
	mustPost(t, psrv.URL, "put", Request{Member: "m1", Key: "/app/before", Value: "1"})
	mustPost(t, psrv.URL, "put", Request{Member: "m1", Key: "/other", Value: "not shown"})

	d, srv := startDashboard(t, cli, DashboardOptions{Prefix: "/app/", Interval: 200 * time.Millisecond})

	s := openStream(t, srv.URL)
	st := s.waitState(t, 10*time.Second, "three members and a leader", func(st State) bool {
		return st.Mode == "dashboard" && len(st.Members) == 3 && st.Leader != "" && leaders(st) == 1
	})
	for _, m := range st.Members {
		if m.Term != st.Term || m.DBSize == 0 || m.Version == "" || m.ClientURL == "" {
			t.Fatalf("member drawn as %+v", m)
		}
	}
	// The keyspace is read beside the member polls: wait for its first load.
	ks := d.Hub().Keyspace()
	for deadline := time.Now().Add(10 * time.Second); ks.Revision == 0 && time.Now().Before(deadline); ks = d.Hub().Keyspace() {
		time.Sleep(10 * time.Millisecond)
	}
	if len(ks.Keys) != 1 || ks.Keys[0].Key != "/app/before" {
		t.Fatalf("keyspace under /app/ = %+v", ks)
	}
	mustPost(t, psrv.URL, "put", Request{Member: "m2", Key: "/app/new", Value: "2"})
	if ev := s.waitWatch(t, 5*time.Second, "/app/new"); ev.Value != "2" {
		t.Fatalf("watch event %+v", ev)
	}

	follower := ""
	for _, m := range st.Members {
		if m.Role == "follower" {
			follower = m.Name
		}
	}
	mustPost(t, psrv.URL, "kill", Request{Member: follower})
	s.waitState(t, 10*time.Second, follower+" down", func(st State) bool {
		m := member(st, follower)
		return m.Role == RoleDown && m.Term > 0 && st.Leader != ""
	})
	s.waitEntry(t, 5*time.Second, follower+" not answering", func(e Entry) bool {
		return e.Kind == KindDown && e.Member == follower && strings.Contains(e.Text, "does not answer")
	})

	if res, code := post(t, srv.URL, "put", Request{Member: "m1", Key: "/app/x", Value: "y"}); code != http.StatusForbidden || res.OK {
		t.Fatalf("put through the dashboard: %d %+v", code, res)
	}
	if f := d.Hub().Fleet(); f.Prefix != "" {
		t.Fatalf("a dashboard without a fleet prefix published a fleet: %+v", f)
	}
}

// clusterClient is a client of p's members, closed when the test ends.
func clusterClient(t *testing.T, p *Playground) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: p.Endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// startDashboard runs a Dashboard of what cli reaches and serves its page,
// both until the test ends.
func startDashboard(t *testing.T, cli *clientv3.Client, o DashboardOptions) (*Dashboard, *httptest.Server) {
	t.Helper()
	d := NewDashboard(cli, o)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); d.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	srv := httptest.NewServer(Handler(d.Hub(), nil))
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	return d, srv
}
