package cluster

import (
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

func TestLease(t *testing.T) {
	m := start(t, testConfig(t, t.TempDir()))
	cli := client(t, m)
	c := ctx(t)

	g, err := cli.Grant(c, 60)
	if err != nil {
		t.Fatalf("grant: %v", err)
	}
	if g.ID <= 0 || g.TTL != 60 {
		t.Fatalf("grant = %+v, want a server-chosen positive ID and TTL 60", g)
	}
	if _, err := cli.Put(c, "/l/a", "x", clientv3.WithLease(g.ID)); err != nil {
		t.Fatal(err)
	}
	ttl, err := cli.TimeToLive(c, g.ID, clientv3.WithAttachedKeys())
	if err != nil {
		t.Fatalf("time to live: %v", err)
	}
	if ttl.GrantedTTL != 60 || ttl.TTL <= 0 || ttl.TTL > 60 || len(ttl.Keys) != 1 || string(ttl.Keys[0]) != "/l/a" {
		t.Fatalf("time to live = %+v, want granted 60, 0 < ttl <= 60, keys [/l/a]", ttl)
	}
	ka, err := cli.KeepAliveOnce(c, g.ID)
	if err != nil || ka.TTL != 60 {
		t.Fatalf("keepalive = %+v, %v; want TTL 60", ka, err)
	}
	ls, err := cli.Leases(c)
	if err != nil || len(ls.Leases) != 1 || ls.Leases[0].ID != g.ID {
		t.Fatalf("leases = %+v, %v; want [%x]", ls, err, g.ID)
	}
	if _, err := cli.Revoke(c, g.ID); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	if get, err := cli.Get(c, "/l/a"); err != nil || len(get.Kvs) != 0 {
		t.Fatalf("key after revoke = %v, %v; want gone", get, err)
	}
	if ttl, err := cli.TimeToLive(c, g.ID); err != nil || ttl.TTL != -1 {
		t.Fatalf("time to live of a revoked lease = %+v, %v; want TTL -1", ttl, err)
	}
}

func TestLeaseExpiresOnLeader(t *testing.T) {
	t.Parallel() // mostly waits for lease time to pass
	m := start(t, testConfig(t, t.TempDir()))
	cli := client(t, m)
	c := ctx(t)

	// The kept lease has room for a late keep-alive on a loaded machine.
	kept, err := cli.Grant(c, 2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(c, "/e/kept", "x", clientv3.WithLease(kept.ID)); err != nil {
		t.Fatal(err)
	}
	kc, err := cli.KeepAlive(c, kept.ID)
	if err != nil {
		t.Fatal(err)
	}
	granted := time.Now()
	short, err := cli.Grant(c, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(c, "/e/short", "x", clientv3.WithLease(short.ID)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "short lease's key revoked", func() bool {
		get, err := cli.Get(c, "/e/short")
		return err == nil && len(get.Kvs) == 0
	})
	if since := time.Since(granted); since < 900*time.Millisecond {
		t.Errorf("lease of TTL 1s expired after %v", since)
	}
	// The kept-alive lease outlives its TTL.
	deadline := time.Now().Add(2500 * time.Millisecond)
	for time.Now().Before(deadline) {
		select {
		case ka := <-kc:
			if ka == nil {
				t.Fatal("keepalive channel closed")
			}
		case <-time.After(3 * time.Second):
			t.Fatal("no keepalive response within 3s")
		}
	}
	if get, err := cli.Get(c, "/e/kept"); err != nil || len(get.Kvs) != 1 {
		t.Fatalf("kept-alive key = %v, %v; want present", get, err)
	}
}
