package etcdtest

import (
	"context"
	"net"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
)

func TestStartServesClients(t *testing.T) {
	e := StartT(t, Config{Dir: t.TempDir()})
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{ClientAddr(e)}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	ml, err := cli.MemberList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The advertised client URL is the real port, not 0.
	if got := ml.Members[0].ClientURLs; len(got) != 1 || got[0] != "http://"+ClientAddr(e) {
		t.Errorf("advertised client URLs %v, want [http://%s]", got, ClientAddr(e))
	}
}

// TestStartRetriesTakenPort takes every port Start picks before etcd binds
// it, once, and checks that Start begins again on another.
func TestStartRetriesTakenPort(t *testing.T) {
	taken := 0
	e, err := Start(Config{Dir: t.TempDir(), Change: func(cfg *embed.Config) {
		if taken > 0 {
			return
		}
		taken++
		l, err := net.Listen("tcp", cfg.ListenClientUrls[0].Host)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
	}})
	if err != nil {
		t.Fatalf("Start with its first port taken: %v", err)
	}
	defer e.Close()
	if taken != 1 {
		t.Fatalf("Change ran with a port taken %d times, want 1", taken)
	}
}
