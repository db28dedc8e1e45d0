package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

func checkReport(t *testing.T, r Report, op string, requests int) {
	t.Helper()
	if r.Op != op || r.Requests != requests || r.Errors != 0 {
		t.Errorf("report = %+v, want op %s, %d requests, no errors", r, op, requests)
	}
	if !(r.P50 > 0 && r.P50 <= r.P90 && r.P90 <= r.P99 && r.P99 <= r.Max) {
		t.Errorf("percentiles out of order: %+v", r)
	}
	if r.Throughput <= 0 {
		t.Errorf("throughput %v", r.Throughput)
	}
}

func TestPutRangeWatchAgainstEtcd(t *testing.T) {
	ep, stop, err := startEtcd(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := Config{Endpoints: []string{ep}, Conns: 2, Clients: 4, Total: 200, KeySize: 8, ValSize: 256, KeySpace: 50, Sequential: true}

	r, err := Put(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	checkReport(t, r, "put", 200)

	// The keys Put wrote exist, with values of ValSize bytes.
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	k := keyer{size: 8, space: 50, sequential: true}
	resp, err := cli.Get(ctx, k.key(49, nil))
	if err != nil || len(resp.Kvs) != 1 || len(resp.Kvs[0].Value) != 256 {
		t.Fatalf("key 49 after put: %v %v", err, resp)
	}

	c.Serializable = true
	if r, err = Range(ctx, c); err != nil {
		t.Fatal(err)
	}
	checkReport(t, r, "range", 200)

	c.Watchers, c.Total = 3, 40
	if r, err = Watch(ctx, c); err != nil {
		t.Fatal(err)
	}
	checkReport(t, r, "watch", 120)

	// Agent: every put reaches the file (each wait checks the content), and
	// the bench key is deleted afterwards.
	ar, err := Agent(ctx, Config{Endpoints: []string{ep}, Total: 30, KeySize: 8, ValSize: 64, KeySpace: 1})
	if err != nil {
		t.Fatal(err)
	}
	checkReport(t, ar, "agent", 30)
	if left, err := cli.Get(ctx, "/tend-bench/agent/", clientv3.WithPrefix(), clientv3.WithCountOnly()); err != nil || left.Count != 0 {
		t.Errorf("bench agent left %v keys behind (%v)", left, err)
	}

	var buf bytes.Buffer
	r.Print(&buf)
	if !strings.Contains(buf.String(), "req/s") || !strings.Contains(buf.String(), "watch") {
		t.Errorf("table = %q", buf.String())
	}
	if b, err := json.Marshal(r); err != nil || !strings.Contains(string(b), `"p99_ns":`) {
		t.Errorf("json = %s %v", b, err)
	}
}

func TestDeadlineStopsTheRun(t *testing.T) {
	// Nothing listens on port 1: every request fails until the deadline.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	c := Config{Endpoints: []string{"127.0.0.1:1"}, Conns: 1, Clients: 2, Total: 1 << 30, KeySize: 8, KeySpace: 1}
	start := time.Now()
	_, err := Put(ctx, c)
	if err == nil {
		t.Fatal("a run against nothing succeeded")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("run took %v after a 300ms deadline", d)
	}
}

func TestKeysHaveTheirSize(t *testing.T) {
	for _, size := range []int{1, 8, 32} {
		k := keyer{size: size, space: 1000, sequential: true}
		if got := len(k.key(999, nil)); got != size {
			t.Errorf("key size %d: got %d bytes", size, got)
		}
	}
}
