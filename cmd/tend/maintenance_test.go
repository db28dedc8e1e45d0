package main

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/tendkv/tend/cluster"
	"github.com/tendkv/tend/cluster/clustertest"
	"github.com/tendkv/tend/internal/testenv"
)

// TestMaintenanceCommands runs tend's defrag, alarm and version against a
// fresh server and requires what the real etcdctl prints for the same
// state: a raised NOSPACE alarm refuses writes, alarm list shows it, alarm
// disarm clears it and writes go through again.
func TestMaintenanceCommands(t *testing.T) {
	t.Parallel()
	_, etcdctl := testenv.EtcdBinaries(t)
	ep, stop, err := startFresh(t, filepath.Join(t.TempDir(), "server"))
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	ctl := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(etcdctl, append([]string{"--endpoints", ep}, args...)...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("etcdctl %v: %v\n%s", args, err, errb.String())
		}
		return out.String()
	}
	run := func(args ...string) string {
		t.Helper()
		r := tendAt(t, ep, nil, args...)
		if r.err != nil {
			t.Fatalf("tend %v: %v\n%s", args, r.err, r.stderr)
		}
		return string(r.stdout)
	}
	took := regexp.MustCompile(`took \S+`)

	for i := range 50 {
		run("put", "/defrag/k"+strings.Repeat("x", i), strings.Repeat("v", 1000))
	}
	run("del", "--prefix", "/defrag/")
	want(t, "defrag", took.ReplaceAllString(run("defrag"), "took T"), took.ReplaceAllString(ctl("defrag"), "took T"))
	want(t, "defrag --cluster", took.ReplaceAllString(run("defrag", "--cluster"), "took T"), "Finished defragmenting etcd member["+clusterURL(t, ep)+"]. took T\n")

	want(t, "alarm list with no alarm", run("alarm", "list"), "")
	raiseNoSpace(t, ep)
	if r := tendAt(t, ep, nil, "put", "/after-alarm", "v"); r.err == nil || !strings.Contains(string(r.stderr), "database space exceeded") {
		t.Fatalf("a put with NOSPACE raised: err %v, stderr %q; want database space exceeded", r.err, r.stderr)
	}
	list := run("alarm", "list")
	if !regexp.MustCompile(`^memberID:\d+  alarm:NOSPACE\n$`).MatchString(list) {
		t.Errorf("alarm list = %q", list)
	}
	want(t, "alarm list against etcdctl's", list, ctl("alarm", "list"))
	want(t, "alarm disarm prints what it disarmed", run("alarm", "disarm"), list)
	want(t, "alarm list after disarm", run("alarm", "list"), "")
	run("put", "/after-alarm", "v")

	v := run("version")
	if !regexp.MustCompile(`^tend version: \S+\nAPI version: 3\.7\n$`).MatchString(v) {
		t.Errorf("version = %q", v)
	}

	// Bad input names the argument and the fix.
	if r := tendAt(t, ep, nil, "move-leader", "not-hex"); r.err == nil || !strings.Contains(string(r.stderr), `MEMBER_ID "not-hex" is not a member ID in hex`) {
		t.Errorf("move-leader not-hex: %v %q", r.err, r.stderr)
	}
	if r := tendAt(t, "127.0.0.1:1", nil, "defrag", "--command-timeout", "300ms"); r.err == nil || !strings.Contains(string(r.stderr), "Failed to defragment etcd member[127.0.0.1:1]") {
		t.Errorf("defrag of nothing: %v %q", r.err, r.stderr)
	}
}

// clusterURL is the client URL the member at ep advertises.
func clusterURL(t *testing.T, ep string) string {
	t.Helper()
	cli := newClient(t, ep)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := cli.MemberList(ctx)
	if err != nil || len(resp.Members) != 1 || len(resp.Members[0].ClientURLs) != 1 {
		t.Fatalf("member list: %v %v", resp, err)
	}
	return resp.Members[0].ClientURLs[0]
}

// raiseNoSpace activates a NOSPACE alarm through the Maintenance API, as a
// member does when its database reaches the quota.
func raiseNoSpace(t *testing.T, ep string) {
	t.Helper()
	cli := newClient(t, ep)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := cli.Status(ctx, ep)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pb.NewMaintenanceClient(cli.ActiveConnection()).Alarm(ctx, &pb.AlarmRequest{
		Action: pb.AlarmRequest_ACTIVATE, MemberID: st.Header.MemberId, Alarm: pb.AlarmType_NOSPACE,
	}); err != nil {
		t.Fatalf("raise NOSPACE: %v", err)
	}
}

func newClient(t *testing.T, ep string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// TestMoveLeaderFindsTheLeader hands the leadership of a three-member
// cluster to a follower through tend move-leader given only the other
// follower's endpoint: tend finds the leader's client URL itself, where
// etcdctl requires it among --endpoints.
func TestMoveLeaderFindsTheLeader(t *testing.T) {
	t.Parallel()
	ms := clustertest.StartN(t, 3)
	leader := ms[0].Leader()
	var followers []*cluster.Member
	for _, m := range ms {
		if m.MemberID() != leader {
			followers = append(followers, m)
		}
	}
	if len(followers) != 2 {
		t.Fatalf("%d followers of %x in a cluster of 3", len(followers), leader)
	}
	target := followers[1]
	r := tendAt(t, followers[0].ClientURLs()[0], nil, "move-leader", fmt.Sprintf("%x", target.MemberID()))
	if r.err != nil {
		t.Fatalf("move-leader: %v\n%s", r.err, r.stderr)
	}
	want(t, "move-leader", string(r.stdout), fmt.Sprintf("Leadership transferred from %x to %x\n", leader, target.MemberID()))
	deadline := time.Now().Add(10 * time.Second)
	for _, m := range ms {
		for m.Leader() != target.MemberID() {
			if time.Now().After(deadline) {
				t.Fatalf("member %x follows %x, not the new leader %x", m.MemberID(), m.Leader(), target.MemberID())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}
