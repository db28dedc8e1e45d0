package cluster

import (
	"context"
	"runtime"
	"testing"
	"time"

	epb "go.etcd.io/etcd/server/v3/etcdserver/api/v3election/v3electionpb"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3lock/v3lockpb"
)

// TestLockAndElectionLeaveNoGoroutines: each Lock or Campaign runs an
// in-process client (a lessor, a watcher, handler goroutines behind pipes);
// all of it must end with the call. Calls that wait, and are given up, too.
func TestLockAndElectionLeaveNoGoroutines(t *testing.T) {
	m := start(t, testConfig(t, t.TempDir()))
	cli := client(t, m)
	lc := v3lockpb.NewLockClient(cli.ActiveConnection())
	ec := epb.NewElectionClient(cli.ActiveConnection())
	c := ctx(t)
	g, err := cli.Grant(c, 60)
	if err != nil {
		t.Fatal(err)
	}
	round := func() {
		held, err := lc.Lock(c, &v3lockpb.LockRequest{Name: []byte("l"), Lease: int64(g.ID)})
		if err != nil {
			t.Fatal(err)
		}
		// A second caller waits (on a watch) and gives up.
		wctx, cancel := context.WithTimeout(c, 50*time.Millisecond)
		if _, err := lc.Lock(wctx, &v3lockpb.LockRequest{Name: []byte("l")}); err == nil {
			t.Fatal("a held lock was granted twice")
		}
		cancel()
		if _, err := lc.Unlock(c, &v3lockpb.UnlockRequest{Key: held.Key}); err != nil {
			t.Fatal(err)
		}
		camp, err := ec.Campaign(c, &epb.CampaignRequest{Name: []byte("e"), Value: []byte("v"), Lease: int64(g.ID)})
		if err != nil {
			t.Fatal(err)
		}
		octx, cancel := context.WithCancel(c)
		obs, err := ec.Observe(octx, &epb.LeaderRequest{Name: []byte("e")})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := obs.Recv(); err != nil {
			t.Fatal(err)
		}
		cancel()
		if _, err := ec.Resign(c, &epb.ResignRequest{Leader: camp.Leader}); err != nil {
			t.Fatal(err)
		}
	}
	round() // the client's and server's own goroutines start on first use
	base := goroutinesSettled(t, -1)
	for range 20 {
		round()
	}
	if n := goroutinesSettled(t, base); n > base+5 {
		t.Errorf("%d goroutines after 20 rounds, %d after one: the calls leak", n, base)
	}
}

// goroutinesSettled waits (up to 5s) for the goroutine count to stop
// changing, or to reach at most want, and returns it.
func goroutinesSettled(t *testing.T, want int) int {
	t.Helper()
	last := runtime.NumGoroutine()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		n := runtime.NumGoroutine()
		if (want >= 0 && n <= want) || (want < 0 && n == last) {
			return n
		}
		last = n
	}
	t.Logf("goroutines still changing: %d", last)
	return last
}
